"""``avkd train teacher``: a sync model (VocaLiST, or the width-200 student as the BCE-only baseline) on LRS2 features.

Reference §3.1: balanced positive/negative sampling from the pretrain split, Adam 5e-5, BCE with logits, batch
128. Differences, each a fix of a pain point docs/reference/vocalist.md lists (§7.6): validation uses a fixed, seeded
sample set (the same pairs every epoch, so F1 is comparable across epochs and selects the best checkpoint), and
F1 is computed over the whole validation set at p = 0.5 (logit 0) rather than averaged per batch at logit 0.5.

``--objective pm | contrastive`` trains a model that embeds each window (syncnet) with the Perfect Match or the
contrastive loss (avkd/losses/embedding.py) instead, on windows cut in the model's input layout
(avkd/data/lrs2/layouts.py). pm samples runs of ``pm_steps`` consecutive windows (``batch_size`` runs a step);
contrastive samples the same balanced pairs as BCE. Their validation is a fixed set of runs: ``val_acc`` is the
fraction of video windows whose best-scoring audio window of the run is their own (the PM top-1 of
syncnet_trainer), ``val_loss`` the objective on fixed validation samples; ``val_acc`` selects the best epoch
unless ``loop.select_metric`` says otherwise.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from avkd.core.artifacts import LRS2_FEATURES, Artifact, load_artifact
from avkd.core.errors import UsageError
from avkd.data.lrs2.dataset import SyncDataset
from avkd.data.lrs2.layouts import layout_of
from avkd.data.lrs2.sequences import SyncSequenceDataset
from avkd.data.lrs2.store import FeatureStore
from avkd.losses.base import DistillLoss, build_loss
from avkd.models.attention import Tapped
from avkd.tasks.sync.config import SyncTrainConfig
from avkd.train.checkpoint import seed_everything
from avkd.train.loop import ModelTrainTask, fit_stage

__all__ = [
    "SyncTeacherTask",
    "objective_terms",
    "run_accuracy",
    "train_sync_teacher",
    "validate_sync",
    "weighted_f1",
]


def weighted_f1(labels: torch.Tensor, predictions: torch.Tensor) -> float:
    """sklearn's ``f1_score(average='weighted')`` for binary labels: per-class F1 weighted by support."""
    total = labels.numel()
    score = 0.0
    for cls in (0, 1):
        tp = int(((predictions == cls) & (labels == cls)).sum())
        fp = int(((predictions == cls) & (labels != cls)).sum())
        fn = int(((predictions != cls) & (labels == cls)).sum())
        denom = 2 * tp + fp + fn
        f1 = 2 * tp / denom if denom else 0.0
        score += f1 * int((labels == cls).sum()) / total
    return score


