"""``avkd import``: official checkpoints into model artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import JsonOption, OverwriteOption, emit_artifact

app = typer.Typer(help="Import checkpoints a user already has (nothing is downloaded).", no_args_is_help=True)


@app.command("vocalist")
def vocalist(
    checkpoint: Annotated[
        Path, typer.Argument(help="vocalist_5f_lrs2.pth, pure_MTDVocaLiST.pth, or a file like them.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output model artifact.")],
    width: Annotated[int, typer.Option(help="512 = VocaLiST, 200 = MTDVocaLiST student.")] = 512,
    pixels: Annotated[
        str | None,
        typer.Option(help="ORDER-RANGE the weights expect, e.g. bgr-unit or rgb-byte (default: by width)."),
    ] = None,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """Load a VocaLiST-family state dict strictly and wrap it, with its pixel convention, as a model artifact."""
    from avkd.tasks.sync.imports import import_vocalist

    art = import_vocalist(checkpoint, out, width=width, pixels=pixels, overwrite=overwrite)
    spec = art.manifest["spec"]
    emit_artifact(
        art,
        json_out,
        f"{art.path}: {spec['name']} width {width}, {art.metrics['parameters']:,} parameters, "
        f"pixels {spec['pixel_order']}-{spec['pixel_range']}",
    )


@app.command("syncnet")
def syncnet(
    checkpoint: Annotated[
        Path, typer.Argument(help="syncnet_v2.model (joonson/syncnet_python), or a file like it.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output model artifact.")],
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """Load a SyncNet v2 state dict strictly and wrap it, with its pixel convention (BGR 0..255), as a model
    artifact."""
    from avkd.tasks.sync.imports import import_syncnet

    art = import_syncnet(checkpoint, out, overwrite=overwrite)
    spec = art.manifest["spec"]
    emit_artifact(
        art,
        json_out,
        f"{art.path}: {spec['name']}, {art.metrics['parameters']:,} parameters, "
        f"pixels {spec['pixel_order']}-{spec['pixel_range']}",
    )
