"""``avkd lse VIDEO...``: SyncNet's lip-sync error (LSE-D, LSE-C), offset and confidence of each video."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import JsonOption, emit_json
from avkd.core.errors import AvkdError


def lse(
    videos: Annotated[
        list[Path], typer.Argument(help="Video files or folders (searched for .mp4 .avi .mov .mkv .webm).")
    ],
    model: Annotated[
        Path,
        typer.Option("--model", "-m", help="Model artifact of a sync model with SyncNet's inputs (syncnet)."),
    ],
    detector: Annotated[
        str,
        typer.Option(
            help="haar (OpenCV's face cascade) | fixed (LRS2's centre box) | boxes (--boxes) | auto."
        ),
    ] = "haar",
    boxes: Annotated[
        Path | None, typer.Option(help="For --detector boxes: key,frame,x0,y0,x1,y1 lines (key = file stem).")
    ] = None,
    min_face: Annotated[
        float,
        typer.Option(help="haar/auto: smallest face searched, as a fraction of the frame's shorter side."),
    ] = 0.3,
    protocol: Annotated[
        str,
        typer.Option(
            help="avkd: only candidates inside the clip are scored; reference: syncnet_python's exactly, which "
            "also scores the zero padding at the clip's edges (and skips the last window)."
        ),
    ] = "avkd",
    vshift: Annotated[int, typer.Option(help="Offsets searched either side of 0, in 25 fps frames.")] = 15,
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.")] = 32,
    decoder: Annotated[str, typer.Option(help="auto | decord | pyav.")] = "auto",
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N | auto.")] = "cpu",
    csv: Annotated[Path | None, typer.Option("--csv", help="Also write one CSV line per video here.")] = None,
    framewise: Annotated[
        bool, typer.Option(help="Include each video's framewise confidence in --json.")
    ] = True,
    json_out: JsonOption = False,
) -> None:
    """Convert each video to 25 fps / 16 kHz mono, crop the face SyncNet's way, and print LSE-D (the lowest mean
    distance over offsets), LSE-C (median minus that minimum) and the offset (positive = audio lags video).
    Exits 1 only if every video failed; each failure is listed with its reason."""
    from avkd.evaluate.lse_video import LseConfig, lse_videos

    config = LseConfig(
        detector=detector,
        boxes_file=str(boxes) if boxes is not None else None,
        min_face=min_face,
        protocol=protocol,
        vshift=vshift,
        decoder=decoder,
        batch_size=batch_size,
        device=device,
        framewise=framewise,
    )
    report = lse_videos(videos, model, config)
    if csv is not None:
        report.write_csv(csv)
    if json_out:
        emit_json(report.to_json())
    else:
        for row in report.rows:
            r = row.result
            if r is None:
                typer.echo(f"{row.video}: FAILED: {row.error}")
                continue
            typer.echo(
                f"{row.video}: LSE-D {r.lse_d:.3f}  LSE-C {r.lse_c:.3f}  offset {r.offset:+d} frames "
                f"({1000 * r.offset / 25:+.0f} ms; syncnet_python's sign {r.offset_reference:+d})  {r.windows} windows"
            )
        s = report.summary
        if s.scored:
            typer.echo(
                f"mean over {s.scored} of {s.videos} videos: LSE-D {s.lse_d:.3f}  LSE-C {s.lse_c:.3f} "
                f"(protocol {protocol})"
            )
    if report.all_failed:
        first = report.rows[0].error
        raise AvkdError(f"every video failed ({report.summary.videos}); the first: {first}")
