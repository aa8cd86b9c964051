"""``--protocol reference``: the official script's counting, checked by hand and against a literal re-implementation
of its loop (docs/reference/vocalist.md §4)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avkd.core.errors import UsageError
from avkd.data.lrs2.dataset import to_model_pixels
from avkd.evaluate.reference_protocol import (
    SENTINEL,
    reference_clip_accuracy,
    reference_context_rows,
    reference_matrix,
)
from avkd.evaluate.retrieval import evaluate_sync
from avkd.evaluate.sync import MEL_WINDOW, mel_window_start, valid_candidates
from tests.evaluate.sync_helpers import FakeStore, random_clip, tiny_model

X = SENTINEL


def test_matrix_by_hand_including_the_elif_bug() -> None:
    """W = 5 windows (n = 4 for the reference), vshift 3: D[i, j] = 10·i + j, silence[i] = 100 + i."""
    w, vshift = 5, 3
    scores = np.where(valid_candidates(w, vshift), 10.0 * np.arange(w)[:, None] + np.arange(7), np.nan)
    silence = 100.0 + np.arange(w)
    got = reference_matrix(scores, silence, vshift)
    expected = np.array(
        [
            [X, X, X, 3, 4, 5, 6],  # i < 3: left padding masked
            [
                X,
                X,
                12,
                13,
                14,
                15,
                101,
            ],  # i < 3 and i >= n − 3: only the `if` runs, audio 4 is scored silence
            [X, 21, 22, 23, 24, 102, 102],  # (window 4 exists in avkd's D but is padding for the reference)
            [30, 31, 32, 33, X, X, X],  # i >= 3 and i >= n − 3: the `elif` masks the right padding
        ],
        np.float32,
    )
    np.testing.assert_array_equal(got, expected)
    assert reference_matrix(scores[:1], silence[:1], vshift).shape == (0, 7)  # 5 frames: no window


def _literal_context(d: np.ndarray, k: int) -> np.ndarray:
    """K = 7 and 9 spelled out the way the official script writes them: shifted-slice sums, then prefix and
    suffix means."""
    if k == 5:
        return d
    if k == 7:
        mid = (d[1:-1] + d[2:] + d[:-2]) / 3
        return np.concatenate([d[:2].mean(0)[None], mid, d[-2:].mean(0)[None]])
    if k == 9:
        mid = (d[2:-2] + d[1:-3] + d[3:-1] + d[:-4] + d[4:]) / 5
        head = [d[:3].mean(0)[None], d[:4].mean(0)[None]]
        tail = [d[-4:].mean(0)[None], d[-3:].mean(0)[None]]
        return np.concatenate([*head, mid, *tail])
    raise AssertionError(k)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 9])
@pytest.mark.parametrize("k", [7, 9])
def test_context_rows_match_the_written_out_slices(n: int, k: int) -> None:
    d = np.random.default_rng(n * k).normal(size=(n, 31))
    got = reference_context_rows(d, k)
    want = _literal_context(d, k)
    assert got.shape == want.shape  # n < 2m: 2m rows, not n
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_sentinels_are_averaged_in() -> None:
    """Row 0's −1000 candidate is averaged into K = 7's first two rows, so row 1's 9.0 cannot win there."""
    d = np.zeros((3, 3))
    d[0] = [X, 5.0, 1.0]
    d[1] = [9.0, 0.0, 0.0]
    d[2] = [9.0, 0.0, 0.0]
    rows = reference_context_rows(d, 7, base=5)
    np.testing.assert_allclose(rows[0], [(X + 9) / 2, 2.5, 0.5])
    # argmax per row [1, 1, 0] → offsets vshift − argmax = [0, 0, 1]: all within ±1, two of three exact.
    assert reference_clip_accuracy(d, 7, tolerance=1) == 1.0
    assert reference_clip_accuracy(d, 7, tolerance=0) == pytest.approx(2 / 3)
    # avkd's protocol would exclude the candidate instead: row 0 = mean of [9] → argmax 0 → offset 1.


def _literal_reference_accuracy(model, crops: np.ndarray, mel: np.ndarray, ks: list[int]) -> dict[int, float]:
    """The official loop, re-done literally: n = N − 5 windows, zero-padded audio windows, one forward of 31 pairs
    per window, the if/elif masks, then the written-out contexts."""
    n, vshift = crops.shape[0] - 5, 15
    pixels = to_model_pixels(crops, "rgb", "unit")
    mel_t = torch.from_numpy(mel)
    videos = torch.stack([pixels[3 * i : 3 * i + 15] for i in range(n)])
    audios = torch.stack([mel_t[:, mel_window_start(i) : mel_window_start(i) + MEL_WINDOW] for i in range(n)])
    padded = torch.cat([torch.zeros(vshift, 80, MEL_WINDOW), audios, torch.zeros(vshift, 80, MEL_WINDOW)])
    rows = []
    model.eval()
    with torch.no_grad():
        for i in range(n):
            row = model(videos[i : i + 1].repeat(31, 1, 1, 1), padded[i : i + 31].unsqueeze(1)).numpy().copy()
            if i in range(vshift):
                row[0 : vshift - i] = X
            elif i in range(n - vshift, n):
                row[vshift + n - i :] = X
            rows.append(row)
    d = np.stack(rows).astype(np.float64)
    out = {}
    for k in ks:
        offsets = vshift - _literal_context(d, k).argmax(axis=1)
        out[k] = float(np.mean(np.abs(offsets) <= 1))
    return out


def test_evaluate_matches_the_literal_loop() -> None:
    # The protocol's counting is what is checked, not the model: the lite front-end keeps the 42 literal
    # 31-pair forwards cheap.
    model = tiny_model(2, video_frontend="lite")
    clips = {"test/s/short": random_clip(12, seed=1), "test/s/long": random_clip(40, seed=2)}
    store = FakeStore({**clips, "test/s/five": random_clip(5, seed=3)})
    ev = evaluate_sync(model, store, "test", [5, 7, 9], protocol="reference", keep_scores=True)
    assert ev.skipped == ["test/s/five"]  # n = 0 windows
    assert [c.windows for c in ev.clips] == [7, 35]
    for clip in ev.clips:
        want = _literal_reference_accuracy(model, *clips[clip.key], [5, 7, 9])
        assert clip.accuracy == pytest.approx(want)
    # The short clip (n = 7 < 15) is in the if/elif regime: row i has 15 − i sentinels on the left, and its right
    # padding (j >= 22 − i, 9 + i entries) holds the window's silence score instead of −1000.
    short = ev.clips[0].scores
    assert short is not None and (short == X).sum() == sum(15 - i for i in range(7))
    for i in range(7):
        right = short[i, 22 - i :]
        assert right.size == 9 + i and np.all(right == right[0]) and right[0] != X
    blob = json.loads(json.dumps(ev.to_json()))
    assert blob["protocol"]["name"] == "reference" and "N-5" in blob["protocol"]["windows"]
    # avkd's own protocol on the same clips counts differently (more windows).
    assert [c.windows for c in evaluate_sync(model, store, "test", [5]).clips] == [8, 36, 1]


def test_unknown_protocol_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="protocol 'official'"):
        evaluate_sync(tiny_model(), FakeStore({}), "test", [5], protocol="official")
