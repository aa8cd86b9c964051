"""LSE-D and LSE-C, SyncNet's lip-sync error, from per-window embeddings
(docs/reference/avsiam-mfh-syncnet.md §3.3, §3.4).

What is measured
----------------
A clip at 25 fps with audio at 16 kHz gives ``W`` five-frame windows. Video window ``i`` is frames
``i..i+4``; audio window ``i`` is MFCC columns ``[4i, 4i+20)`` (100 MFCC steps per second, 4 per video frame,
§3.3). A sync model embeds each (``encode_video``, ``encode_audio``). For every video window ``i`` and offset
``d = −vshift..vshift`` the Euclidean distance ``dist[i, d] = ‖v_i − a_{i+d}‖`` is taken (SyncNet's
``calc_pdist``, §3.4, through ``torch.nn.functional.pairwise_distance`` as there, so its ``eps = 1e-6`` is
kept). The **distance curve** is the mean over windows per offset; then

- **LSE-D** = the curve's minimum (the mean distance at the best offset; lower = better synced);
- **LSE-C** = the curve's median minus its minimum (how far the best offset stands out; higher = more
  confident);
- **offset** = the offset of the minimum;
- **framewise confidence** = median of the curve minus each window's distance at the best offset,
  median-filtered with width 9 (§3.4): which windows agree with the clip's offset.

Sign convention
---------------
``offset`` follows ``avkd sync`` (:mod:`avkd.evaluate.sync`): **positive = the audio lags the video** (the
sound of frame ``i`` is heard at frame ``i + offset``). syncnet_python prints ``vshift − argmin``, the opposite
sign; it is given as ``offset_reference`` (= −offset).

Protocols
---------
``reference`` reproduces syncnet_python exactly: ``W = min_length − 5`` windows (its loop stops one window
short of the last one, ``SyncNetInstance.evaluate``), the audio embeddings are zero-padded by ``vshift`` rows
at both ends and the padding is scored: a window near an edge is compared with the zero vector, whose distance
is the embedding's norm; every offset's mean is over all ``W`` windows, and the framewise filter is
``scipy.signal.medfilt`` (zeros past the ends).

``avkd`` (default) scores only candidates that exist: ``dist[i, d]`` is excluded (NaN) unless
``0 ≤ i + d < W``, each offset's mean is over its own windows (``W − |d|`` of them), and, as in ``avkd sync``
(:func:`avkd.evaluate.offset.estimate_offset`), minimum and median are taken over the offsets that rest on at
least ``min(MIN_SUPPORT, ceil(W / 2))`` windows, so the mean of two edge windows cannot be the minimum. ``W`` is
every window whose video and audio fit (``min(N − 4, (M − 20) // 4 + 1)`` for ``N`` frames and ``M`` MFCC
columns; with audio cut to ``640·N`` samples the MFCC has ``4N − 1`` columns and that is ``N − 5``, the
reference's count). The framewise filter truncates its window at the ends and ignores NaN.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.signal import medfilt
from torch import Tensor, nn

from avkd.core.errors import MediaError, UsageError
from avkd.evaluate.offset import MIN_SUPPORT
from avkd.evaluate.retrieval import nan_to_none
from avkd.evaluate.sync import BASE_FRAMES, check_pixels, evaluating
from avkd.models.device import resolve_device

__all__ = [
    "CONFIDENCE_FILTER",
    "CROP_SIZE",
    "MFCC_COEFFS",
    "MFCC_PER_FRAME",
    "MFCC_WINDOW",
    "PROTOCOLS",
    "VSHIFT",
    "LseResult",
    "Summary",
    "check_lse_model",
    "distance_matrix",
    "embed_windows",
    "framewise_confidence",
    "lse_from_distances",
    "score_windows",
    "summarize",
    "window_count",
]

#: Offsets searched either side of 0: syncnet_python's demo default (§3.4), 31 offsets, ±0.6 s at 25 fps.
VSHIFT = 15
#: MFCC steps per video frame (100 Hz MFCC, 25 fps video) and per 5-frame window (§3.3).
MFCC_PER_FRAME = 4
MFCC_WINDOW = 20
#: Cepstral coefficients SyncNet's audio stream reads (§3.2: input 1×13×20).
MFCC_COEFFS = 13
#: Side of SyncNet's face crops (§3.2, §3.5).
CROP_SIZE = 224
#: Width of the median filter of the framewise confidence (``signal.medfilt(..., kernel_size=9)``, §3.4).
CONFIDENCE_FILTER = 9
PROTOCOLS = ("avkd", "reference")


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol {protocol!r}: choose {' or '.join(PROTOCOLS)}")


def window_count(n_frames: int, mfcc_columns: int, protocol: str = "avkd") -> int:
    """Windows of a clip of ``n_frames`` video frames and ``mfcc_columns`` MFCC steps (module docstring).

    ``n_frames`` is the clip's common length (``min(#frames, #samples // 640)``, the reference's
    ``min_length``). ``avkd``: every window whose 5 frames and 20 MFCC steps exist; ``reference``:
    ``n_frames − 5`` (its loop bound), never more than the MFCC holds.
    """
    _check_protocol(protocol)
    audio = max(0, (mfcc_columns - MFCC_WINDOW) // MFCC_PER_FRAME + 1) if mfcc_columns >= MFCC_WINDOW else 0
    video = n_frames - BASE_FRAMES if protocol == "reference" else n_frames - BASE_FRAMES + 1
    return max(0, min(video, audio))


def distance_matrix(
    video: Tensor | np.ndarray, audio: Tensor | np.ndarray, vshift: int = VSHIFT, protocol: str = "avkd"
) -> np.ndarray:
    """(W, 2·vshift+1) float64: column ``j`` holds ``‖v_i − a_{i+j−vshift}‖`` for each video window ``i``.

    ``video`` and ``audio`` are (W, D) embeddings of the same windows. ``reference``: audio rows outside
    ``0..W−1`` are zero vectors (syncnet_python pads the audio embeddings with ``vshift`` zero rows at each end);
    ``avkd``: those entries are NaN.
    """
    _check_protocol(protocol)
    v = torch.as_tensor(video).float()
    a = torch.as_tensor(audio).float()
    if v.ndim != 2 or a.shape != v.shape:
        raise ValueError(
            f"video and audio embeddings must both be (W, D), got {tuple(v.shape)}, {tuple(a.shape)}"
        )
    w, width = v.shape[0], 2 * vshift + 1
    padded = torch.nn.functional.pad(a, (0, 0, vshift, vshift))
    rows = torch.arange(w)[:, None] + torch.arange(width)[None, :]  # index into padded = i + j
    out = np.empty((w, width))
    for s in range(0, w, 256):  # 256 windows at a time: W x 31 x D floats at once would be 190 MB a minute
        part = rows[s : s + 256]
        dist = torch.nn.functional.pairwise_distance(
            v[s : s + 256, None, :].expand(part.shape[0], width, v.shape[1]).reshape(-1, v.shape[1]),
            padded[part.reshape(-1)],
        )
        out[s : s + 256] = dist.reshape(part.shape).double().numpy()
    if protocol == "avkd":
        d = (rows - vshift).numpy()  # audio window index i + j − vshift
        out = np.where((d >= 0) & (d < w), out, np.nan)
    return out


def framewise_confidence(dist: np.ndarray, best: int, median: float, protocol: str = "avkd") -> np.ndarray:
    """(W,) ``median − dist[i, best]``, median-filtered over :data:`CONFIDENCE_FILTER` windows (§3.4)."""
    raw = median - dist[:, best]
    if protocol == "reference":
        with warnings.catch_warnings():  # scipy warns that a clip of under 9 windows is zero-padded: it is
            warnings.simplefilter("ignore", UserWarning)
            return medfilt(raw, kernel_size=CONFIDENCE_FILTER)
    half = CONFIDENCE_FILTER // 2
    out = np.full(raw.shape, np.nan)
    for i in range(raw.shape[0]):
        part = raw[max(0, i - half) : i + half + 1]
        if np.isfinite(part).any():
            out[i] = np.nanmedian(part)
    return out


@dataclass
class LseResult:
    """LSE of one clip (module docstring). ``curve[j]`` is the mean distance at offset ``j − vshift`` (NaN: not
    scored), ``support[j]`` its window count, ``considered[j]`` whether it took part in the minimum and the
    median; ``offset`` is positive when the audio lags the video."""

    lse_d: float
    lse_c: float
    offset: int
    curve: list[float]
    support: list[int]
    considered: list[bool]
    framewise: list[float]
    protocol: str
    fps: float = 25.0

    @property
    def vshift(self) -> int:
        return (len(self.curve) - 1) // 2

    @property
    def windows(self) -> int:
        return len(self.framewise)

    @property
    def offset_reference(self) -> int:
        """The offset as syncnet_python prints it (``vshift − argmin``): positive = the audio leads."""
        return -self.offset

    def to_json(self, framewise: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "lse_d": self.lse_d,
            "lse_c": self.lse_c,
            "offset": self.offset,
            "offset_ms": 1000.0 * self.offset / self.fps,
            "offset_reference": self.offset_reference,
            "windows": self.windows,
            "protocol": self.protocol,
            "offset_sign": "positive = audio lags video (offset_reference: syncnet_python's sign)",
            "offsets": list(range(-self.vshift, self.vshift + 1)),
            "curve": [nan_to_none(v) for v in self.curve],
            "support": list(self.support),
        }
        if framewise:
            out["framewise_confidence"] = [nan_to_none(v) for v in self.framewise]
        return out


def lse_from_distances(dist: np.ndarray, protocol: str = "avkd", fps: float = 25.0) -> LseResult:
    """LSE-D, LSE-C, offset and framewise confidence from a :func:`distance_matrix` (module docstring).

    A matrix without windows is a ``ValueError`` (:func:`score_windows` refuses such clips first).
    """
    _check_protocol(protocol)
    w, width = dist.shape
    if w == 0:
        raise ValueError(f"no {BASE_FRAMES}-frame window to score")
    vshift = (width - 1) // 2
    valid = np.isfinite(dist)
    support = valid.sum(axis=0)
    with np.errstate(invalid="ignore"):
        curve = np.where(support > 0, np.where(valid, dist, 0.0).sum(axis=0) / np.maximum(support, 1), np.nan)
    if protocol == "reference":
        considered = np.ones(width, bool)
    else:
        considered = support >= min(MIN_SUPPORT, math.ceil(w / 2))
    masked = np.where(considered, curve, np.nan)
    best = int(np.nanargmin(masked))  # the first minimum on (rare) exact ties
    low = float(masked[best])
    # The considered offsets are symmetric around 0, so there is an odd number of them and the median is one
    # of them, as torch.median (the lower middle value) gives in the reference.
    median = float(np.nanmedian(masked))
    framewise = framewise_confidence(dist, best, median, protocol)
    return LseResult(
        lse_d=low,
        lse_c=median - low,
        offset=best - vshift,
        curve=[float(v) for v in curve],
        support=[int(n) for n in support],
        considered=[bool(c) for c in considered],
        framewise=[float(v) for v in framewise],
        protocol=protocol,
        fps=fps,
    )


# ------------------------------------------------------------------------------------------------ the model


def _video_batch(pixels: Tensor, starts: Sequence[int]) -> Tensor:
    """(T, 3, S, S) pixels of frames ``starts[0]..`` -> (B, 3, 5, S, S) windows of frames ``i..i+4`` (SyncNet's
    conv3d layout)."""
    first = starts[0]
    return torch.stack([pixels[i - first : i - first + BASE_FRAMES] for i in starts]).permute(0, 2, 1, 3, 4)


def _audio_batch(mfcc: Tensor, starts: Sequence[int]) -> Tensor:
    """(13, M) clip MFCC -> (B, 1, 13, 20) windows of columns ``[4i, 4i+20)`` (§3.3)."""
    return torch.stack(
        [mfcc[:, MFCC_PER_FRAME * i : MFCC_PER_FRAME * i + MFCC_WINDOW] for i in starts]
    ).unsqueeze(1)


def _to_pixels(crops: np.ndarray, pixel_order: str, pixel_range: str) -> Tensor:
    """(T, S, S, 3) uint8 RGB -> (T, 3, S, S) float in the model's convention (SyncNet: BGR 0..255, §3.2)."""
    x = crops[..., ::-1] if pixel_order == "bgr" else crops
    video = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float()
    return video / 255.0 if pixel_range == "unit" else video


