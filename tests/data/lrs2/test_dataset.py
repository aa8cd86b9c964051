from __future__ import annotations

import numpy as np
import pytest
import torch

from avkd.core.errors import UsageError
from avkd.data.lrs2.dataset import SyncDataset, SyncSamplingConfig, mel_window_steps, to_model_pixels
from avkd.data.lrs2.store import FeatureStore


def test_sample_shapes_and_labels(features) -> None:
    ds = SyncDataset(FeatureStore(features), "pretrain", samples=200, seed=1)
    video, mel, label = ds[0]
    assert video.shape == (15, 48, 96) and video.dtype == torch.float32
    assert mel.shape == (1, 80, 16) and mel.dtype == torch.float32
    assert float(video.min()) >= 0.0 and float(video.max()) <= 1.0
    labels = np.array([ds.draw(i).positive for i in range(200)])
    assert 0.4 < labels.mean() < 0.6  # 50/50 (docs/reference/vocalist.md §3.1)
    assert float(label) == float(ds.draw(0).positive)


def test_negatives_are_shifted_within_the_offset_range(features) -> None:
    config = SyncSamplingConfig(min_offset=2, max_offset=15)
    ds = SyncDataset(FeatureStore(features), "pretrain", config, samples=300, seed=3)
    offsets = []
    for i in range(300):
        plan = ds.draw(i)
        n = ds.store.info(plan.key)["n_frames"]
        assert 0 <= plan.start <= n - 5 and 0 <= plan.audio_start <= n - 5
        if plan.positive:
            assert plan.audio_start == plan.start
        else:
            offsets.append(plan.audio_start - plan.start)
    offsets = np.array(offsets)
    assert np.all((np.abs(offsets) >= 2) & (np.abs(offsets) <= 15))
    assert (offsets < 0).any() and (offsets > 0).any()


def test_same_window_pairs_share_the_video_and_differ_in_the_audio(features) -> None:
    config = SyncSamplingConfig(pairing="same_window")
    ds = SyncDataset(FeatureStore(features), "pretrain", config, samples=40, seed=2)
    plans = [ds.draw(i) for i in range(40)]
    for pos, neg in zip(plans[0::2], plans[1::2], strict=True):
        assert pos.positive and not neg.positive
        assert (pos.key, pos.start) == (neg.key, neg.start)
        assert pos.audio_start == pos.start != neg.audio_start
        assert torch.equal(ds[plans.index(pos)][0], ds[plans.index(pos) + 1][0])  # the same frames
    assert len({(p.key, p.start) for p in plans}) > 10  # and the pairs differ from each other
    independent = SyncDataset(FeatureStore(features), "pretrain", samples=40, seed=2)
    assert [independent.draw(i) for i in range(40)] != plans


def test_samples_are_a_function_of_seed_epoch_index(features) -> None:
    store = FeatureStore(features)
    a, b = SyncDataset(store, "val", samples=20, seed=5), SyncDataset(store, "val", samples=20, seed=5)
    for i in (0, 7, 19):
        for x, y in zip(a[i], b[i], strict=True):
            assert torch.equal(x, y)
    plans = [a.draw(i) for i in range(20)]
    a.set_epoch(1)
    assert [a.draw(i) for i in range(20)] != plans


def test_windows_come_from_the_store(features) -> None:
    store = FeatureStore(features)
    ds = SyncDataset(store, "pretrain", samples=10, seed=2)
    for i in range(10):
        plan = ds.draw(i)
        video, mel, _ = ds[i]
        crops = store.frames(plan.key, plan.start, plan.start + 5)
        expected = (
            torch.from_numpy(crops[:, 48:].astype(np.float32) / 255).permute(0, 3, 1, 2).reshape(15, 48, 96)
        )
        assert torch.equal(video, expected)
        lo = int(3.2 * plan.audio_start)
        assert torch.equal(mel[0], torch.from_numpy(store.mel(plan.key, lo, lo + 16)))


def test_window_mel_is_close_to_the_slice(features) -> None:
    store = FeatureStore(features)
    sliced = SyncDataset(store, "pretrain", samples=10, seed=4)
    window = SyncDataset(store, "pretrain", SyncSamplingConfig(mel_source="window"), samples=10, seed=4)
    for i in range(10):
        a, b = sliced[i][1], window[i][1]
        assert a.shape == b.shape
        if sliced.draw(i).audio_start % 5 == 0:
            # Same framing: only columns whose STFT frame reaches past the 3,200-sample window differ (reflect
            # padding at the window edges, docs/reference/vocalist.md §1.4): the first two and the last.
            assert torch.allclose(a[..., 2:15], b[..., 2:15], atol=1e-4)
        assert float((a - b).abs().mean()) < 0.5


@pytest.mark.parametrize(
    ("order", "scale"), [("rgb", "unit"), ("bgr", "unit"), ("rgb", "byte"), ("bgr", "byte")]
)
def test_pixel_conventions(order: str, scale: str) -> None:
    crops = np.zeros((5, 96, 96, 3), np.uint8)
    crops[..., 0], crops[..., 1], crops[..., 2] = 10, 20, 30  # R, G, B
    video = to_model_pixels(crops, order, scale)
    assert video.shape == (15, 48, 96)
    first = [float(video[c, 0, 0]) for c in range(3)]
    expected = [10, 20, 30] if order == "rgb" else [30, 20, 10]
    factor = 1 / 255 if scale == "unit" else 1.0
    assert first == pytest.approx([v * factor for v in expected])
    assert float(video[3, 0, 0]) == pytest.approx(expected[0] * factor)  # frame 1 starts at channel 3


def test_mel_steps() -> None:
    assert mel_window_steps(5) == 16 and mel_window_steps(15) == 48


def test_short_split_is_rejected(features) -> None:
    with pytest.raises(UsageError, match="no 'val' clip has at least 500 frames"):
        SyncDataset(FeatureStore(features), "val", SyncSamplingConfig(min_clip_frames=500))
