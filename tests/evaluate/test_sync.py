"""Tests of the 31-candidate sync scoring and counting (docs/reference/vocalist.md §4): fast == naive, exclusion,
K averaging, accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avkd.core.errors import UsageError
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
from tests.evaluate.sync_helpers import Oracle, random_clip, tiny_model

torch.set_num_threads(1)
nan = math.nan


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
    # The scoring paths are compared, not the model: the lite front-end keeps the naive one's forwards cheap.
    model = tiny_model(video_frontend="lite").train()
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
