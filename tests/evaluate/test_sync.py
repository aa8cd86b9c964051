"""Tests of the 31-candidate sync evaluator (reference §4): fast == naive, exclusion, K averaging, accuracy,
--frames parsing and single-video offset estimation with an oracle model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from avkd.cli.options import parse_frames
from avkd.core.errors import AvkdError, UsageError
from avkd.evaluate.offset import estimate_offset
from avkd.evaluate.retrieval import evaluate_sync
from avkd.evaluate.sync import (
    VSHIFT,
    clip_accuracy,
    context_scores,
    mel_window_start,
    predicted_offsets,
    score_clip,
    score_clip_naive,
    valid_candidates,
    window_count,
)
from avkd.models.vocalist import SyncTransformer
from avkd.report.tables import sync_evaluation_table

torch.set_num_threads(1)
nan = math.nan


def tiny_model(seed: int = 0) -> SyncTransformer:
    torch.manual_seed(seed)
    model = SyncTransformer(width=16, channels=(4, 4, 8, 8, 16))
    for mod in model.modules():  # non-trivial frozen BN statistics, so eval mode matters
        if isinstance(mod, nn.BatchNorm2d | nn.BatchNorm3d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    return model


def random_clip(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    crops = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
    mel = rng.uniform(-4, 4, (80, 640 * n // 200 + 1)).astype(np.float32)
    return crops, mel


# ------------------------------------------------------------------------------------ oracle model and clips

#: Column of a 16-step audio window that lies inside frame t of the window, whatever int(3.2·i) rounded away.
ORACLE_COLUMNS = [int(3.2 * t + 2) for t in range(5)]  # [2, 5, 8, 11, 14]


class Oracle(nn.Module):
    """Score = −mean_t (brightness of video frame t − mel value inside audio frame t)²; 0 iff they match."""

    def encode_video(self, video: Tensor) -> Tensor:
        b = video.size(0)
        return video.view(b, 5, 3, 48, 96).mean(dim=(2, 3, 4)).T.unsqueeze(-1)  # (5, B, 1)

    def encode_audio(self, mel: Tensor) -> Tensor:
        return mel.mean(dim=(1, 2)).T.unsqueeze(-1)  # (16, B, 1)

    def fuse(self, v: Tensor, a: Tensor) -> Tensor:
        return -((v[:, :, 0] - a[ORACLE_COLUMNS, :, 0]) ** 2).mean(dim=0)

    def forward(self, video: Tensor, mel: Tensor) -> Tensor:
        return self.fuse(self.encode_video(video), self.encode_audio(mel))


def pattern_clip(values: np.ndarray, n: int, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame n shows brightness values[n + 20]; audio frame n carries values[n + 20 − lag] (audio lags by ``lag``)."""
    crops = np.broadcast_to(values[20 : 20 + n, None, None, None], (n, 96, 96, 3)).astype(np.uint8)
    cols = np.arange(640 * n // 200 + 1)
    audio_frame = (5 * cols) // 16  # floor(c / 3.2)
    mel = np.broadcast_to(values[audio_frame + 20 - lag][None, :] / 255.0, (80, cols.size)).astype(np.float32)
    return crops, mel


# ------------------------------------------------------------------------------------------------- windows


def test_window_count_uses_every_window() -> None:
    assert window_count(20) == 16  # the reference's range(0, N − 5) would give 15
    assert window_count(5) == 1
    assert window_count(4) == 0
    assert window_count(0) == 0
    assert [mel_window_start(i) for i in range(7)] == [0, 3, 6, 9, 12, 16, 19]


def test_nan_pattern_is_the_valid_candidate_set() -> None:
    w = 6
    mask = valid_candidates(w)
    for i in range(w):
        for j in range(2 * VSHIFT + 1):
            assert mask[i, j] == (0 <= i + j - VSHIFT <= w - 1)
    crops, mel = random_clip(w + 4, seed=3)
    scores = score_clip(Oracle(), crops, mel)
    assert scores.shape == (w, 31) and scores.dtype == np.float32
    assert np.array_equal(~np.isnan(scores), mask)


def test_fast_equals_naive_on_tiny_model() -> None:
    model = tiny_model().train()
    for n in (20, 8):  # 8 frames: fewer windows than 2·15, the regime of the reference's if/elif bug
        crops, mel = random_clip(n, seed=n)
        fast = score_clip(model, crops, mel, batch_size=37, encode_batch_size=5)
        naive = score_clip_naive(model, crops, mel)
        assert fast.shape == naive.shape == (n - 4, 31)
        assert np.array_equal(np.isnan(fast), np.isnan(naive))
        assert np.array_equal(np.isnan(fast), ~valid_candidates(n - 4))
        np.testing.assert_allclose(fast, naive, atol=1e-4, rtol=0)
        assert np.array_equal(predicted_offsets(fast), predicted_offsets(naive))
    assert model.training  # mode restored


def test_fast_equals_naive_with_byte_bgr_pixels() -> None:
    model = tiny_model(1)
    crops, mel = random_clip(12, seed=5)
    kw = {"pixel_order": "bgr", "pixel_range": "byte"}
    fast = score_clip(model, crops, mel, **kw)
    naive = score_clip_naive(model, crops, mel, windows=[0, 7], **kw)
    rows = [0, 7]
    np.testing.assert_allclose(fast[rows], naive[rows], atol=1e-4, rtol=0)
    assert np.isnan(naive[[1, 2, 3, 4, 5, 6]]).all()
    with pytest.raises(UsageError, match="pixel_order"):
        score_clip(model, crops, mel, pixel_order="grb")


def test_short_clip_has_no_window() -> None:
    crops, mel = random_clip(4)
    assert score_clip(Oracle(), crops, mel).shape == (0, 31)
    assert math.isnan(clip_accuracy(np.zeros((0, 31)), 5))


# --------------------------------------------------------------------------------------- context averaging

D4 = np.array(
    [
        [nan, 1.0, 2.0],
        [3.0, 4.0, 5.0],
        [6.0, 7.0, 8.0],
        [9.0, 10.0, nan],
    ]
)  # W = 4, vshift = 1: the NaN entries are exactly the excluded candidates


def test_context_averaging_by_hand() -> None:
    assert np.array_equal(np.isnan(D4), ~valid_candidates(4, vshift=1))
    k7 = [
        [3.0, 2.5, 3.5],  # rows 0..1; col 0 only row 1 (the reference would average in −1000)
        [4.5, 4.0, 5.0],  # rows 0..2
        [6.0, 7.0, 6.5],  # rows 1..3
        [7.5, 8.5, 8.0],  # rows 2..3
    ]
    k9 = [
        [4.5, 4.0, 5.0],  # rows 0..2
        [6.0, 5.5, 5.0],  # rows 0..3
        [6.0, 5.5, 5.0],  # rows 0..3
        [6.0, 7.0, 6.5],  # rows 1..3
    ]
    np.testing.assert_allclose(context_scores(D4, 7), k7)
    np.testing.assert_allclose(context_scores(D4, 9), k9)
    np.testing.assert_allclose(context_scores(D4, 15), [[6.0, 5.5, 5.0]] * 4)  # window larger than the clip
    np.testing.assert_array_equal(context_scores(D4, 5), D4)
    with pytest.raises(ValueError, match="odd"):
        context_scores(D4, 6)


def test_context_keeps_candidates_excluded_everywhere() -> None:
    d = np.array([[nan, nan, 1.0, 2.0, nan], [nan, 3.0, 4.0, nan, nan]])  # W = 2, vshift = 2
    np.testing.assert_allclose(context_scores(d, 7), [[nan, 3.0, 2.5, 2.0, nan]] * 2)
    np.testing.assert_allclose(context_scores(d, 11), [[nan, 3.0, 2.5, 2.0, nan]] * 2)


# ------------------------------------------------------------------------------------------------ accuracy

D5 = np.array(
    [
        [nan, nan, 1.0, 0.0, 0.0],  # d = 0
        [nan, 0.0, 0.0, 2.0, 0.0],  # d = +1
        [0.0, 0.0, 0.0, 0.0, 3.0],  # d = +2
        [4.0, 0.0, 0.0, 0.0, nan],  # d = −2
        [0.0, 5.0, 0.0, nan, nan],  # d = −1
    ]
)  # W = 5, vshift = 2


def test_accuracy_with_tolerance_by_hand() -> None:
    assert np.array_equal(np.isnan(D5), ~valid_candidates(5, vshift=2))
    assert predicted_offsets(D5, vshift=2).tolist() == [0, 1, 2, -2, -1]
    assert clip_accuracy(D5, 5) == pytest.approx(3 / 5)
    assert clip_accuracy(D5, 5, tolerance=0) == pytest.approx(1 / 5)
    assert clip_accuracy(D5, 5, tolerance=2) == 1.0
    # K7 rows (by hand): r0 [nan, 0, .5, 1, 0] → +1; r1 [0, 0, 1/3, 2/3, 1] → +2; r2 [2, 0, 0, 2/3, 1.5] → −2;
    # r3 [4/3, 5/3, 0, 0, 3] → +2 (col 4 only from row 2); r4 [2, 2.5, 0, 0, nan] → −1.
    assert predicted_offsets(context_scores(D5, 7), vshift=2).tolist() == [1, 2, -2, 2, -1]
    assert clip_accuracy(D5, 7) == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="scores must be"):
        predicted_offsets(D5)  # vshift 15 needs 31 columns


