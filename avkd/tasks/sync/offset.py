"""``avkd sync VIDEO``: one video through the preprocessing and a sync model, into its audio-visual offset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avkd.core.errors import UsageError
from avkd.data.lrs2.layouts import layout_of
from avkd.data.lrs2.preprocess import DetectorConfig, LRS2PreprocessConfig, extract_features
from avkd.evaluate.offset import OffsetEstimate, audio_level_dbfs, estimate_offset
from avkd.media.audio import from_int16
from avkd.models.device import resolve_device
from avkd.models.onnx_model import load_inference_model
from avkd.tasks.sync.config import SYNC_INPUTS

__all__ = ["SyncResult", "sync_video"]

DETECTORS = ("auto", "fixed", "haar")


@dataclass
class SyncResult:
    """The offset estimate of one video and how its faces were found."""

    estimate: OffsetEstimate
    detector: str  # the detector that produced the crops ("haar" or "fixed" when "auto" was asked for)
    detector_reason: str | None  # why auto chose it
    box: list[int]  # the median crop box (x0, y0, x1, y1) in the video's pixels
    frame_size: list[int]  # (width, height) of the video
    frames: int
    runtime: str = "pytorch"  # or "onnxruntime fp32" / "onnxruntime int8" for an export

    def to_json(self) -> dict[str, Any]:
        return {
            **self.estimate.to_json(),
            "detector": self.detector,
            "detector_reason": self.detector_reason,
            "crop_box": self.box,
            "frame_size": self.frame_size,
            "frames": self.frames,
            "runtime": self.runtime,
        }


def sync_video(
    video: str | Path,
    model: str | Path,
    detector: str = "auto",
    resample: bool = True,
    device: str = "cpu",
    precision: str | None = None,
) -> SyncResult:
    """Crop the faces of ``video`` as preprocessing does and estimate its offset with the model artifact.

    ``auto`` (default) crops around the face the Haar cascade finds, and uses LRS2's fixed centre box when the
    video is already a face crop (or no face is found), :class:`avkd.media.faces.AutoDetector`; ``fixed`` and
    ``haar`` force one. ``model`` may be an export artifact, run in ONNX Runtime at ``precision``
    (:mod:`avkd.models.onnx_model`), so no training code is needed.
    """
    if detector not in DETECTORS:
        raise UsageError(f"--detector {detector!r}: choose {', '.join(DETECTORS)} for a single video")
    device_ = resolve_device(device)
    loaded = load_inference_model(model, device=device_, inputs=SYNC_INPUTS, precision=precision)
    video = Path(video)
    layout = layout_of(loaded.model)  # crops and audio features the model reads (VocaLiST's or SyncNet's)
    config = LRS2PreprocessConfig(
        detector=DetectorConfig(name=detector),  # type: ignore[arg-type]
        resample=resample,
        crop_size=layout.crop_size or LRS2PreprocessConfig.crop_size,
    )
    finder = config.detector.build()
    features = extract_features(video, video.stem, config, finder)
    wave = from_int16(features.audio) if features.audio.dtype == np.int16 else features.audio
    estimate = estimate_offset(
        loaded.model,
        features.frames,
        layout.record_audio(features.mel, features.audio),
        fps=config.fps,
        device=device_,
        pixel_order=loaded.spec.pixel_order,
        pixel_range=loaded.spec.pixel_range,
        audio_dbfs=audio_level_dbfs(wave),
    )
    used = getattr(finder, "used", None) or detector
    box = [int(v) for v in np.median(features.boxes, axis=0)]
    return SyncResult(
        estimate,
        used,
        getattr(finder, "reason", None),
        box,
        list(features.attrs.get("frame_size", [])),
        int(features.frames.shape[0]),
        _runtime(loaded.model),
    )


def _runtime(model: object) -> str:
    precision = getattr(model, "precision", None)  # an export's ONNX Runtime module (avkd.models.onnx_model)
    return f"onnxruntime {precision}" if precision else "pytorch"
