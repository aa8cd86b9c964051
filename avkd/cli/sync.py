"""``avkd sync VIDEO``: estimate the audio-visual offset of one video."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import JsonOption, emit_json


def sync(
    video: Annotated[Path, typer.Argument(help="An mp4 (25 fps, 16 kHz; --resample converts other rates).")],
    model: Annotated[
        Path,
        typer.Option("--model", "-m", help="Model artifact, or an export artifact (run in ONNX Runtime)."),
    ],
    detector: Annotated[
        str,
        typer.Option(
            help="auto (the face the Haar cascade finds, else the fixed centre box) | fixed | haar."
        ),
    ] = "auto",
    resample: Annotated[bool, typer.Option(help="Convert other frame/sample rates.")] = True,
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N.")] = "cpu",
    precision: Annotated[
        str | None,
        typer.Option(
            help="Of an export: fp32 or int8 graphs (default: the export's, int8 when made with --quantize dynamic).",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Slide the model over the video; print the offset (positive = audio lags video) and a confidence."""
    from avkd.tasks.sync.offset import sync_video

    result = sync_video(
        video, model, detector=detector, resample=resample, device=device, precision=precision
    )
    if json_out:
        emit_json({"video": str(video), **result.to_json()})
        return
    estimate = result.estimate
    d = estimate.offset_frames
    lag = "audio lags video" if d > 0 else "audio leads video" if d < 0 else "in sync"
    typer.echo(
        f"{video}: offset {d:+d} frames ({estimate.offset_ms:+.0f} ms, {lag}), confidence {estimate.confidence:.2f}"
        f"{' (LOW CONFIDENCE: ' + ', '.join(estimate.flags()) + ')' if estimate.low_confidence else ''}"
    )
    typer.echo(
        f"  {estimate.windows} windows x {sum(1 for n in estimate.support if n)} offsets = {estimate.candidates} "
        f"candidates scored; crop by {result.detector}"
        f"{' (' + result.detector_reason + ')' if result.detector_reason else ''}, {result.box} in a "
        f"{'x'.join(map(str, result.frame_size)) or '?'} frame; {result.runtime}"
    )
