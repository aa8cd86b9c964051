"""The official evaluation's own arithmetic (``avkd evaluate --protocol reference``), quirks included.

VocaLiST's ``test_lrs2.py`` (and MTDVocaLiST's identical ``test_stu.py``) compute the published numbers with
choices that avkd's default protocol corrects (:mod:`avkd.evaluate.sync`, "Where this differs"). To compare a
model with a published table number for number, this mode reproduces them, on the same score matrix ``D`` of
:func:`~avkd.evaluate.sync.score_clip_and_silence` (docs/reference/vocalist.md §4):

1. **N − 5 windows**: a clip of N frames gives ``lastframe = N − 5`` windows (the last start is skipped), and
   only those windows' audio is a candidate, so audio window N − 5 counts as padding too.
2. **Zero-padded candidates**: an audio index outside ``0..n−1`` (n = N − 5) is an all-zero mel window, scored
   by the model; then ``calc_pdist`` overwrites ``D[i, :15−i]`` with −1000 ``if i < 15``, ``elif i ≥ n − 15``
   ``D[i, 15+n−i:]``. The ``elif`` leaves the right-side padding of rows ``n−15 ≤ i < 15`` scored (clips of
   fewer than 35 frames): that silence can win the argmax.
3. **Contexts** K = 5 + 2m average rows with the −1000 sentinels included: interior rows ``r`` are the mean of
   ``D[r−m..r+m]``; the m first rows are the means of ``D[:m+1+t]`` and the m last of ``D[−(2m−t):]``
   (t = 0..m−1), written out per K in the reference. For n ≥ 2m these are the truncated windows; for n < 2m
   there are 2m rows, not n (prefix and suffix rows overlap), and the clip's accuracy is over those 2m rows, as
   the reference's ``len(offsets)`` is.
4. **Offset** ``15 − argmax`` (first maximum on ties, as ``torch.argmax``), correct iff within ±tolerance
   (the reference: {−1, 0, +1}); the reported number is the unweighted mean over clips.

A clip with n = 0 windows (5 frames) has no row; the reference would fail on it, here it is skipped and listed.
Scores agree with the reference's 31-forwards-per-window loop up to float rounding (the fast path), which can
flip an argmax between near-equal candidates; nothing else differs (tested against a literal re-implementation).
"""

from __future__ import annotations

import math

import numpy as np

from avkd.evaluate.sync import BASE_FRAMES, VSHIFT

#: The score ``calc_pdist`` writes over masked candidates (docs/reference/vocalist.md §4).
SENTINEL = -1000.0


def reference_matrix(scores: np.ndarray, silence: np.ndarray, vshift: int = VSHIFT) -> np.ndarray:
    """The reference's score matrix (n, 2·vshift+1) float32, n = W − 1, from avkd's ``D`` (W rows, NaN where no
    audio exists) and ``silence`` (W,), each video window's score against an all-zero audio window."""
    scores = np.asarray(scores, np.float32)
    n = scores.shape[0] - 1
    if n <= 0:
        return np.zeros((0, 2 * vshift + 1), np.float32)
    i = np.arange(n)[:, None]
    j = np.arange(2 * vshift + 1)[None, :]
    audio = i + j - vshift
    padded = (audio < 0) | (audio >= n)
    out = np.where(padded, np.asarray(silence, np.float32)[:n, None], scores[:n])
    left = (i < vshift) & (j < vshift - i)
    right = (i >= vshift) & (i >= n - vshift) & (j >= vshift + n - i)  # the elif: only when not i < vshift
    out[left | right] = SENTINEL
    return out.astype(np.float32)


def reference_context_rows(matrix: np.ndarray, k: int, base: int = BASE_FRAMES) -> np.ndarray:
    """The rows the reference argmaxes for context ``k`` (module docstring, item 3); ``k == base``: a copy."""
    if k < base or (k - base) % 2:
        raise ValueError(f"context K={k} must be odd and >= {base}")
    d = np.asarray(matrix, np.float64)
    m, n = (k - base) // 2, d.shape[0]
    if m == 0 or n == 0:
        return d.copy()
    prefix = [d[: m + 1 + t].mean(axis=0) for t in range(m)]
    interior = [d[r - m : r + m + 1].mean(axis=0) for r in range(m, n - m)]
    suffix = [d[max(0, n - (2 * m - t)) :].mean(axis=0) for t in range(m)]
    return np.stack(prefix + interior + suffix)


def reference_clip_accuracy(matrix: np.ndarray, k: int, tolerance: int = 1) -> float:
    """Share of the reference's rows for context ``k`` whose offset ``vshift − argmax`` is within ±tolerance."""
    matrix = np.asarray(matrix)
    if matrix.shape[0] == 0:
        return math.nan
    vshift = (matrix.shape[1] - 1) // 2
    offsets = vshift - reference_context_rows(matrix, k).argmax(axis=1)
    return float(np.mean(np.abs(offsets) <= tolerance))