def _embedding(x: Any) -> Any:
    """(B, D) embeddings from an encoder's output: (B, D) as is, one token (1, B, D) as SyncNet's encoders give
    it (the token layout of the other sync models' front-ends) without its token axis; anything else as is."""
    if isinstance(x, Tensor) and x.ndim == 3 and x.shape[0] == 1:
        return x[0]
    return x


def check_lse_model(model: nn.Module, name: str, crop_size: int = CROP_SIZE) -> int:
    """The embedding width of a model that LSE can use, or a :class:`UsageError` saying why it cannot.

    LSE needs one embedding per window from each stream: ``encode_video`` on (B, 3, 5, S, S) frames and
    ``encode_audio`` on (B, 1, 13, 20) MFCC windows, both returning (B, D) (or one token, (1, B, D)) with the
    same D (SyncNet's inputs, §3.2). A model whose encoders give a sequence of tokens per window (VocaLiST's,
    which its transformers fuse) has no such distance and is refused. The model is probed once on zeros.
    """
    if not (
        callable(getattr(model, "encode_video", None)) and callable(getattr(model, "encode_audio", None))
    ):
        raise UsageError(
            f"model {name!r} has no encode_video/encode_audio: LSE needs a sync model such as syncnet"
        )
    first = next(iter(model.parameters()), None)
    dev = first.device if first is not None else torch.device("cpu")
    try:
        with torch.inference_mode():
            v = _embedding(
                model.encode_video(torch.zeros(2, 3, BASE_FRAMES, crop_size, crop_size, device=dev))
            )
            a = _embedding(model.encode_audio(torch.zeros(2, 1, MFCC_COEFFS, MFCC_WINDOW, device=dev)))
    except (
        Exception
    ) as exc:  # a model built for other inputs (the VocaLiST mel, 48x96 lips) fails somewhere inside
        raise UsageError(
            f"model {name!r} does not take SyncNet's inputs (video (B, 3, 5, {crop_size}, {crop_size}), MFCC "
            f"(B, 1, 13, 20)): {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        ) from None
    if not (isinstance(v, Tensor) and isinstance(a, Tensor)) or v.ndim != 2 or v.shape != a.shape:
        shapes = [tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__ for t in (v, a)]
        raise UsageError(
            f"model {name!r}: LSE needs one (B, D) embedding per window from encode_video and encode_audio, got "
            f"{shapes[0]} and {shapes[1]}"
        )
    return int(v.shape[1])


def embed_windows(
    model: nn.Module,
    crops: np.ndarray,
    mfcc: np.ndarray,
    windows: int,
    *,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    pixel_order: str = "rgb",
    pixel_range: str = "unit",
) -> tuple[Tensor, Tensor]:
    """(W, D) video and audio embeddings of windows ``0..W−1`` of one clip, on the CPU.

    ``crops`` (N, S, S, 3) uint8 RGB face crops at 25 fps, ``mfcc`` (13, M) at 100 steps/s. Each window is
    encoded once (the reference encodes both streams in batches of 20; only memory depends on ``batch_size``).
    """
    check_pixels(pixel_order, pixel_range)
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if mfcc.ndim != 2 or mfcc.shape[0] != MFCC_COEFFS:
        raise ValueError(f"mfcc must be ({MFCC_COEFFS}, M), got {mfcc.shape}")
    dev = resolve_device(device)
    mfcc_t = torch.from_numpy(np.ascontiguousarray(mfcc, dtype=np.float32))
    video, audio = [], []
    with evaluating(model, dev), torch.inference_mode():
        for s in range(0, windows, batch_size):
            starts = range(s, min(windows, s + batch_size))
            # float pixels of this batch's frames only: a whole minute at 224² would be 0.9 GB
            pixels = _to_pixels(crops[starts[0] : starts[-1] + BASE_FRAMES], pixel_order, pixel_range)
            video.append(_embedding(model.encode_video(_video_batch(pixels, starts).to(dev))).float().cpu())
            audio.append(_embedding(model.encode_audio(_audio_batch(mfcc_t, starts).to(dev))).float().cpu())
    if not video:
        return torch.zeros(0, 1), torch.zeros(0, 1)
    return torch.cat(video), torch.cat(audio)


def score_windows(
    model: nn.Module,
    crops: np.ndarray,
    mfcc: np.ndarray,
    n_frames: int,
    *,
    protocol: str = "avkd",
    vshift: int = VSHIFT,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    pixel_order: str = "rgb",
    pixel_range: str = "unit",
) -> LseResult:
    """LSE of one clip from its 25 fps face crops and its MFCC (``n_frames``: the common length); a clip without
    a window is a :class:`MediaError`."""
    _check_protocol(protocol)
    w = window_count(n_frames, mfcc.shape[1], protocol)
    if w == 0:
        raise MediaError(
            f"too short for LSE: {n_frames} frames at 25 fps; need at least "
            f"{BASE_FRAMES + (1 if protocol == 'reference' else 0)}"
        )
    video, audio = embed_windows(
        model,
        crops,
        mfcc,
        w,
        batch_size=batch_size,
        device=device,
        pixel_order=pixel_order,
        pixel_range=pixel_range,
    )
    return lse_from_distances(distance_matrix(video, audio, vshift, protocol), protocol)


@dataclass
class Summary:
    """Means over the videos that were scored."""

    videos: int
    scored: int
    failed: int
    lse_d: float | None
    lse_c: float | None
    mean_abs_offset: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "videos": self.videos,
            "scored": self.scored,
            "failed": self.failed,
            "lse_d": self.lse_d,
            "lse_c": self.lse_c,
            "mean_abs_offset": self.mean_abs_offset,
        }


def summarize(results: Sequence[LseResult | None]) -> Summary:
    """Unweighted means over the scored videos (None = a video that failed), as LSE tables report them."""
    ok = [r for r in results if r is not None]

    def mean(values: list[float]) -> float | None:
        return float(np.mean(values)) if values else None

    return Summary(
        videos=len(results),
        scored=len(ok),
        failed=len(results) - len(ok),
        lse_d=mean([r.lse_d for r in ok]),
        lse_c=mean([r.lse_c for r in ok]),
        mean_abs_offset=mean([abs(r.offset) for r in ok]),
    )
