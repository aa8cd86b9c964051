"""Model artifacts: weights plus everything needed to rebuild and feed the model.

``model.pt`` holds ``{"state_dict", "spec": {"name", "kwargs"}, "input": {"pixel_order", "pixel_range"}}``: the
registry name and constructor arguments rebuild the network, and the pixel convention travels with the weights
because the two official checkpoints expect different ones (docs/reference/vocalist.md §1.3). The official files hold only
``{"state_dict", ...}``; :func:`import_checkpoint` wraps one into an artifact.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avkd.core.artifacts import (
    MODEL,
    Artifact,
    ArtifactWriter,
    atomic_write_bytes,
    load_artifact,
)
from avkd.core.errors import ArtifactError, UsageError
from avkd.models.registry import build_model

WEIGHTS = "model.pt"


@dataclass
class ModelSpec:
    """How to rebuild a model (registry name + kwargs) and how to feed it pixels."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    pixel_order: str = "rgb"
    pixel_range: str = "unit"

    def build(self) -> nn.Module:
        return build_model(self.name, **self.kwargs)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kwargs": self.kwargs,
            "pixel_order": self.pixel_order,
            "pixel_range": self.pixel_range,
        }


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_weights(path: Path, model: nn.Module, spec: ModelSpec) -> None:
    """Write ``model.pt`` atomically (a kill mid-save leaves the previous file intact)."""
    buffer = io.BytesIO()
    torch.save(
        {
            "state_dict": model.state_dict(),
            "spec": {"name": spec.name, "kwargs": spec.kwargs},
            "input": {"pixel_order": spec.pixel_order, "pixel_range": spec.pixel_range},
        },
        buffer,
    )
    atomic_write_bytes(path, buffer.getvalue())


@dataclass
class LoadedModel:
    model: nn.Module
    spec: ModelSpec
    artifact: Artifact | None


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild a model from a ``model`` artifact (or a bare ``model.pt``) in eval mode on ``device``."""
    path = Path(path)
    artifact = None
    weights = path
    if path.is_dir():
        artifact = load_artifact(path, kind=MODEL)
        weights = artifact.file(WEIGHTS)
    try:
        blob = torch.load(weights, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ArtifactError(f"{weights}: cannot read model weights ({exc})") from None
    if "spec" not in blob:
        raise ArtifactError(f"{weights}: not an avkd model file (no 'spec'); import it with `avkd import`")
    spec = ModelSpec(blob["spec"]["name"], dict(blob["spec"]["kwargs"]), **blob.get("input", {}))
    model = spec.build()
    model.load_state_dict(blob["state_dict"], strict=True)
    return LoadedModel(model.to(device).eval(), spec, artifact)


def import_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    spec: ModelSpec,
    overwrite: bool = False,
) -> Artifact:
    """Turn an official checkpoint (``{"state_dict": ...}``) into a model artifact, loading it strictly."""
    checkpoint = Path(checkpoint)
    try:
        blob = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ArtifactError(f"{checkpoint}: cannot read checkpoint ({exc})") from None
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise ArtifactError(f"{checkpoint}: no state_dict inside")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel-saved files
    model = spec.build()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(f"{checkpoint}: does not fit {spec.name}({spec.kwargs}): {first}") from None
    config = {"source": str(checkpoint.resolve()), **spec.to_json()}
    with ArtifactWriter(out, MODEL, config, overwrite=overwrite) as writer:
        save_weights(writer.path(WEIGHTS), model, spec)
        return writer.commit(metrics={"parameters": count_parameters(model)}, spec=spec.to_json())
