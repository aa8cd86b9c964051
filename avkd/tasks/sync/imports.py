"""``avkd import vocalist``: an official VocaLiST-family checkpoint (a file the user already has) into a model
artifact, with the pixel convention it was trained on."""

from __future__ import annotations

from pathlib import Path

from avkd.core.artifacts import Artifact
from avkd.core.errors import UsageError
from avkd.models.io import ModelSpec, import_checkpoint

__all__ = ["CONVENTIONS", "import_vocalist", "parse_pixels"]

#: Input conventions of the published checkpoints (docs/reference/vocalist.md §1.3): the official VocaLiST weights were trained
#: on cv2-read BGR frames in [0, 1], MTDVocaLiST on torchvision-read RGB frames in [0, 255].
CONVENTIONS = {"vocalist": ("bgr", "unit"), "mtdvocalist": ("rgb", "byte")}


def parse_pixels(pixels: str) -> tuple[str, str]:
    """``"bgr-unit"`` -> ``("bgr", "unit")``: channel order and value range the weights expect."""
    order, _, scale = pixels.partition("-")
    if order not in ("rgb", "bgr") or scale not in ("unit", "byte"):
        raise UsageError(f"--pixels {pixels!r}: expected rgb-unit, rgb-byte, bgr-unit or bgr-byte")
    return order, scale


def import_vocalist(
    checkpoint: str | Path,
    out: str | Path,
    width: int = 512,
    pixels: str | None = None,
    overwrite: bool = False,
) -> Artifact:
    """Load a VocaLiST (width 512) or MTDVocaLiST (width 200) state dict strictly and write it as an artifact."""
    name = "vocalist" if width == 512 else "mtdvocalist"
    order, scale = CONVENTIONS[name] if pixels is None else parse_pixels(pixels)
    return import_checkpoint(
        checkpoint, out, ModelSpec(name, {"width": width}, order, scale), overwrite=overwrite
    )
