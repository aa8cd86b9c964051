"""``avkd distill``: train a student sync model from a frozen teacher artifact with a named distillation method.

A method is a loss from :mod:`avkd.losses.sync` (named terms, e.g. CAD and VR per layer) combined with the
student's BCE by a weighting from :mod:`avkd.losses.weighting`; both go through the same training loop as the
teacher (:func:`avkd.train.loop.fit`). The teacher runs in eval mode under ``torch.inference_mode`` and is asked
only for the internals the loss needs (docs/reference/vocalist.md §5.2: "VocaLiST is frozen, and we only train MTDVocaLiST").

The methods and their defaults are :data:`avkd.tasks.sync.methods.METHODS`.

Any sync model on VocaLiST's windows can be either side: a method that reads only the two models' scores (``kd``,
and ``bce``, which ignores the teacher) takes e.g. an ``avsiam_sync`` student or teacher; a method whose taps a
model does not record (CAD/VR, FitNets and RKD read VocaLiST's internals) is refused in one line before any work.
The validation-time monitors (``monitor_losses``) need VocaLiST's taps on both sides and are left out otherwise.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from avkd.core.artifacts import LRS2_FEATURES, Artifact, load_artifact
from avkd.core.errors import UsageError
from avkd.data.lrs2.dataset import SyncDataset
from avkd.data.lrs2.layouts import LAYOUTS, layout_of
from avkd.data.lrs2.store import FeatureStore
from avkd.losses.base import build_loss
from avkd.losses.layers import parse_layers
from avkd.losses.weighting import build_weighting
from avkd.models.attention import Tapped, TapRequest
from avkd.models.device import resolve_device
from avkd.models.io import ModelSpec, count_parameters, load_model, save_weights
from avkd.models.registry import model_entrypoint
from avkd.tasks.sync.config import SYNC_INPUTS, DistillConfig
from avkd.tasks.sync.methods import METHODS
from avkd.tasks.sync.train import validate_sync
from avkd.train.checkpoint import seed_everything
from avkd.train.loop import fit_stage

__all__ = ["DistillTask", "Monitors", "TeacherTaps", "distill_sync"]


def weighting_options(config: DistillConfig) -> dict[str, Any]:
    """Each weighting takes only its own settings (a stray one is a usage error, not silently ignored)."""
    if config.weighting == "uniform":
        return {"alpha": config.alpha}
    if config.weighting == "manual":
        if not config.manual_weights:
            raise UsageError(
                "weighting 'manual' needs weights: --set manual_weights.cad/mem4=1.0 (or a config file)"
            )
        return {"weights": dict(config.manual_weights)}
    return {}


class TeacherTaps:
    """The frozen teacher: eval mode, no gradients, only the requested internals, tensors usable by autograd."""

    def __init__(self, model: nn.Module, taps: list[str]) -> None:
        self.model = model.eval().requires_grad_(False)
        self.taps = taps

    def __call__(self, video: torch.Tensor, mel: torch.Tensor) -> Tapped:
        with torch.inference_mode():
            if self.taps:
                return self.model(video, mel, taps=TapRequest(*self.taps))
            return Tapped(self.model(video, mel), {})  # the losses take inference tensors (teacher_tensor)


class DistillTask:
    """Student + loss + weighting for the training loop; the teacher is an input, never checkpointed."""

    best_keys = ("val_f1", "val_acc")

    def __init__(
        self, config: DistillConfig, teacher: nn.Module, teacher_spec: ModelSpec, store: FeatureStore
    ) -> None:
        self.config = config
        options = dict(config.loss_options)
        if config.layers is not None:  # the CAD/VR methods
            options.setdefault("layers", config.layers)
            options.setdefault("temperature", config.temperature)
        self.store = store
        self.loss_fn = build_loss(METHODS.get(config.method).loss, **options)
        self.taps = self.loss_fn.taps()
        self.spec = dataclasses.replace(
            config.student.spec(config.sampling),
            pixel_order=teacher_spec.pixel_order,
            pixel_range=teacher_spec.pixel_range,
        )
        seed_everything(config.loop.seed)
        self.student = self.spec.build()
        for who, name, model in (
            ("student", self.spec.name, self.student),
            ("teacher", teacher_spec.name, teacher),
        ):
            if self.taps and not _records(model, self.taps):
                raise UsageError(
                    f"method {config.method!r} reads the {who}'s internals ({self.taps[0]}, ...), which a "
                    f"{name!r} model does not record; distil it with --method kd or bce"
                )
        self.loss_fn.setup(student=self.student, teacher=teacher)  # e.g. FitNets sizes its projection
        self.weighting = build_weighting(
            config.weighting, self.loss_fn.term_names(), **weighting_options(config)
        )
        self.teacher = TeacherTaps(teacher, self.taps)
        sampling = dataclasses.replace(
            config.sampling, pixel_order=teacher_spec.pixel_order, pixel_range=teacher_spec.pixel_range
        )
        self.train, self.val = config.datasets(store, sampling, config.loop.seed)
        monitor = config.monitor_losses and all(_records(m, MONITOR_TAPS) for m in (teacher, self.student))
        self.monitors = Monitors(teacher, self.student) if monitor else None

    def modules(self) -> dict[str, nn.Module]:
        return {"student": self.student, "loss": self.loss_fn, "weighting": self.weighting}

    def param_groups(self) -> list[dict[str, Any]]:
        params = [*self.student.parameters(), *self.loss_fn.parameters(), *self.weighting.parameters()]
        return [{"params": [p for p in params if p.requires_grad]}]

    def train_dataset(self) -> SyncDataset:
        return self.train

    def loss(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        video, mel, label = (t.to(device, non_blocking=True) for t in batch)
        # The BCE baseline never reads the teacher: skip its pass (the most expensive part of a step).
        teacher = self.teacher(video, mel) if self.loss_fn.uses_teacher else Tapped(label, {})
        request = self.loss_fn.tap_request()
        student = self.student(video, mel, taps=request) if request else Tapped(self.student(video, mel), {})
        bce = F.binary_cross_entropy_with_logits(student.logits.float(), label)
        terms = self.loss_fn(student, teacher, label)
        total, logs = self.weighting(bce, terms)
        # The weighting's logs hold every term, its effective weight and the BCE, fetched in one device copy.
        return total, {
            f"train/{k}" if not k.startswith("w/") else f"weight/{k[2:]}": v for k, v in logs.items()
        }

    def validate(self, device: torch.device) -> dict[str, float]:
        metrics = validate_sync(
            self.student, self.val, device, self.config.loop.batch_size, self.config.loop.num_workers
        )
        if self.monitors is not None:
            metrics.update(self.monitors.measure(self.student, self.val, device, self.config.loop.batch_size))
        return metrics

    def export(self, path: Path) -> None:
        save_weights(path, self.student, self.spec)

    def summary(self) -> dict[str, Any]:
        return {
            "parameters": count_parameters(self.student),
            "teacher_parameters": count_parameters(self.teacher.model),
            "method": self.config.method,
            "weighting": self.config.weighting,
            "layers": self.config.layers,
        }

    def close(self) -> None:
        self.store.close()


#: The taps of the validation-time monitors (mtd over all layers, fitnets), VocaLiST's (checked by name).
MONITOR_TAPS = ("av.1.scores", "mem.emb")


def _records(model: nn.Module, taps: list[str] | tuple[str, ...]) -> bool:
    """Whether ``model`` records every tap pattern of ``taps``."""
    names = model.tap_names() if hasattr(model, "tap_names") else []
    return not TapRequest(*taps).unmatched(names)


class Monitors:
    """Validation-time MTD, last-layer MTD and FitNets losses of the student against the teacher (paper Fig. 4).

    The FitNets monitor projects the teacher's last fusion output with a fixed random projection, as the MTD
    trainer logs it (docs/reference/vocalist.md §3.2, "logging only"); only the curve's shape over epochs is read.
    """

    def __init__(self, teacher: nn.Module, student: nn.Module) -> None:
        self.losses = {
            "val/mtd": build_loss("mtd", layers="all"),
            "val/last_mtd": build_loss("mtd", layers="fusion4"),
            "val/fitnets": build_loss("fitnets", trainable_projection=False),
        }
        with torch.random.fork_rng(devices=[]):  # a fixed projection, without touching the training RNG
            torch.manual_seed(0)
            for loss in self.losses.values():
                loss.setup(student=student, teacher=teacher)
        self.teacher = TeacherTaps(teacher, sorted({t for loss in self.losses.values() for t in loss.taps()}))

    def measure(
        self, student: nn.Module, dataset: SyncDataset, device: torch.device, batch_size: int
    ) -> dict[str, float]:
        sums = dict.fromkeys(self.losses, 0.0)
        batches = 0
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size)
        with torch.no_grad():
            for video, mel, label in loader:
                video, mel, label = video.to(device), mel.to(device), label.to(device)
                teacher = self.teacher(video, mel)
                out = student(video, mel, taps=TapRequest(*self.teacher.taps))  # eval mode: no dropout
                for name, loss in self.losses.items():
                    sums[name] += float(sum(loss.to(device)(out, teacher, label).values()))
                batches += 1
        return {name: value / max(batches, 1) for name, value in sums.items()}


def distill_sync(
    config: DistillConfig,
    teacher: str | Path,
    features: str | Path,
    out: str | Path,
    overwrite: bool = False,
    resume: bool = False,
    show_progress: bool = True,
) -> Artifact:
    """Distill a student from a ``model`` artifact on an ``lrs2-features`` artifact into a ``model`` artifact."""
    config = config.resolved()
    if config.layers:
        parse_layers(config.layers)  # a bad --layers is a usage error before any work

    def build() -> tuple[DistillTask, list[Artifact]]:
        feats = load_artifact(features, kind=LRS2_FEATURES)
        loaded = load_model(teacher, device="cpu", inputs=SYNC_INPUTS)
        # The distillation data are VocaLiST's windows (48x96 lips, mel): a SyncNet (224x224 faces, MFCC) can be
        # neither teacher nor student here.
        for who, name, model in (
            ("teacher", loaded.spec.name, loaded.model),
            ("student", config.student.name, model_entrypoint(config.student.name)),
        ):
            if layout_of(model) is not LAYOUTS["vocalist"]:
                raise UsageError(
                    f"{who} {name!r} reads {layout_of(model).name} inputs; distillation feeds VocaLiST's"
                )
        task = DistillTask(config, loaded.model, loaded.spec, FeatureStore(feats))
        task.teacher.model.to(resolve_device(config.loop.device))
        return task, [feats] + ([loaded.artifact] if loaded.artifact else [])

    return fit_stage(out, config, build, overwrite=overwrite, resume=resume, show_progress=show_progress)
