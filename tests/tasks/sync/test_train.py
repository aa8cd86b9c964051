"""The sync teacher stage (``avkd.tasks.sync.train``): its loss, its F1 and the model artifact it leaves."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avkd.core.artifacts import load_artifact
from avkd.core.jsonl import read_jsonl
from avkd.data.lrs2.store import FeatureStore
from avkd.models.io import load_model
from avkd.tasks.sync.config import SyncModelConfig, SyncTrainConfig
from avkd.tasks.sync.train import SyncTeacherTask, train_sync_teacher, weighted_f1
from avkd.train.loop import LoopConfig

TINY = SyncModelConfig(name="vocalist_lite", width=16, channels=[4, 4, 8, 8, 16])


def tiny_config(epochs: int = 2) -> SyncTrainConfig:
    return SyncTrainConfig(
        model=TINY,
        loop=LoopConfig(epochs=epochs, batch_size=8, lr=1e-3, device="cpu", seed=3),
        samples_per_epoch=32,
        val_samples=16,
    )


def test_weighted_f1_by_hand() -> None:
    labels = torch.tensor([1, 1, 1, 0, 0])
    preds = torch.tensor([1, 1, 0, 0, 1])
    # class 1: tp 2, fp 1, fn 1 -> F1 2/3; class 0: tp 1, fp 1, fn 1 -> F1 1/2; weights 3/5 and 2/5
    assert weighted_f1(labels, preds) == pytest.approx(0.6 * 2 / 3 + 0.4 * 0.5)
    assert weighted_f1(labels, labels) == 1.0


def test_teacher_artifact(features, tmp_path: Path) -> None:
    out = tmp_path / "teacher"
    art = train_sync_teacher(tiny_config(epochs=2), features.path, out, show_progress=False)
    assert art.kind == "model" and art.metrics["epochs"] == 2
    assert art.manifest["inputs"][0]["id"] == features.id
    assert "checkpoints/last.pt" not in art.files  # the optimizer state is dropped unless keep_checkpoint
    assert len(read_jsonl(out / "metrics.jsonl")) == 2
    loaded = load_model(out)
    assert loaded.spec.name == "vocalist_lite" and not loaded.model.training
    video = torch.rand(2, 15, 48, 96)
    mel = torch.randn(2, 1, 80, 16)
    assert loaded.model(video, mel).shape == (2,)
    assert load_artifact(out).metrics["best_val_f1"] is not None


def test_training_lowers_the_loss_on_a_fixed_batch(features) -> None:
    task = SyncTeacherTask(tiny_config(), FeatureStore(features))
    batch = next(iter(torch.utils.data.DataLoader(task.train, batch_size=16)))
    task.model.train()
    optimizer = torch.optim.Adam(task.model.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        torch.manual_seed(0)  # the same dropout masks each step: only the weights change
        loss, _ = task.loss(batch, torch.device("cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses
