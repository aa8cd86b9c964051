"""``avkd train teacher --task mosei``: MulT (or one of its branches) as a 7-way classifier on CMU-MOSEI features.

MulT's own recipe (docs/reference/mult-mosei.md §1.1): Adam 1e-3, batch 24, gradient clipping 0.8, 40 epochs. MulT regresses the
sentiment with an L1 loss; the seed paper trains a 7-way classifier (docs/reference/mult-mosei.md §1.1 "Obs", §5.5), so the head has
7 outputs and the loss is cross-entropy on ``label7`` (round(clip(y, −3, 3)) + 3). The checkpoint is selected on
validation 7-class accuracy, the number the seed paper reports (MulT selects on validation loss; set
``loop.select_metric=val_loss`` and ``loop.select_mode=min`` for that). MulT's ReduceLROnPlateau is not used: the
shared loop has per-epoch schedules only (a difference, noted).

Any registered emotion model trains here (``model.name``): ``avsiam_emotion`` (AVSiam over COVAREP and FACET maps,
:mod:`avkd.models.avsiam_emotion`) draws its head per forward in training (mixed modalities) and is validated,
hence selected, in its ``eval_mode`` (video-only by default). ``init`` starts it from a pre-trained AVSiam
``model`` artifact (an input of the new artifact, by id), ``head_lr`` scales the heads' learning rate (AVSiam's
fine-tuning recipe, docs/reference/avsiam-mfh-syncnet.md §1.8).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from avkd.core.artifacts import MODEL, MOSEI_FEATURES, Artifact, load_artifact
from avkd.core.errors import UsageError
from avkd.data.mosei.dataset import MoseiDataset
from avkd.data.mosei.labels import label7
from avkd.evaluate.classify import emotion_metrics
from avkd.models.avsiam import MODES, AVSiam
from avkd.models.avsiam_emotion import init_from_avsiam
from avkd.models.io import load_model
from avkd.models.registry import model_entrypoint
from avkd.tasks.avsiam.finetune import head_param_groups
from avkd.tasks.emotion.config import EmotionTrainConfig
from avkd.train.checkpoint import seed_everything
from avkd.train.loop import ModelTrainTask, fit_stage

__all__ = ["EmotionTeacherTask", "EpochShuffle", "predict", "train_emotion_teacher"]


class EpochShuffle(Dataset):
    """A dataset read in a new order each epoch, the order a pure function of (seed, epoch).

    The shared loop reads datasets in index order (so a resumed run sees the same batches); shuffling lives here,
    reproducibly, instead of in a sampler whose state would have to be checkpointed.
    """

    def __init__(self, base: Dataset, seed: int) -> None:
        self.base, self.seed = base, seed
        self.order = np.arange(len(base))  # type: ignore[arg-type]

    def set_epoch(self, epoch: int) -> None:
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.base))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> Any:
        return self.base[int(self.order[index])]


def predict(
    model: nn.Module,
    dataset: Dataset,
    device: torch.device,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, C), continuous labels (N,)) over a split, in dataset order; ``progress(n)`` after each batch
    of ``n`` samples."""
    logits, labels = [], []
    with torch.inference_mode():
        for text, audio, vision, label, _ in DataLoader(dataset, batch_size=batch_size):
            logits.append(model(text.to(device), audio.to(device), vision.to(device)).float().cpu())
            labels.append(label)
            if progress is not None:
                progress(len(label))
    return torch.cat(logits).numpy(), torch.cat(labels).numpy()


