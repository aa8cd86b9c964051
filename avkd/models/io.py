"""Model artifacts: weights plus everything needed to rebuild and feed the model.

``model.pt`` holds ``{"state_dict", "spec": {"name", "kwargs"}, "input": {"pixel_order", "pixel_range"}}``: the
registry name and constructor arguments rebuild the network, and the pixel convention travels with the weights
because the two official checkpoints expect different ones (docs/reference/vocalist.md §1.3). The official files hold only
``{"state_dict", ...}``; :func:`import_checkpoint` wraps one into an artifact.
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Sequence
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
        """The model, newly initialised; a constructor that refuses its arguments (a width of 0, an unknown
        branch) is a usage error naming the model."""
        try:
            return build_model(self.name, **self.kwargs)
        except (ValueError, TypeError, RuntimeError, ZeroDivisionError) as exc:
            raise UsageError(f"model {self.name}({self.kwargs}): {_first_line(exc)}") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kwargs": self.kwargs,
            "pixel_order": self.pixel_order,
            "pixel_range": self.pixel_range,
        }


def count_parameters(model: nn.Module) -> int:
    """Parameters of ``model``; a model run elsewhere (an ONNX export, :mod:`avkd.models.onnx_model`) holds
    none in PyTorch and reports its source model's count as ``recorded_parameters``."""
    recorded = getattr(model, "recorded_parameters", None)
    if recorded is not None:
        return int(recorded)
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

    def reference(self, given: str | Path) -> dict[str, Any]:
        """What an evaluation's results say about the model: the artifact's id and kind (its path is in the
        evaluation's inputs, so the results, and their id, do not depend on where it lies), or the path of a
        bare weights file, which has no id."""
        if self.artifact is None:
            return {"path": str(given)}
        return {"id": self.artifact.id, "kind": self.artifact.kind}


def read_weights(path: Path) -> Any:
    """``torch.load`` of a weights file, tensors only (no code runs), every failure one line naming the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ArtifactError(f"{path}: is a folder, not a weights file") from None
    except Exception as exc:
        # Whatever an untrusted file makes the unpickler raise (EOFError, IndexError, ...). PyTorch's message can
        # suggest weights_only=False, which would let the file run code: never relayed.
        reason = "empty file" if path.is_file() and path.stat().st_size == 0 else _first_line(exc)
        raise ArtifactError(f"{path}: not a readable PyTorch weights file ({reason})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(" In PyTorch 2.6")[0].split("Please file an issue")[0].strip().rstrip(".")


def load_state(model: nn.Module, state: dict[str, Any], where: Path, spec: ModelSpec) -> None:
    """``load_state_dict(strict=True)``, a mismatch summarised in one line (counts and first keys)."""
    if not isinstance(state, dict):
        raise ArtifactError(f"{where}: no state_dict inside")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        k
        for k in expected
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes)):
            if keys:
                parts.append(f"{len(keys)} key(s) {label} (e.g. {keys[0]})")
        raise UsageError(f"{where}: does not fit {spec.name}({spec.kwargs}): {'; '.join(parts)}")
    model.load_state_dict(state, strict=True)


def model_inputs(model: nn.Module) -> tuple[str, ...]:
    """The names of a model's forward inputs (``taps`` and keyword-only options left out)."""
    params = inspect.signature(model.forward).parameters.values()
    return tuple(
        p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "taps"
    )


def load_model(
    path: str | Path, device: str | torch.device = "cpu", inputs: Sequence[str] | None = None
) -> LoadedModel:
    """Rebuild a model from a ``model`` artifact (or a bare ``model.pt``) in eval mode on ``device``.

    ``inputs`` names the forward inputs the caller feeds (a task's: ``video, mel`` or ``text, audio, vision``):
    a model that takes others (another task's) is a usage error before any work, not a failure deep inside.
    """
    path = Path(path)
    artifact = None
    weights = path
    if path.is_dir():
        artifact = load_artifact(path, kind=MODEL)
        weights = artifact.file(WEIGHTS)
    blob = read_weights(weights)
    if not isinstance(blob, dict) or "spec" not in blob:
        raise ArtifactError(f"{weights}: not an avkd model file (no 'spec'); import it with `avkd import`")
    spec = ModelSpec(blob["spec"]["name"], dict(blob["spec"]["kwargs"]), **blob.get("input", {}))
    model = spec.build()
    if inputs is not None and model_inputs(model)[: len(inputs)] != tuple(inputs):
        raise UsageError(
            f"{path}: a {spec.name!r} model takes ({', '.join(model_inputs(model))}); this stage feeds "
            f"({', '.join(inputs)}): another task's model?"
        )
    load_state(model, blob.get("state_dict"), weights, spec)
    return LoadedModel(model.to(device).eval(), spec, artifact)


def import_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    spec: ModelSpec,
    overwrite: bool = False,
) -> Artifact:
    """Turn an official checkpoint (``{"state_dict": ...}``) into a model artifact, loading it strictly."""
    checkpoint = Path(checkpoint)
    blob = read_weights(checkpoint)
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise ArtifactError(f"{checkpoint}: no state_dict inside")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel-saved files
    model = spec.build()
    load_state(model, state, checkpoint, spec)
    config = {"source": str(checkpoint.resolve()), **spec.to_json()}
    with ArtifactWriter(out, MODEL, config, overwrite=overwrite, resumable=False) as writer:
        save_weights(writer.path(WEIGHTS), model, spec)
        return writer.commit(metrics={"parameters": count_parameters(model)}, spec=spec.to_json())
