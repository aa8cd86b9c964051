"""``avkd sync VIDEO``: estimate the audio-visual offset of one video."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import JsonOption, emit_json
from avkd.errors import UsageError


def sync(
    video: Annotated[Path, typer.Argument(help="An mp4 (25 fps, 16 kHz; --resample converts other rates).")],
    model: Annotated[Path, typer.Option("--model", "-m", help="Model artifact.")],
    detector: Annotated[str, typer.Option(help="fixed | haar.")] = "fixed",
    resample: Annotated[bool, typer.Option(help="Convert other frame/sample rates.")] = True,
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N.")] = "cpu",
    json_out: JsonOption = False,
) -> None:
    """Slide the model over the video; print the offset (positive = audio lags video) and a confidence."""
    from avkd.data.preprocess import DetectorConfig, LRS2PreprocessConfig, extract_features
    from avkd.evaluate.sync import estimate_offset
    from avkd.models.io import load_model

    if detector not in ("fixed", "haar"):
        raise UsageError(f"--detector {detector!r}: choose fixed or haar for a single video")
    config = LRS2PreprocessConfig(detector=DetectorConfig(name=detector), resample=resample)  # type: ignore[arg-type]
    features = extract_features(video, video.stem, config, config.detector.build())
    loaded = load_model(model, device=device)
    estimate = estimate_offset(
        loaded.model,
        features.frames,
        features.mel,
        fps=config.fps,
        device=device,
        pixel_order=loaded.spec.pixel_order,
        pixel_range=loaded.spec.pixel_range,
    )
    if json_out:
        emit_json({"video": str(video), **estimate.to_json()})
        return
    lag = (
        "audio lags video"
        if estimate.offset_frames > 0
        else "audio leads video"
        if estimate.offset_frames < 0
        else "in sync"
    )
    typer.echo(
        f"{video}: offset {estimate.offset_frames:+d} frames ({estimate.offset_ms:+.0f} ms, {lag}), "
        f"confidence {estimate.confidence:.2f}"
    )