class FakeStore:
    """Duck-typed FeatureStore over in-memory clips."""

    def __init__(self, clips: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        self.clips = clips

    def keys(self, split: str | None = None) -> list[str]:
        return list(self.clips)

    def info(self, key: str) -> dict:
        return {"n_frames": self.clips[key][0].shape[0]}

    def frames(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        return self.clips[key][0][start:stop]

    def mel(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        return self.clips[key][1][:, start:stop]


def test_mean_over_clips_is_unweighted() -> None:
    ramp = 5.0 * np.arange(60)  # brightness ramp: a wrong candidate scores −(25·Δd)², so ties cannot happen
    store = FakeStore(
        {
            "test/a/1": pattern_clip(ramp, 10, 0),  # W = 6, in sync: every row correct
            # W = 26, audio lags by 5: rows 0..20 find d = +5 (wrong); rows 21..25 lack it and pick the largest
            # valid d = 25 − i, which is within ±1 only for rows 24 and 25.
            "test/a/2": pattern_clip(ramp, 30, 5),
            "test/a/3": pattern_clip(ramp, 4, 0),  # no window: skipped
        }
    )
    ticks: list[int] = []
    ev = evaluate_sync(Oracle(), store, "test", [5, 7], progress=ticks.append, keep_scores=True)
    assert ev.skipped == ["test/a/3"]
    assert len(ticks) == 3
    assert [c.windows for c in ev.clips] == [6, 26]
    assert ev.clips[0].accuracy[5] == 1.0
    assert ev.clips[1].accuracy[5] == pytest.approx(2 / 26)
    assert ev.accuracy[5] == pytest.approx((1.0 + 2 / 26) / 2)  # not the row-weighted (6 + 2) / 32
    assert ev.clips[1].scores is not None and ev.clips[1].scores.shape == (26, 31)
    assert predicted_offsets(ev.clips[1].scores)[:21].tolist() == [5] * 21
    table = sync_evaluation_table(ev, "oracle")
    assert "| model | clips | K5 | K7 |" in table and f"| oracle | 2 | {100 * ev.accuracy[5]:.2f} |" in table
    blob = json.loads(json.dumps(ev.to_json()))
    assert blob["accuracy"]["5"] == pytest.approx(ev.accuracy[5]) and blob["skipped"] == ["test/a/3"]
    sub = evaluate_sync(Oracle(), store, "test", [5], keys=["test/a/1"])
    assert sub.accuracy == {5: 1.0} and sub.clips[0].scores is None


# ------------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5..15", [5, 7, 9, 11, 13, 15]),
        ("5..15:4", [5, 9, 13]),
        ("5,9,15", [5, 9, 15]),
        ("7", [7]),
        (" 5 .. 9 ", [5, 7, 9]),
        ("15,5,5", [5, 15]),
        ("5..7,11", [5, 7, 11]),
    ],
)
def test_parse_frames_good(text: str, expected: list[int]) -> None:
    assert parse_frames(text) == expected


@pytest.mark.parametrize(
    "text", ["4", "5..4", "6..10", "a..b", "5..15:0", "", "3", "5..15:3", "5,,7", "5..15:-2"]
)
def test_parse_frames_bad(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--frames "):
        parse_frames(text)


# ------------------------------------------------------------------------------------------ offset estimate


@pytest.mark.parametrize("lag", [0, 5, -7, 3])
def test_estimate_offset_recovers_known_lag(lag: int) -> None:
    values = np.random.default_rng(11).integers(0, 256, 80).astype(np.float64)
    crops, mel = pattern_clip(values, 40, lag)
    est = estimate_offset(Oracle(), crops, mel)
    assert abs(est.offset_frames - lag) <= 1
    assert est.offset_frames == lag  # the oracle aligns exactly
    assert est.offset_ms == pytest.approx(40.0 * lag)
    assert est.confidence > 0 and len(est.curve) == 31 and est.windows == 36
    json.dumps(est.to_json())


def test_estimate_offset_short_clip() -> None:
    crops, mel = random_clip(3)
    with pytest.raises(AvkdError, match="too short"):
        estimate_offset(Oracle(), crops, mel)
    crops, mel = random_clip(6)  # W = 2: offsets |d| >= 2 have no window
    est = estimate_offset(Oracle(), crops, mel)
    assert sum(math.isnan(v) for v in est.curve) == 31 - 3
    assert est.to_json()["curve"][0] is None
