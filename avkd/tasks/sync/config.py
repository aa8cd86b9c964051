"""The sync task's stage configurations: teacher training, distillation and evaluation (all YAML/--set-able)."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

from avkd.core.config import bounded
from avkd.data.lrs2.dataset import SyncDataset, SyncSamplingConfig
from avkd.data.lrs2.store import FeatureStore
from avkd.evaluate.sync import VSHIFT, frames_problem
from avkd.models.device import device_problem
from avkd.models.io import ModelSpec
from avkd.models.registry import model_entrypoint
from avkd.tasks.sync.methods import METHODS
from avkd.train.loop import LoopConfig

__all__ = [
    "OBJECTIVES",
    "SYNC_INPUTS",
    "DistillConfig",
    "SyncEvalConfig",
    "SyncModelConfig",
    "SyncRunConfig",
    "SyncTrainConfig",
]


#: What this task's models take first (forward(video, audio features): VocaLiST's mel, SyncNet's MFCC; their
#: windows are cut by the model's input layout, avkd.data.lrs2.layouts): its stages refuse another task's model.
SYNC_INPUTS = ("video",)


@dataclass
class SyncModelConfig:
    """Which registered model, at which width (channels None = the width's default, see avkd.models.vocalist)."""

    name: str = "vocalist"
    width: int = bounded(512, ge=1)
    channels: list[int] | None = None
    #: Other constructor arguments of the model (e.g. ``{"embed_dropout": 0.0}``), checked against its signature.
    kwargs: dict[str, Any] = field(default_factory=dict)

    def spec(self, sampling: SyncSamplingConfig) -> ModelSpec:
        # width/channels are VocaLiST's; a model without them (syncnet: embed_dim and its channel lists, in
        # kwargs) is built from kwargs alone.
        takes = inspect.signature(model_entrypoint(self.name)).parameters
        kwargs: dict[str, Any] = {"width": self.width} if "width" in takes else {}
        kwargs.update(self.kwargs)
        if self.channels is not None:
            kwargs["channels"] = list(self.channels)
        return ModelSpec(self.name, kwargs, sampling.pixel_order, sampling.pixel_range)


@dataclass
class SyncRunConfig:
    """What every sync training run shares: how samples are drawn and which splits train and validate."""

    sampling: SyncSamplingConfig = field(default_factory=SyncSamplingConfig)
    train_split: str = "pretrain"
    val_split: str = "val"
    #: Samples per training epoch; None = one per training clip (the reference's epoch = len(file list)).
    samples_per_epoch: int | None = bounded(None, ge=1)
    val_samples: int = bounded(1024, ge=1)
    val_seed: int = 1234
    #: Keep checkpoints/last.pt (optimizer state included) in the finished artifact, to train on later.
    keep_checkpoint: bool = False

    def datasets(
        self, store: FeatureStore, sampling: SyncSamplingConfig, seed: int
    ) -> tuple[SyncDataset, SyncDataset]:
        """The training set (a new draw each epoch, reproducible from ``seed``) and the fixed validation set."""
        train = SyncDataset(store, self.train_split, sampling, samples=self.samples_per_epoch, seed=seed)
        val = SyncDataset(store, self.val_split, sampling, samples=self.val_samples, seed=self.val_seed)
        return train, val


#: Training objectives (avkd train --objective): VocaLiST's BCE on balanced pairs, or, for a model that embeds each
#: window (its taps ``video``/``audio``: syncnet, avsiam_sync), Perfect Match or SyncNet's contrastive loss, or,
#: for any sync model, the 31-way within-clip objective ``offsets`` on its own fused scores
#: (avkd/losses/embedding.py).
OBJECTIVES = ("bce", "pm", "contrastive", "offsets")


def _objective_problem(value: str) -> str | None:
    return None if value in OBJECTIVES else f"must be one of {', '.join(OBJECTIVES)}"


@dataclass
class SyncTrainConfig(SyncRunConfig):
    model: SyncModelConfig = field(default_factory=SyncModelConfig)
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(epochs=50, batch_size=128, lr=5e-5))
    objective: str = bounded("bce", check=_objective_problem)
    #: pm, offsets: windows per run (each sample is that many consecutive windows of one clip; batch_size counts
    #: runs). offsets: 31 gives a run's middle window the evaluator's 31 candidates.
    pm_steps: int = bounded(8, ge=2)
    #: Options of the objective's loss (pm: init_w, init_b; contrastive: margin; offsets: vshift, 15).
    objective_options: dict[str, Any] = field(default_factory=dict)


def _student_loop() -> LoopConfig:
    """The MTD student schedule (docs/reference/vocalist.md §3.2): 80 epochs, Adam 5e-5, warm-up 10 + step(20, 0.8), batch 128."""
    return LoopConfig(
        epochs=80,
        batch_size=128,
        lr=5e-5,
        scheduler="warmup_step",
        warmup_epochs=10,
        step_epochs=20,
        gamma=0.8,
    )


@dataclass
class DistillConfig(SyncRunConfig):
    method: str = "mtd"
    #: uniform | manual | aw13 | aw25 | uw13 | uw25; None = the method's default (avkd.tasks.sync.methods).
    weighting: str | None = None
    #: Layers whose CAD/VR are distilled (mtd, nmtd, minilm): all, fusion4, av1-4,fusion1-4, ...
    layers: str | None = None
    temperature: float = bounded(1.0, gt=0.0)
    #: The uniform weighting's factor on the distillation terms.
    alpha: float = bounded(1.0, ge=0.0)
    #: manual weighting: term name (or fnmatch pattern, e.g. "cad/*") -> weight.
    manual_weights: dict[str, float] = field(default_factory=dict)
    #: Extra keyword arguments of the loss (e.g. {"mode": "binary"} for kd, {"beta": 10} for fitnets).
    loss_options: dict[str, Any] = field(default_factory=dict)
    student: SyncModelConfig = field(default_factory=lambda: SyncModelConfig(name="mtdvocalist", width=200))
    loop: LoopConfig = field(default_factory=_student_loop)
    #: Compute, on the validation set each epoch, the MTD, last-layer MTD and FitNets losses of the student
    #: against the teacher whatever the method (the paper's Figure 4 "loss ratio" curves).
    monitor_losses: bool = True

    def resolved(self) -> DistillConfig:
        """The method's defaults filled in (weighting, layers); an unknown method is a usage error."""
        method = METHODS.get(self.method)
        return dataclasses.replace(
            self,
            weighting=self.weighting or method.weighting,
            layers=self.layers if self.layers is not None else method.layers,
        )


@dataclass
class SyncEvalConfig:
    split: str = "test"
    frames: list[int] = field(
        default_factory=lambda: [5, 7, 9, 11, 13, 15], metadata={"check": frames_problem}
    )
    tolerance: int = bounded(1, ge=0, le=VSHIFT)
    batch_size: int = bounded(512, ge=1)
    device: str = bounded("cpu", check=device_problem)
    amp: bool = True
    #: Evaluate only the first ``limit`` clips of the split (a quick look).
    limit: int | None = bounded(None, ge=1)
    save_scores: bool = False
    #: "avkd" (all N−4 windows, out-of-range candidates excluded) or "reference" (the official script's
    #: arithmetic, for comparison with published numbers; :mod:`avkd.evaluate.reference_protocol`).
    protocol: str = "avkd"
