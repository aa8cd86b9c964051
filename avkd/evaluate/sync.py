"""31-candidate audio-visual sync retrieval: the VocaLiST / MTDVocaLiST test protocol (docs/reference/vocalist.md §4).

Protocol (what is measured)
---------------------------
A clip of ``N`` stored frames (video and audio trimmed to a common length by preprocessing) gives ``W = N − 4``
windows; the model input is always 5 frames. Video window ``i`` is frames ``i..i+4`` (lower half of each crop,
:func:`avkd.data.lrs2.dataset.to_model_pixels`); audio window ``i`` is the slice ``[int(3.2·i), int(3.2·i)+16)`` of the
whole-clip mel — the evaluation-time framing of §4 (§1.4 lists how it differs from the training-time chunking).
For every video window ``i`` the 31 audio windows ``i+d``, ``d = −15..+15``, are scored with the model's raw
logit, giving a score matrix ``D`` (W, 31) whose column ``j`` holds offset ``d = j − 15``. The predicted offset of
a row is its argmax; a row is correct iff ``|d| ≤ tolerance`` (default 1 frame = ±40 ms at 25 fps). Longer
contexts ``K = 5 + 2m`` average ``m`` neighbouring rows on each side before the argmax, so all K come from one
``D``. Clip accuracy is correct rows / rows; the reported accuracy is the unweighted mean over clips (the
reference's ``samplewise_acc``).

Sign convention
---------------
``offset d`` = audio window index − video window index. **Positive d means the audio lags the video** by ``d``
frames (the sound of frame ``i`` is heard at frame ``i+d``). The reference reports ``15 − argmax_j = −d``, the
opposite sign; accuracy is symmetric in the sign, so reported numbers are unaffected.

Where this differs from the reference (§4) and why
--------------------------------------------------
1. **All N−4 windows** are scored. The reference loops ``range(0, min_length − 5)`` and so skips the last
   window (an off-by-one). With 1,243 LRS2 test clips this moves clip accuracies by about one row each.
2. **Out-of-range candidates are excluded**, not scored: candidate ``d`` of window ``i`` exists iff
   ``0 ≤ i+d ≤ W−1``; excluded entries are NaN in ``D``. The reference zero-pads the audio windows (0 is mid-scale
   in the [−4, 4] mel, not silence), scores the padding and overwrites it with −1000 — except that its
   ``if/elif`` leaves the right-side padding unmasked for windows ``N−15 ≤ i < 15`` when ``N < 30``, so scored
   all-zero audio can win the argmax on short clips. Excluding is exact and also faster.
3. **Context averaging ignores excluded candidates** (``nanmean``); the reference averages its −1000 sentinels
   into the rows (its own source comment calls this "inappropriate"). A candidate excluded in every averaged row
   stays NaN. When a clip has fewer windows than ``2m+1`` the truncated window simply covers every row (the
   reference's hand-written slicing returns ``2m`` rows there: undefined behaviour).
4. Clips shorter than 5 frames have no window: they are skipped and listed (the reference would crash).
5. ``W`` is ``min(N − 4, audio windows that fit in the mel)``; with the stored mel of ``3.2·N + 1`` columns the
   two are equal. The reference uses ``min(#jpg, len(wav) // 640)`` for the same purpose.

Other models
------------
The windows are cut by the model's input layout (:mod:`avkd.data.lrs2.layouts`): VocaLiST's, above, or
SyncNet's (whole 224×224 crops, 20 MFCC columns from column ``4·i``); the protocol and the counting are the same.

Efficiency (§4 "Inefficiency")
------------------------------
The reference makes 31 full forwards per window: the video front-end (~96% of FLOPs) runs 31× on the same
input. Here (:func:`score_clip`) ``encode_video`` runs once per video window and ``encode_audio`` once per audio
window, and only ``fuse`` (three transformers + head) runs on the ≤ 31·W valid (video, audio) pairs, in batches
of ``batch_size``. BatchNorm is frozen in eval mode, so this is exact up to float rounding;
:func:`score_clip_naive` is the straightforward path kept for testing and benchmarking
(``benchmarks/evaluate.py``).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from avkd.core.errors import UsageError
from avkd.data.lrs2.layouts import InputLayout, layout_of
from avkd.models.device import autocast, resolve_device

__all__ = [
    "BASE_FRAMES",
    "MAX_CONTEXT",
    "MAX_CONTEXTS",
    "MEL_WINDOW",
    "VSHIFT",
    "check_pixels",
    "clip_accuracy",
    "context_scores",
    "evaluating",
    "frames_problem",
    "mel_window_start",
    "predicted_offsets",
    "score_clip",
    "score_clip_and_silence",
    "score_clip_naive",
    "valid_candidates",
    "window_count",
]

#: Candidate offsets either side of the true alignment: 2·15+1 = 31 candidates (docs/reference/vocalist.md §4, ``vshift``).
VSHIFT = 15
#: Frames per model input; longer contexts are averages of 5-frame scores (§4).
BASE_FRAMES = 5
#: Mel steps per 5-frame window (§1.4: 3.2 steps per frame).
MEL_WINDOW = 16
#: The longest context and the most contexts one evaluation computes: 201 frames is 8 s at 25 fps, longer than
#: most LRS2 test clips (a context longer than a clip averages all of its rows). Published tables use 5..15.
MAX_CONTEXT = 201
MAX_CONTEXTS = 64


def frames_problem(frames: list[int]) -> str | None:
    """What is wrong with a list of context lengths K (None: nothing): each odd, in BASE_FRAMES..MAX_CONTEXT."""
    if not frames:
        return "is empty: give at least one context length"
    if len(frames) > MAX_CONTEXTS:
        return f"has {len(frames)} context lengths; at most {MAX_CONTEXTS}"
    bad = [k for k in frames if k < BASE_FRAMES or k > MAX_CONTEXT or k % 2 == 0]
    if bad:
        return f"has {bad[0]}: every K must be odd, from {BASE_FRAMES} to {MAX_CONTEXT}"
    return None


_PIXEL_ORDERS = ("rgb", "bgr")
_PIXEL_RANGES = ("unit", "byte")


# ------------------------------------------------------------------------------------------------- windows


def window_count(n_frames: int, frames: int = BASE_FRAMES) -> int:
    """Number of ``frames``-frame windows (stride 1) in a clip of ``n_frames``: ``N − frames + 1``, at least 0.

    All windows are used, including the last one that the reference skips (§4, off-by-one).
    """
    return max(0, n_frames - frames + 1)


def mel_window_start(i: int) -> int:
    """First mel column of audio window ``i``: ``int(80·i/25) = int(3.2·i)``, computed exactly (§4)."""
    return (16 * i) // 5


def _clip_windows(crops: np.ndarray, mel: np.ndarray, layout: InputLayout) -> int:
    if crops.ndim != 4 or crops.shape[-1] != 3:
        raise ValueError(f"crops must be (N, S, S, 3) uint8, got {crops.shape}")
    if mel.ndim != 2 or mel.shape[0] != layout.audio_rows:
        raise ValueError(f"audio features must be ({layout.audio_rows}, M), got {mel.shape}")
    return layout.windows(crops.shape[0], mel.shape[1])


def valid_candidates(windows: int, vshift: int = VSHIFT) -> np.ndarray:
    """(W, 2·vshift+1) bool: candidate ``d = j − vshift`` of window ``i`` exists iff ``0 ≤ i+d ≤ W−1``.

    Excluded candidates are NaN in a score matrix (module docstring, difference 2).
    """
    i = np.arange(windows)[:, None]
    d = np.arange(-vshift, vshift + 1)[None, :]
    return (i + d >= 0) & (i + d <= windows - 1)


def check_pixels(pixel_order: str, pixel_range: str) -> None:
    if pixel_order not in _PIXEL_ORDERS:
        raise UsageError(f"pixel_order must be one of {_PIXEL_ORDERS}, got {pixel_order!r}")
    if pixel_range not in _PIXEL_RANGES:
        raise UsageError(f"pixel_range must be one of {_PIXEL_RANGES}, got {pixel_range!r}")


# ------------------------------------------------------------------------------------------- model state


@contextlib.contextmanager
def evaluating(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Eval mode (frozen BN, no dropout) on ``device`` for the duration; restores the mode and device after."""
    was_training = model.training
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    old = first.device if first is not None else None
    moved = old is not None and old != device
    model.eval()
    if moved:
        model.to(device)
    try:
        yield
    finally:
        if moved:
            model.to(old)
        model.train(was_training)


