"""``avkd sync VIDEO``: one video through the preprocessing and a sync model, into its audio-visual offset."""

from __future__ import annotations

from pathlib import Path

from avkd.core.errors import UsageError
from avkd.data.lrs2.preprocess import DetectorConfig, LRS2PreprocessConfig, extract_features
from avkd.evaluate.offset import OffsetEstimate, estimate_offset
from avkd.models.io import load_model

__all__ = ["sync_video"]


def sync_video(
    video: str | Path, model: str | Path, detector: str = "fixed", resample: bool = True, device: str = "cpu"
) -> OffsetEstimate:
    """Crop the faces of ``video`` as preprocessing does, and estimate its offset with the model artifact."""
    if detector not in ("fixed", "haar"):
        raise UsageError(f"--detector {detector!r}: choose fixed or haar for a single video")
    video = Path(video)
    config = LRS2PreprocessConfig(detector=DetectorConfig(name=detector), resample=resample)  # type: ignore[arg-type]
    features = extract_features(video, video.stem, config, config.detector.build())
    loaded = load_model(model, device=device)
    return estimate_offset(
        loaded.model,
        features.frames,
        features.mel,
        fps=config.fps,
        device=device,
        pixel_order=loaded.spec.pixel_order,
        pixel_range=loaded.spec.pixel_range,
    )
