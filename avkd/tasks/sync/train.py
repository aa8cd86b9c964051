"""``avkd train teacher``: a sync model (VocaLiST, or the width-200 student as the BCE-only baseline) on LRS2 features.

Reference §3.1: balanced positive/negative sampling from the pretrain split, Adam 5e-5, BCE with logits, batch
128. Differences, each a fix of a pain point docs/reference/vocalist.md lists (§7.6): validation uses a fixed, seeded
sample set (the same pairs every epoch, so F1 is comparable across epochs and selects the best checkpoint), and
F1 is computed over the whole validation set at p = 0.5 (logit 0) rather than averaged per batch at logit 0.5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from avkd.core.artifacts import LRS2_FEATURES, Artifact, load_artifact
from avkd.data.lrs2.dataset import SyncDataset
from avkd.data.lrs2.store import FeatureStore
from avkd.tasks.sync.config import SyncTrainConfig
from avkd.train.checkpoint import seed_everything
from avkd.train.loop import ModelTrainTask, fit_stage

__all__ = ["SyncTeacherTask", "train_sync_teacher", "validate_sync", "weighted_f1"]


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
    """BCE training of one sync model (the fit loop's TrainTask)."""

    best_keys = ("val_f1", "val_acc")

    def __init__(self, config: SyncTrainConfig, store: FeatureStore) -> None:
        self.config = config
        self.spec = config.model.spec(config.sampling)
        seed_everything(config.loop.seed)  # the initial weights are part of what the seed reproduces
        self.model = self.spec.build()
        self.store = store
        self.train, self.val = config.datasets(store, config.sampling, config.loop.seed)

    def loss(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        video, mel, label = (t.to(device, non_blocking=True) for t in batch)
        logits = self.model(video, mel)
        return F.binary_cross_entropy_with_logits(logits.float(), label), {}

    def validate(self, device: torch.device) -> dict[str, float]:
        return validate_sync(
            self.model, self.val, device, self.config.loop.batch_size, self.config.loop.num_workers
        )

    def close(self) -> None:
        self.store.close()


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

    def build() -> tuple[SyncTeacherTask, list[Artifact]]:
        feats = load_artifact(features, kind=LRS2_FEATURES)
        return SyncTeacherTask(config, FeatureStore(feats)), [feats]

    return fit_stage(out, config, build, overwrite=overwrite, resume=resume, show_progress=show_progress)
