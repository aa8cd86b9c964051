"""``avkd import vocalist`` / ``avkd import syncnet``: an official checkpoint (a file the user already has) into a
model artifact, with the pixel convention it was trained on."""

from __future__ import annotations

from pathlib import Path

from avkd.core.artifacts import MODEL, Artifact, ArtifactWriter
from avkd.core.errors import ArtifactError, UsageError
from avkd.models.io import (
    WEIGHTS,
    ModelSpec,
    count_parameters,
    import_checkpoint,
    load_state,
    read_weights,
    save_weights,
)

__all__ = ["CONVENTIONS", "import_syncnet", "import_vocalist", "parse_pixels"]

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


def import_syncnet(checkpoint: str | Path, out: str | Path, overwrite: bool = False) -> Artifact:
    """Load the released ``syncnet_v2.model`` (a bare state dict of joonson/syncnet_python's ``S``) strictly into
    :class:`avkd.models.syncnet.SyncNet` and write it as a model artifact (pixels BGR 0..255, §3.2).

    Every key and shape must match, with one allowance: BatchNorm ``num_batches_tracked`` counters, which files
    written before PyTorch 0.4.1 do not have, are set to 0 when absent (what ``BatchNorm`` itself does for such
    files; the counter is unused in eval mode and with the default momentum).
    """
    checkpoint = Path(checkpoint)
    blob = read_weights(checkpoint)
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not state:
        raise ArtifactError(f"{checkpoint}: no state_dict inside")
    state = {str(k).removeprefix("module."): v for k, v in state.items()}
    spec = ModelSpec("syncnet", {}, "bgr", "byte")
    model = spec.build()
    for key, value in model.state_dict().items():
        if (
            key.endswith(".num_batches_tracked")
            and key not in state
            and key.removesuffix("num_batches_tracked") + "running_mean" in state
        ):
            state[key] = value.new_zeros(())
    load_state(model, state, checkpoint, spec)
    config = {"source": str(checkpoint.resolve()), **spec.to_json()}
    with ArtifactWriter(out, MODEL, config, overwrite=overwrite, resumable=False) as writer:
        save_weights(writer.path(WEIGHTS), model, spec)
        return writer.commit(metrics={"parameters": count_parameters(model)}, spec=spec.to_json())
