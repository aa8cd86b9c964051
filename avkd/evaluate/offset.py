"""``avkd sync VIDEO``: the audio-visual offset of one clip, from the sync protocol's scores.

Sign convention as in :mod:`avkd.evaluate.sync`: positive = the audio lags the video.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from avkd.core.errors import AvkdError
from avkd.evaluate.retrieval import nan_to_none
from avkd.evaluate.sync import BASE_FRAMES, VSHIFT, score_clip

__all__ = ["OffsetEstimate", "estimate_offset"]


@dataclass
class OffsetEstimate:
    """Offset of one video (``avkd sync``): positive = audio lags video.

    ``curve[j]`` is the mean over windows of the valid scores of offset ``d = j − vshift`` (NaN where no window
    has that candidate, i.e. ``|d| ≥ W``); ``confidence = max(curve) − median(curve)`` over the non-NaN entries,
    the SyncNet-style peak-over-median (in logit units, not a probability).
    """

    offset_frames: int
    offset_ms: float
    confidence: float
    curve: list[float]
    windows: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (NaN curve entries as null)."""
        vshift = (len(self.curve) - 1) // 2
        return {
            "offset_frames": self.offset_frames,
            "offset_ms": self.offset_ms,
            "confidence": self.confidence,
            "windows": self.windows,
            "offset_sign": "positive = audio lags video",
            "offsets": list(range(-vshift, vshift + 1)),
            "curve": [nan_to_none(v) for v in self.curve],
        }


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
) -> OffsetEstimate:
    """Audio-video offset of one clip: argmax of the mean score curve over all windows (§4 scoring, K = W).

    The score matrix of :func:`score_clip` is averaged over windows per offset (NaN-ignoring, so each offset is
    the mean of its valid windows); the argmax is the offset, ``offset_ms = 1000·d / fps``. Raises
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
    best = int(np.nanargmax(curve))
    d = best - vshift
    confidence = float(np.nanmax(curve) - np.nanmedian(curve))
    return OffsetEstimate(d, 1000.0 * d / fps, confidence, [float(v) for v in curve], w)