class SyncTeacherTask(ModelTrainTask):
    """Training of one sync model with BCE, Perfect Match or the contrastive loss (the fit loop's TrainTask)."""

    def __init__(self, config: SyncTrainConfig, store: FeatureStore) -> None:
        self.config = config
        self.spec = config.model.spec(config.sampling)
        seed_everything(config.loop.seed)  # the initial weights are part of what the seed reproduces
        self.model = self.spec.build()
        self.store = store
        self.objective = config.objective
        self.best_keys = ("val_f1", "val_acc") if self.objective == "bce" else ("val_acc", "val_loss")
        if self.objective == "bce":
            if layout_of(self.model).name != "vocalist":  # BCE trains on a logit; a distance model has none
                raise UsageError(
                    f"--objective bce trains VocaLiST-style classifiers; train {config.model.name!r} with "
                    "--objective pm or --objective contrastive"
                )
            self.train, self.val = config.datasets(store, config.sampling, config.loop.seed)
            return
        self.objective_loss = build_loss(self.objective, **config.objective_options)
        missing = [t for t in self.objective_loss.taps() if t not in getattr(self.model, "tap_names", list)()]
        if missing:
            raise UsageError(
                f"--objective {self.objective} needs a model that embeds each window (taps "
                f"{', '.join(self.objective_loss.taps())}, e.g. syncnet); {config.model.name!r} has none"
            )
        layout, c = layout_of(self.model), config.sampling
        runs = functools.partial(
            SyncSequenceDataset, store, layout=layout, steps=config.pm_steps, pixel_order=c.pixel_order,
            pixel_range=c.pixel_range,
        )  # fmt: skip
        self.val_runs = runs(config.val_split, samples=config.val_samples, seed=config.val_seed)
        if self.objective == "pm":
            self.train = runs(config.train_split, samples=config.samples_per_epoch, seed=config.loop.seed)
            self.val = self.val_runs
        else:
            pairs = functools.partial(SyncDataset, store, config=c, layout=layout)
            self.train = pairs(config.train_split, samples=config.samples_per_epoch, seed=config.loop.seed)
            self.val = pairs(config.val_split, samples=config.val_samples, seed=config.val_seed)

    def modules(self) -> dict[str, nn.Module]:
        if self.objective == "bce":
            return {"model": self.model}
        return {"model": self.model, "objective": self.objective_loss}  # PM's learnable scale and shift

    def param_groups(self) -> list[dict[str, Any]]:
        params = list(self.model.parameters())
        if self.objective != "bce":
            params += [p for p in self.objective_loss.parameters() if p.requires_grad]
        return [{"params": params}]

    def loss(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        if self.objective == "bce":
            video, mel, label = (t.to(device, non_blocking=True) for t in batch)
            logits = self.model(video, mel)
            return F.binary_cross_entropy_with_logits(logits.float(), label), {}
        terms = objective_terms(self.model, self.objective_loss, batch, device)
        return terms[self.objective], {}

    def validate(self, device: torch.device) -> dict[str, float]:
        loop = self.config.loop
        if self.objective == "bce":
            return validate_sync(self.model, self.val, device, loop.batch_size, loop.num_workers)
        losses = [
            float(objective_terms(self.model, self.objective_loss, batch, device)[self.objective])
            for batch in DataLoader(self.val, batch_size=loop.batch_size, num_workers=loop.num_workers)
        ]
        return {
            "val_loss": float(np.mean(losses)),
            "val_acc": run_accuracy(self.model, self.val_runs, device, loop.batch_size, loop.num_workers),
        }

    def close(self) -> None:
        self.store.close()


def objective_terms(
    model: nn.Module, loss: DistillLoss, batch: Any, device: torch.device
) -> dict[str, torch.Tensor]:
    """An embedding objective's terms for a batch: runs (B, T, ...) for pm, pairs with labels for contrastive.

    A run's windows are flattened to B·T windows with the run index as the label, so the PM loss matches each
    video step among the steps of its own run."""
    if len(batch) == 2:  # runs
        video, audio = (t.to(device, non_blocking=True) for t in batch)
        b, steps = video.shape[:2]
        video, audio = video.flatten(0, 1), audio.flatten(0, 1)
        labels = torch.arange(b, device=device).repeat_interleave(steps)
    else:
        video, audio, labels = (t.to(device, non_blocking=True) for t in batch)
    out = model(video, audio, taps=loss.tap_request())
    return loss(out, Tapped(out.logits, {}), labels)


def run_accuracy(
    model: nn.Module, runs: SyncSequenceDataset, device: torch.device, batch_size: int, workers: int = 0
) -> float:
    """Fraction of video windows whose best-scoring audio window of the same run (``model.fuse``) is their own."""
    hits, total = 0, 0
    for video, audio in DataLoader(runs, batch_size=batch_size, num_workers=workers):
        b, steps = video.shape[:2]
        v = model.encode_video(video.flatten(0, 1).to(device))  # (1, B·T, D)
        a = model.encode_audio(audio.flatten(0, 1).to(device))
        rows = torch.arange(b * steps, device=device).repeat_interleave(steps)  # video i against ...
        cols = (rows // steps) * steps + torch.arange(steps, device=device).repeat(
            b * steps
        )  # its run's audio
        scores = model.fuse(v.index_select(1, rows), a.index_select(1, cols)).view(b * steps, steps)
        hits += int((scores.argmax(dim=1) == torch.arange(steps, device=device).repeat(b)).sum())
        total += b * steps
    return hits / total


def validate_sync(
    model: nn.Module, dataset: SyncDataset, device: torch.device, batch_size: int, workers: int = 0
) -> dict[str, float]:
    """Loss, accuracy and weighted F1 over a fixed validation sample set."""
    logits, labels = [], []
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    with torch.inference_mode():
        for video, mel, label in loader:
            logits.append(model(video.to(device), mel.to(device)).float().cpu())
            labels.append(label)
    logit, label = torch.cat(logits), torch.cat(labels)
    pred = (logit > 0).long()
    return {
        "val_loss": float(F.binary_cross_entropy_with_logits(logit, label)),
        "val_acc": float((pred == label.long()).float().mean()),
        "val_f1": weighted_f1(label.long(), pred),
    }


def train_sync_teacher(
    config: SyncTrainConfig,
    features: str | Path,
    out: str | Path,
    overwrite: bool = False,
    resume: bool = False,
    show_progress: bool = True,
) -> Artifact:
    """Train a sync model on an ``lrs2-features`` artifact into a ``model`` artifact (best val F1 weights)."""

    if config.objective != "bce" and config.loop.select_metric == "val_f1":  # the default: BCE's metric
        config = dataclasses.replace(config, loop=dataclasses.replace(config.loop, select_metric="val_acc"))

    def build() -> tuple[SyncTeacherTask, list[Artifact]]:
        feats = load_artifact(features, kind=LRS2_FEATURES)
        return SyncTeacherTask(config, FeatureStore(feats)), [feats]

    return fit_stage(out, config, build, overwrite=overwrite, resume=resume, show_progress=show_progress)
