"""``avkd sync VIDEO``: the audio-visual offset of one clip, from the sync protocol's scores.

Sign convention as in :mod:`avkd.evaluate.sync`: positive = the audio lags the video.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from avkd.core.errors import AvkdError
from avkd.evaluate.retrieval import nan_to_none
from avkd.evaluate.sync import BASE_FRAMES, VSHIFT, score_clip

__all__ = [
    "MIN_CONFIDENCE",
    "MIN_SUPPORT",
    "MIN_WINDOWS",
    "SILENCE_DBFS",
    "OffsetEstimate",
    "audio_level_dbfs",
    "estimate_offset",
]


#: Below these, an estimate is flagged low-confidence (see :meth:`OffsetEstimate.flags`).
MIN_WINDOWS = 20  # 20 five-frame windows = a clip of 24 frames, about 1 s at 25 fps
MIN_SUPPORT = 10  # windows behind the winning offset's mean score
MIN_CONFIDENCE = 0.5  # logits between the peak and the median of the score curve
SILENCE_DBFS = -45.0  # the audio's RMS level below which it is treated as silent


@dataclass
class OffsetEstimate:
    """Offset of one video (``avkd sync``): positive = audio lags video.

    ``curve[j]`` is the mean over windows of the valid scores of offset ``d = j − vshift`` (NaN where no window
    has that candidate, i.e. ``|d| ≥ W``); ``support[j]`` is how many windows that mean rests on (W − |d|).
    The offset is the argmax of the curve over the offsets with enough support (at least
    ``min(MIN_SUPPORT, ceil(W / 2))`` windows, so that the mean of two edge windows cannot win);
    ``confidence = max − median`` of the curve over those offsets: SyncNet's peak over median, in the model's
    logit units (0 = no preference; it grows with how far the true offset's score stands out, so compare it
    within one model, not across models). ``candidates`` counts the (window, offset) pairs scored.
    """

    offset_frames: int
    offset_ms: float
    confidence: float
    curve: list[float]
    windows: int = 0
    support: list[int] = field(default_factory=list)
    candidates: int = 0
    audio_dbfs: float | None = None

    @property
    def vshift(self) -> int:
        return (len(self.curve) - 1) // 2

    def flags(self) -> list[str]:
        """Why the estimate should not be trusted, if it should not (empty: no reason found):

        - ``short_clip``: fewer than :data:`MIN_WINDOWS` windows (a clip under about 1 s);
        - ``thin_support``: the winning offset's mean rests on fewer than :data:`MIN_SUPPORT` windows;
        - ``edge_of_search``: the offset is at the edge of what was searched (±vshift, or the outermost offset
          that any window has): the true offset may lie beyond it;
        - ``weak_peak``: confidence below :data:`MIN_CONFIDENCE`: the curve has no clear maximum;
        - ``silent_audio``: the audio's RMS level is below :data:`SILENCE_DBFS` dBFS.
        """
        flags = []
        if self.windows < MIN_WINDOWS:
            flags.append("short_clip")
        j = self.offset_frames + self.vshift
        if self.support and self.support[j] < MIN_SUPPORT:
            flags.append("thin_support")
        reach = max((abs(i - self.vshift) for i, n in enumerate(self.support) if n > 0), default=0)
        if abs(self.offset_frames) >= min(self.vshift, reach):
            flags.append("edge_of_search")
        if not self.confidence >= MIN_CONFIDENCE:
            flags.append("weak_peak")
        if self.audio_dbfs is not None and self.audio_dbfs < SILENCE_DBFS:
            flags.append("silent_audio")
        return flags

    @property
    def low_confidence(self) -> bool:
        return bool(self.flags())

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (NaN curve entries as null)."""
        return {
            "offset_frames": self.offset_frames,
            "offset_ms": self.offset_ms,
            "confidence": self.confidence,
            "confidence_unit": "logits: peak minus median of the mean score over offsets",
            "low_confidence": self.low_confidence,
            "flags": self.flags(),
            "windows": self.windows,
            "candidates": self.candidates,
            "offsets_scored": sum(1 for n in self.support if n > 0),
            "audio_dbfs": self.audio_dbfs,
            "offset_sign": "positive = audio lags video",
            "offsets": list(range(-self.vshift, self.vshift + 1)),
            "curve": [nan_to_none(v) for v in self.curve],
            "support": list(self.support),
        }


def audio_level_dbfs(wave: np.ndarray) -> float:
    """RMS level of float audio in [-1, 1], in dB relative to full scale (−inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(np.asarray(wave, dtype=np.float64))))) if np.size(wave) else 0.0
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def estimate_offset(
    model: nn.Module,
    crops: np.ndarray,
    mel: np.ndarray,
    *,
    fps: float = 25.0,
    vshift: int = VSHIFT,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    amp: bool = False,
    pixel_order: str = "rgb",
    pixel_range: str = "unit",
    audio_dbfs: float | None = None,
) -> OffsetEstimate:
    """Audio-video offset of one clip: argmax of the mean score curve over all windows (§4 scoring, K = W).

    The score matrix of :func:`score_clip` is averaged over windows per offset (NaN-ignoring, so each offset is
    the mean of its valid windows); the argmax over offsets with enough support is the offset,
    ``offset_ms = 1000·d / fps``; ``audio_dbfs`` (the clip's audio level) is kept for the flags. Raises
    :class:`AvkdError` for a clip shorter than 5 frames.
    """
    scores = score_clip(
        model,
        crops,
        mel,
        vshift=vshift,
        batch_size=batch_size,
        device=device,
        amp=amp,
        pixel_order=pixel_order,
        pixel_range=pixel_range,
    )
    w = scores.shape[0]
    if w == 0:
        raise AvkdError(
            f"clip too short for sync estimation: {crops.shape[0]} frames, need at least {BASE_FRAMES}"
        )
    valid = ~np.isnan(scores)
    count = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = np.where(
            count > 0, np.where(valid, scores, 0.0).sum(axis=0, dtype=np.float64) / count, np.nan
        )
    enough = count >= min(MIN_SUPPORT, math.ceil(w / 2))
    considered = np.where(enough, curve, np.nan)
    best = int(np.nanargmax(considered))
    d = best - vshift
    confidence = float(np.nanmax(considered) - np.nanmedian(considered))
    return OffsetEstimate(
        d,
        1000.0 * d / fps,
        confidence,
        [float(v) for v in curve],
        w,
        support=[int(n) for n in count],
        candidates=int(valid.sum()),
        audio_dbfs=audio_dbfs,
    )
