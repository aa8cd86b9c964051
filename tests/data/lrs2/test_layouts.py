"""Input layouts (avkd/data/lrs2/layouts.py) and the runs of windows for Perfect Match (avkd/data/lrs2/sequences.py),
on the synthetic corpus preprocessed with 224x224 crops (what a SyncNet reads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avkd.core.errors import UsageError
from avkd.data.lrs2.dataset import SyncDataset, SyncSamplingConfig, to_model_pixels
from avkd.data.lrs2.layouts import LAYOUTS, layout_of
from avkd.data.lrs2.preprocess import LRS2PreprocessConfig, preprocess_lrs2
from avkd.data.lrs2.sequences import SyncSequenceDataset
from avkd.data.lrs2.store import FeatureStore
from avkd.evaluate.sync import mel_window_start
from avkd.media.audio import syncnet_mfcc
from avkd.models import build_model

VOCALIST, SYNCNET = LAYOUTS["vocalist"], LAYOUTS["syncnet"]


@pytest.fixture(scope="module")
def store224(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    out = tmp_path_factory.mktemp("features224") / "feats"
    art = preprocess_lrs2(
        LRS2PreprocessConfig(crop_size=224), synth_corpus, out, show_progress=False
    ).artifact
    return FeatureStore(art)


def test_models_declare_their_layout() -> None:
    assert (
        layout_of(build_model("syncnet", embed_dim=4, audio_channels=(2,) * 6, video_channels=(2,) * 6))
        is SYNCNET
    )
    assert layout_of(build_model("vocalist_lite")) is VOCALIST
    assert layout_of(object()) is VOCALIST  # a model that declares nothing (an ONNX session wrapper)


def test_vocalist_layout_is_the_protocols_framing() -> None:
    assert [VOCALIST.audio_start(i) for i in range(7)] == [mel_window_start(i) for i in range(7)]
    for n in (5, 26, 41):  # the stored mel has 3.2·N + 1 columns: every one of the N − 4 windows fits
        assert VOCALIST.windows(n, 16 * n // 5 + 1) == n - 4
    crops = np.random.default_rng(0).integers(0, 256, (6, 96, 96, 3), dtype=np.uint8)
    pixels = VOCALIST.clip_pixels(crops, "bgr", "unit")
    assert torch.equal(pixels, to_model_pixels(crops, "bgr", "unit"))
    assert VOCALIST.video_batch(pixels, [0, 1]).shape == (2, 15, 48, 96)


def test_syncnet_layout_by_hand() -> None:
    # 640·N samples give 4N − 1 MFCC columns, so the last window (columns 4N − 20 .. 4N − 1) does not fit:
    # N − 5 windows, the count of syncnet_python's loop.
    assert SYNCNET.windows(30, 4 * 30 - 1) == 25 and SYNCNET.audio_start(3) == 12
    crops = np.random.default_rng(1).integers(0, 256, (7, 224, 224, 3), dtype=np.uint8)
    pixels = SYNCNET.clip_pixels(crops, "bgr", "byte")
    assert pixels.shape == (3, 7, 224, 224)
    assert torch.equal(pixels[:, 2].permute(1, 2, 0), torch.from_numpy(crops[2][..., ::-1].copy()).float())
    windows = SYNCNET.video_batch(pixels, [0, 2])
    assert windows.shape == (2, 3, 5, 224, 224) and torch.equal(windows[1], pixels[:, 2:7])
    mfcc = torch.randn(13, 40)
    audio = SYNCNET.audio_batch(mfcc, [1, 5])
    assert audio.shape == (2, 1, 13, 20) and torch.equal(audio[1, 0], mfcc[:, 20:40])
    assert SYNCNET.zero_audio().shape == (1, 1, 13, 20)
    with pytest.raises(UsageError, match="crop_size=224"):
        SYNCNET.clip_pixels(crops[:, :96, :96])


def test_stored_clip_audio_is_the_mfcc_of_the_stored_audio(store224: FeatureStore) -> None:
    key = store224.keys("pretrain")[0]
    info = store224.info(key)
    mfcc = SYNCNET.clip_audio(store224, key)
    np.testing.assert_array_equal(mfcc, syncnet_mfcc(store224.audio(key)))
    assert mfcc.shape == (13, SYNCNET.audio_columns(info)) == (13, 4 * info["n_frames"] - 1)
    assert SYNCNET.clip_windows(info) == info["n_frames"] - 5
    np.testing.assert_array_equal(VOCALIST.clip_audio(store224, key), store224.mel(key))


def test_runs_of_windows(store224: FeatureStore) -> None:
    runs = SyncSequenceDataset(store224, "pretrain", SYNCNET, steps=3, samples=4, seed=5, pixel_order="bgr")
    video, audio = runs[1]
    assert video.shape == (3, 3, 5, 224, 224) and audio.shape == (3, 1, 13, 20)
    key, start = runs.draw(1)
    assert 0 <= start <= SYNCNET.clip_windows(store224.info(key)) - 3
    mfcc = SYNCNET.clip_audio(store224, key)
    for step in range(3):  # step t is window start + t, video and audio alike
        np.testing.assert_array_equal(
            audio[step, 0].numpy(), mfcc[:, 4 * (start + step) : 4 * (start + step) + 20]
        )
    crops = store224.frames(key, start, start + 7)
    assert torch.equal(video[2], SYNCNET.clip_pixels(crops, "bgr", "unit")[:, 2:7])
    assert torch.equal(runs[1][0], video)  # a pure function of (seed, epoch, index)
    first = [runs.draw(i) for i in range(4)]
    runs.set_epoch(1)  # another epoch, another draw
    assert [runs.draw(i) for i in range(4)] != first
    with pytest.raises(UsageError, match="at least 2 windows"):
        SyncSequenceDataset(store224, "pretrain", SYNCNET, steps=1)
    with pytest.raises(UsageError, match="no 'pretrain' clip has 500 windows"):
        SyncSequenceDataset(store224, "pretrain", SYNCNET, steps=500)


def test_pairs_in_the_syncnet_layout(store224: FeatureStore) -> None:
    sampling = SyncSamplingConfig(pairing="same_window", pixel_order="bgr", pixel_range="byte")
    pairs = SyncDataset(store224, "pretrain", sampling, samples=6, seed=2, layout=SYNCNET)
    for i in range(6):
        video, audio, label = pairs[i]
        plan = pairs.draw(i)
        assert video.shape == (3, 5, 224, 224) and audio.shape == (1, 13, 20)
        assert label.item() == float(plan.positive) == float(i % 2 == 0)
        # Only windows whose audio fits are drawn: the clip's last window has no 20 MFCC columns.
        assert max(plan.start, plan.audio_start) <= SYNCNET.clip_windows(store224.info(plan.key)) - 1
        mfcc = SYNCNET.clip_audio(store224, plan.key)
        np.testing.assert_array_equal(
            audio[0].numpy(), mfcc[:, 4 * plan.audio_start : 4 * plan.audio_start + 20]
        )
