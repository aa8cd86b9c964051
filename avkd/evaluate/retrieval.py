"""The 31-candidate sync retrieval evaluation over a feature store, under either counting protocol.

:func:`evaluate_sync` scores every clip of a split once (:func:`avkd.evaluate.sync.score_clip_and_silence`) and
counts the score matrix the way the chosen protocol says: ``avkd`` (:mod:`avkd.evaluate.sync`: all N−4 windows,
out-of-range candidates excluded) or ``reference`` (:mod:`avkd.evaluate.reference_protocol`: the official
script's arithmetic, quirks included, docs/reference/vocalist.md §4), so both come from the same scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from avkd.core.errors import UsageError
from avkd.data.lrs2.layouts import layout_of
from avkd.evaluate.reference_protocol import reference_clip_accuracy, reference_matrix
from avkd.evaluate.sync import (
    BASE_FRAMES,
    VSHIFT,
    check_pixels,
    clip_accuracy,
    evaluating,
    frames_problem,
    score_clip_and_silence,
    window_count,
)
from avkd.models.device import resolve_device

__all__ = ["PROTOCOLS", "ClipResult", "SyncEvaluation", "evaluate_sync", "nan_to_none"]

#: ``evaluate_sync(protocol=...)``: avkd's corrected protocol, or the official script's arithmetic.
PROTOCOLS = ("avkd", "reference")


def nan_to_none(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


@dataclass
class ClipResult:
    """One clip: its window count, accuracy per K, and (with ``keep_scores``) its score matrix D (W, 31)."""

    key: str
    windows: int
    accuracy: dict[int, float]
    scores: np.ndarray | None = None


@dataclass
class SyncEvaluation:
    """Accuracy per context K (fraction in [0, 1], unweighted mean over evaluated clips, §4 ``samplewise_acc``).

    ``skipped`` lists clips shorter than 5 frames (no window; excluded from the mean).
    """

    frames: list[int]
    accuracy: dict[int, float]
    clips: list[ClipResult]
    skipped: list[str] = field(default_factory=list)
    tolerance: int = 1
    vshift: int = VSHIFT
    #: "avkd" (this module's protocol) or "reference" (:mod:`avkd.evaluate.reference_protocol`).
    protocol: str = "avkd"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (K keys as strings, NaN as null; score matrices are not included)."""
        return {
            "protocol": {
                "name": self.protocol,
                "candidates": 2 * self.vshift + 1,
                "vshift": self.vshift,
                "model_frames": BASE_FRAMES,
                "tolerance_frames": self.tolerance,
                **(
                    {
                        "windows": "N-5 per clip (the reference's range(0, N - 5))",
                        "out_of_range_candidates": "zero audio scored, then -1000 (the reference's if/elif)",
                        "contexts": "means including the -1000 sentinels; 2m rows when N - 5 < 2m",
                        "offset_sign": "15 - argmax (accuracy is symmetric)",
                    }
                    if self.protocol == "reference"
                    else {
                        "windows": "all N-4 per clip",
                        "out_of_range_candidates": "excluded",
                        "offset_sign": "positive = audio lags video",
                    }
                ),
            },
            "frames": list(self.frames),
            "accuracy": {str(k): nan_to_none(v) for k, v in self.accuracy.items()},
            "clips_evaluated": len(self.clips),
            "skipped": list(self.skipped),
            "clips": [
                {
                    "key": c.key,
                    "windows": c.windows,
                    "accuracy": {str(k): nan_to_none(v) for k, v in c.accuracy.items()},
                }
                for c in self.clips
            ],
        }


def evaluate_sync(
    model: nn.Module,
    store: Any,
    split: str,
    frames: list[int],
    *,
    keys: Sequence[str] | None = None,
    keep_scores: bool = False,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    amp: bool = False,
    pixel_order: str = "rgb",
    pixel_range: str = "unit",
    progress: Callable[[int], None] | None = None,
    tolerance: int = 1,
    vshift: int = VSHIFT,
    protocol: str = "avkd",
) -> SyncEvaluation:
    """Run the §4 protocol over the clips of ``split`` in a :class:`~avkd.data.lrs2.store.FeatureStore`.

    ``protocol="reference"`` scores the same way but counts as the official script does
    (:mod:`avkd.evaluate.reference_protocol`: N−5 windows, scored zero padding, −1000 sentinels in the means), for
    comparison with published numbers; the kept score matrices are then the reference's.

    ``keys`` overrides the clip list (order kept). For each clip one score matrix is computed with
    :func:`score_clip` and every K in ``frames`` is derived from it. Clips with fewer than 5 frames are skipped
    and listed in ``skipped``. ``progress(1)`` is called after each clip (evaluated or skipped). The model is
    put in eval mode on ``device`` for the call and restored after.
    """
    problem = frames_problem(list(frames))
    if problem:
        raise UsageError(f"context lengths {list(frames)} {problem}")
    if tolerance < 0:
        raise UsageError(f"tolerance must be >= 0, got {tolerance}")
    if protocol not in PROTOCOLS:
        raise UsageError(f"protocol {protocol!r}: choose {' or '.join(PROTOCOLS)}")
    check_pixels(pixel_order, pixel_range)
    frames = sorted(set(frames))
    accuracy_of = reference_clip_accuracy if protocol == "reference" else clip_accuracy
    clip_keys = list(store.keys(split) if keys is None else keys)
    dev = resolve_device(device)
    layout = layout_of(model)
    clips: list[ClipResult] = []
    skipped: list[str] = []
    with evaluating(model, dev):
        for key in clip_keys:
            n = store.info(key).get("n_frames")
            if n is not None and window_count(int(n)) == 0:
                skipped.append(key)
            else:
                crops = store.frames(key)
                layout.check_crops(crops, key)
                mel = layout.clip_audio(store, key)  # the stored mel, or the MFCC a SyncNet reads
                scores, silence = score_clip_and_silence(
                    model,
                    crops,
                    mel,
                    vshift=vshift,
                    batch_size=batch_size,
                    device=dev,
                    amp=amp,
                    pixel_order=pixel_order,
                    pixel_range=pixel_range,
                    zero_audio=protocol == "reference",
                )
                if protocol == "reference":
                    scores = reference_matrix(scores, silence, vshift)
                if scores.shape[0] == 0:
                    skipped.append(key)
                else:
                    acc = {k: accuracy_of(scores, k, tolerance) for k in frames}
                    clips.append(ClipResult(key, scores.shape[0], acc, scores if keep_scores else None))
            if progress is not None:
                progress(1)
    accuracy = {k: float(np.mean([c.accuracy[k] for c in clips])) if clips else math.nan for k in frames}
    return SyncEvaluation(frames, accuracy, clips, skipped, tolerance, vshift, protocol)
