"""``avkd import``: official checkpoints into model artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import JsonOption, OverwriteOption, emit_json
from avkd.errors import UsageError
from avkd.progress import log

app = typer.Typer(help="Import checkpoints a user already has (nothing is downloaded).", no_args_is_help=True)

#: Input conventions of the published checkpoints (reference §1.3): the official VocaLiST weights were trained
#: on cv2-read BGR frames in [0, 1], MTDVocaLiST on torchvision-read RGB frames in [0, 255].
CONVENTIONS = {"vocalist": ("bgr", "unit"), "mtdvocalist": ("rgb", "byte")}


@app.command("vocalist")
def vocalist(
    checkpoint: Annotated[
        Path, typer.Argument(help="vocalist_5f_lrs2.pth, pure_MTDVocaLiST.pth, or a file like them.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output model artifact.")],
    width: Annotated[int, typer.Option(help="512 = VocaLiST, 200 = MTDVocaLiST student.")] = 512,
    pixels: Annotated[
        str | None,
        typer.Option(
            help="ORDER-RANGE the weights expect, e.g. bgr-unit or rgb-byte (default: by width, §1.3)."
        ),
    ] = None,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """Load a VocaLiST-family state dict strictly and wrap it, with its pixel convention, as a model artifact."""
    from avkd.models.io import ModelSpec, import_checkpoint

    if pixels is None:
        order, scale = CONVENTIONS["vocalist" if width == 512 else "mtdvocalist"]
    else:
        order, _, scale = pixels.partition("-")
        if order not in ("rgb", "bgr") or scale not in ("unit", "byte"):
            raise UsageError(f"--pixels {pixels!r}: expected rgb-unit, rgb-byte, bgr-unit or bgr-byte")
    name = "vocalist" if width == 512 else "mtdvocalist"
    art = import_checkpoint(
        checkpoint, out, ModelSpec(name, {"width": width}, order, scale), overwrite=overwrite
    )
    if json_out:
        emit_json({"path": str(art.path), "id": art.id, "metrics": art.metrics})
    else:
        log(
            f"{art.path}: {name} width {width}, {art.metrics['parameters']:,} parameters, pixels {order}-{scale}"
        )