class EmotionTeacherTask(ModelTrainTask):
    """Cross-entropy training of a 7-way emotion model (the fit loop's TrainTask)."""

    best_keys = ("val_acc7", "val_f1")

    def __init__(self, config: EmotionTrainConfig, artifact: Artifact, init: Artifact | None = None) -> None:
        self.config = config
        self.spec = config.model.spec()
        # A model whose input size is a constructor argument (avsiam_emotion's maps) gets the features' lengths
        # unless told otherwise; the saved spec records them.
        taken = inspect.signature(model_entrypoint(self.spec.name)).parameters
        for key in ("audio_len", "vision_len"):
            if key in taken and key not in self.spec.kwargs:
                self.spec.kwargs[key] = int(artifact.config[key])
        seed_everything(config.loop.seed)
        self.model = self.spec.build()
        self.init = init
        if init is not None:
            source = load_model(init.path).model
            if not isinstance(self.model, AVSiam) or not isinstance(source, AVSiam):
                raise UsageError(
                    f"{init.path}: init loads a pre-trained AVSiam into an AVSiam model; this is "
                    f"{type(source).__name__} into {self.spec.name}"
                )
            init_from_avsiam(self.model, source, where=str(init.path))
        if config.head_lr != 1.0 and not any("head" in n for n, _ in self.model.named_parameters()):
            raise UsageError(
                f"head_lr {config.head_lr}: model {self.spec.name} has no parameters named 'head'"
            )
        self.train = EpochShuffle(MoseiDataset(artifact, config.train_split), config.loop.seed)
        self.val = MoseiDataset(artifact, config.val_split)
        self.train_labels = self.train.base.labels()
        # A one-modality MulT branch keeps the other branches' blocks (the official state-dict layout) but never
        # runs them: under DistributedDataParallel their parameters must be looked for each step.
        # The same for a model that says so (AVSiam runs one head, and in "a"/"v" one side, per forward).
        self.find_unused_parameters = self.spec.kwargs.get("branch", "complete") != "complete" or bool(
            getattr(self.model, "find_unused_parameters", False)
        )

    def param_groups(self) -> list[dict[str, Any]]:
        if self.config.head_lr == 1.0:
            return super().param_groups()
        return head_param_groups(self.model, self.config.loop.lr, self.config.head_lr)

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), **({"init": self.init.id} if self.init is not None else {})}

    def loss(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        text, audio, vision, label, _ = batch
        logits = self.model(text.to(device), audio.to(device), vision.to(device))
        mode = getattr(self.model, "last_mode", None)
        # A model that picks its inputs per forward: the epoch means of these are each mode's share.
        logs = {f"mode_{m}": float(m == mode) for m in MODES} if mode is not None else {}
        return F.cross_entropy(logits.float(), label7(label.to(device))), logs

    def validate(self, device: torch.device) -> dict[str, float]:
        logits, labels = predict(self.model, self.val, device, self.config.loop.batch_size)
        metrics = emotion_metrics(labels, logits=logits, train_labels=self.train_labels)
        loss = F.cross_entropy(torch.from_numpy(logits), label7(torch.from_numpy(labels)))
        return {"val_loss": float(loss), "val_acc7": metrics.acc7, "val_f1": metrics.f1_weighted}

    def close(self) -> None:
        self.train.base.close()
        self.val.close()


def train_emotion_teacher(
    config: EmotionTrainConfig,
    features: str | Path,
    out: str | Path,
    overwrite: bool = False,
    resume: bool = False,
    show_progress: bool = True,
    init: str | Path | None = None,
) -> Artifact:
    """Train an emotion model on a ``mosei-features`` artifact into a ``model`` artifact (best val acc7); with
    ``config.init`` (or ``init``, which sets it, as the other tasks' stages take it), from a pre-trained AVSiam
    artifact (also an input of the new one)."""
    if init is not None:
        config = dataclasses.replace(config, init=str(init))

    def build() -> tuple[EmotionTeacherTask, list[Artifact]]:
        feats = load_artifact(features, kind=MOSEI_FEATURES)
        init = load_artifact(config.init, kind=MODEL) if config.init is not None else None
        return EmotionTeacherTask(config, feats, init), [feats, *([init] if init is not None else [])]

    return fit_stage(out, config, build, overwrite=overwrite, resume=resume, show_progress=show_progress)