# ------------------------------------------------------------------------------------------------ scoring


def score_clip(
    model: nn.Module,
    crops: np.ndarray,
    mel: np.ndarray,
    *,
    vshift: int = VSHIFT,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    amp: bool = False,
    pixel_order: str = "rgb",
    pixel_range: str = "unit",
    encode_batch_size: int = 32,
) -> np.ndarray:
    """Score matrix ``D`` (W, 2·vshift+1) of one clip; see :func:`score_clip_and_silence`, which also scores
    every video window against an all-zero audio window (what the reference's padding feeds the model)."""
    scores, _ = score_clip_and_silence(
        model,
        crops,
        mel,
        vshift=vshift,
        batch_size=batch_size,
        device=device,
        amp=amp,
        pixel_order=pixel_order,
        pixel_range=pixel_range,
        encode_batch_size=encode_batch_size,
        zero_audio=False,
    )
    return scores


def score_clip_and_silence(
    model: nn.Module,
    crops: np.ndarray,
    mel: np.ndarray,
    *,
    vshift: int = VSHIFT,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    amp: bool = False,
    pixel_order: str = "rgb",
    pixel_range: str = "unit",
    encode_batch_size: int = 32,
    zero_audio: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Score matrix ``D`` (W, 2·vshift+1) float32 of raw logits for one clip; NaN = excluded candidate.

    ``crops`` (N, 96, 96, 3) uint8 RGB face crops, ``mel`` (80, M) whole-clip VocaLiST mel — or, for a model
    whose ``input_layout`` is ``syncnet``, (N, 224, 224, 3) crops and the (13, M) MFCC
    (:mod:`avkd.data.lrs2.layouts` cuts the windows; a distance model's ``fuse`` is −distance, so the same
    argmax picks the nearest audio window). Column ``j`` is offset
    ``d = j − vshift`` (audio window ``i+d`` against video window ``i``; positive = audio lags video).

    Fast path (§4 "Inefficiency"): ``model.encode_video`` once per video window and ``model.encode_audio`` once
    per audio window (``encode_batch_size`` windows at a time; front-end activations are large), then
    ``model.fuse`` on every valid (video, audio) pair, ``batch_size`` pairs at a time, under
    ``torch.inference_mode()`` (+ autocast on CUDA when ``amp``). Equals :func:`score_clip_naive` up to float
    rounding. ``pixel_order`` / ``pixel_range`` are the checkpoint's input convention (§1.3). The model is put
    in eval mode on ``device`` for the call and restored after.

    With ``zero_audio`` the second value is (W,) float32: each video window's logit against an all-zero mel
    window (the reference's padding, §4), from the same video embeddings; otherwise None.
    """
    check_pixels(pixel_order, pixel_range)
    if batch_size < 1 or encode_batch_size < 1:
        raise ValueError("batch sizes must be >= 1")
    layout = layout_of(model)
    w = _clip_windows(crops, mel, layout)
    scores = np.full((w, 2 * vshift + 1), np.nan, np.float32)
    silence = np.full(w, np.nan, np.float32) if zero_audio else None
    if w == 0:
        return scores, silence
    dev = resolve_device(device)
    rows, cols = np.nonzero(valid_candidates(w, vshift))  # row-major: window by window
    audio_idx = rows + cols - vshift
    pixels = layout.clip_pixels(crops[: w + BASE_FRAMES - 1], pixel_order, pixel_range)
    mel_t = torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))
    out = np.empty(rows.size, np.float32)
    with evaluating(model, dev), torch.inference_mode(), autocast(dev, amp):
        v_emb = torch.cat(
            [
                model.encode_video(
                    layout.video_batch(pixels, range(s, min(w, s + encode_batch_size))).to(dev)
                )
                for s in range(0, w, encode_batch_size)
            ],
            dim=1,
        )  # (T_v, W, D)
        a_emb = torch.cat(
            [
                model.encode_audio(layout.audio_batch(mel_t, range(s, min(w, s + encode_batch_size))).to(dev))
                for s in range(0, w, encode_batch_size)
            ],
            dim=1,
        )  # (T_a, W, D)
        for s in range(0, rows.size, batch_size):
            vi = torch.from_numpy(rows[s : s + batch_size]).to(dev)
            ai = torch.from_numpy(audio_idx[s : s + batch_size]).to(dev)
            logits = model.fuse(v_emb.index_select(1, vi), a_emb.index_select(1, ai))
            out[s : s + batch_size] = logits.float().cpu().numpy()
        if silence is not None:
            zero = model.encode_audio(layout.zero_audio(dev))
            for s in range(0, w, batch_size):
                v = v_emb[:, s : s + batch_size]
                logits = model.fuse(v, zero.expand(-1, v.shape[1], -1))
                silence[s : s + batch_size] = logits.float().cpu().numpy()
    scores[rows, cols] = out
    return scores, silence


def score_clip_naive(
    model: nn.Module,
    crops: np.ndarray,
    mel: np.ndarray,
    *,
    vshift: int = VSHIFT,
    device: str | torch.device = "cpu",
    pixel_order: str = "rgb",
    pixel_range: str = "unit",
    windows: Sequence[int] | None = None,
) -> np.ndarray:
    """Same matrix as :func:`score_clip`, computed the reference's way (§4 ``calc_pdist``).

    One full ``model(video, mel)`` per video window, on a batch of the video window repeated once per candidate
    paired with the candidate audio windows — but only the valid candidates (no zero padding, no −1000). Kept as
    the straightforward baseline for tests and ``benchmarks/evaluate.py``; ``windows`` restricts the computation
    to some rows (the others stay NaN), so a benchmark can time a few windows of a slow model.
    """
    check_pixels(pixel_order, pixel_range)
    layout = layout_of(model)
    w = _clip_windows(crops, mel, layout)
    scores = np.full((w, 2 * vshift + 1), np.nan, np.float32)
    if w == 0:
        return scores
    dev = resolve_device(device)
    pixels = layout.clip_pixels(crops[: w + BASE_FRAMES - 1], pixel_order, pixel_range)
    mel_t = torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))
    with evaluating(model, dev), torch.inference_mode():
        for i in range(w) if windows is None else windows:
            if not 0 <= i < w:
                raise ValueError(f"window {i} out of range 0..{w - 1}")
            js = list(range(max(0, i - vshift), min(w - 1, i + vshift) + 1))
            one = layout.video_batch(pixels, [i])
            video = one.repeat(len(js), *([1] * (one.dim() - 1))).to(dev)
            audio = layout.audio_batch(mel_t, js).to(dev)
            logits = model(video, audio)
            scores[i, np.asarray(js) - i + vshift] = logits.float().cpu().numpy()
    return scores


# ---------------------------------------------------------------------------------------- contexts, accuracy


def _check_k(k: int, base: int = BASE_FRAMES) -> None:
    if k < base or (k - base) % 2:
        raise ValueError(f"context K={k} must be odd and >= {base}")


def context_scores(scores: np.ndarray, k: int, base: int = BASE_FRAMES) -> np.ndarray:
    """Scores for a context of ``k = base + 2m`` frames: row ``r`` = NaN-ignoring mean of rows ``r−m..r+m``.

    The window is truncated at the clip edges (rows ``max(0, r−m)..min(W−1, r+m)``), as in the reference (§4,
    L176-251). Unlike the reference, excluded (NaN) candidates are left out of the mean instead of averaging −1000
    sentinels in; a candidate that is NaN in every averaged row stays NaN. ``k == base`` returns a copy.
    """
    _check_k(k, base)
    scores = np.asarray(scores)
    m = (k - base) // 2
    if m == 0 or scores.shape[0] == 0:
        return scores.copy()
    w = scores.shape[0]
    valid = ~np.isnan(scores)
    values = np.where(valid, scores, 0.0).astype(np.float64)
    total = np.zeros_like(values)
    count = np.zeros(scores.shape, np.int64)
    for shift in range(-m, m + 1):  # row r accumulates row r+shift where it exists
        lo, hi = max(0, -shift), min(w, w - shift)
        if lo >= hi:
            continue
        total[lo:hi] += values[lo + shift : hi + shift]
        count[lo:hi] += valid[lo + shift : hi + shift]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return mean.astype(scores.dtype if np.issubdtype(scores.dtype, np.floating) else np.float64)


def predicted_offsets(scores: np.ndarray, vshift: int = VSHIFT) -> np.ndarray:
    """(W,) int: predicted offset ``d = argmax_j − vshift`` per row, over non-NaN candidates (first on ties).

    Positive d = audio lags video; the reference's ``15 − argmax`` is ``−d`` (module docstring).
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] != 2 * vshift + 1:
        raise ValueError(f"scores must be (W, {2 * vshift + 1}), got {scores.shape}")
    nan = np.isnan(scores)
    if nan.all(axis=1).any():
        raise ValueError("a score row has no valid candidate")
    return np.where(nan, -np.inf, scores).argmax(axis=1) - vshift


def clip_accuracy(scores: np.ndarray, k: int, tolerance: int = 1) -> float:
    """Fraction of rows of :func:`context_scores` whose predicted offset is within ``±tolerance`` frames of 0.

    §4: correct iff the offset is in {−1, 0, +1} (±40 ms) by default. NaN for a clip without windows.
    """
    scores = np.asarray(scores)
    if scores.shape[0] == 0:
        return math.nan
    vshift = (scores.shape[1] - 1) // 2
    offsets = predicted_offsets(context_scores(scores, k), vshift)
    return float(np.mean(np.abs(offsets) <= tolerance))
