"""``avkd doctor``: does everything avkd needs load and work here?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import JsonOption, emit_json


def doctor(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder artifacts will be written to (its file system is checked)."),
    ] = Path("."),
    json_out: JsonOption = False,
) -> None:
    """Check Python, torch (CUDA, devices, AMP), torchaudio, PyAV and decord, OpenCV's cascades, h5py and the
    output folder's file system, and the CPU threads torch will use. Exit 1 with one line per failing item."""
    from avkd.doctor import run_doctor

    report = run_doctor(out)
    if json_out:
        emit_json(report.to_json())
    else:
        for line in report.lines():
            typer.echo(line)
    for check in report.failures():
        typer.echo(
            f"error: {check.name}: {check.summary}" + (f"; {check.fix}" if check.fix else ""), err=True
        )
    if not report.ok:
        raise typer.Exit(1)
