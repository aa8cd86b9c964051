"""Distillation end to end on the synthetic corpus: every method trains a few steps and is evaluated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from avkd.cli.main import main
from avkd.core.errors import UsageError
from avkd.core.jsonl import read_jsonl
from avkd.data.lrs2.store import FeatureStore
from avkd.losses import build_loss
from avkd.models.io import load_model
from avkd.tasks.sync.config import DistillConfig, SyncEvalConfig, SyncModelConfig, SyncTrainConfig
from avkd.tasks.sync.distill import DistillTask, distill_sync
from avkd.tasks.sync.evaluate import evaluate_sync_artifact
from avkd.tasks.sync.methods import METHODS
from avkd.tasks.sync.train import train_sync_teacher
from avkd.train.loop import LoopConfig
from tests.ddp import unused_parameters

TEACHER = SyncModelConfig(name="vocalist_lite", width=16, channels=[4, 4, 8, 8, 16])
STUDENT = SyncModelConfig(name="vocalist_lite", width=8, channels=[4, 4, 8, 8, 8])


@pytest.fixture(scope="module")
def teacher(features, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher") / "t"
    config = SyncTrainConfig(
        model=TEACHER,
        loop=LoopConfig(epochs=1, batch_size=8, lr=1e-3, device="cpu"),
        samples_per_epoch=16,
        val_samples=8,
    )
    train_sync_teacher(config, features.path, out, show_progress=False)
    return out


def small(method: str, **kw) -> DistillConfig:
    return DistillConfig(
        method=method,
        student=STUDENT,
        loop=LoopConfig(
            epochs=2, batch_size=8, lr=1e-3, device="cpu", scheduler="warmup_step", warmup_epochs=1
        ),
        samples_per_epoch=16,
        val_samples=8,
        **kw,
    )


#: ~1.2 s each (two epochs and an evaluation): the paper's method runs in the quick set, the others are slow.
EVERY_METHOD = [m if m == "mtd" else pytest.param(m, marks=pytest.mark.slow) for m in METHODS]


@pytest.mark.parametrize("method", EVERY_METHOD)
def test_every_method_distills_and_evaluates(method: str, features, teacher: Path, tmp_path: Path) -> None:
    before = {k: v.clone() for k, v in load_model(teacher).model.state_dict().items()}
    art = distill_sync(small(method), teacher, features.path, tmp_path / "s", show_progress=False)
    assert [i["kind"] for i in art.manifest["inputs"]] == ["lrs2-features", "model"]
    history = read_jsonl(tmp_path / "s" / "metrics.jsonl")
    assert len(history) == 2
    row = history[-1]
    assert {"val/mtd", "val/last_mtd", "val/fitnets", "train/bce", "weight/bce"} <= set(row)
    # The method's own loss is what was trained: each of its terms is logged with its weight, and no other.
    spec = METHODS.get(method)
    loss = build_loss(spec.loss, **({"layers": spec.layers} if spec.layers else {}))
    logged = {k.removeprefix("train/") for k in row if k.startswith("train/")} - {"total", "bce", "uw/reg"}
    assert logged == set(loss.term_names())
    assert {f"weight/{n}" for n in loss.term_names()} <= set(row)
    after = load_model(teacher).model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the teacher artifact is untouched
    student = load_model(tmp_path / "s")
    assert student.model.width == 8
    ev = evaluate_sync_artifact(
        SyncEvalConfig(frames=[5, 15]), tmp_path / "s", features.path, tmp_path / "e", show_progress=False
    )
    assert set(ev.metrics["accuracy"]) == {"5", "15"}


def test_teacher_gets_no_gradient(features, teacher: Path) -> None:
    from avkd.data.lrs2.store import FeatureStore
    from avkd.tasks.sync.distill import DistillTask

    loaded = load_model(teacher)
    task = DistillTask(small("mtd").resolved(), loaded.model, loaded.spec, FeatureStore(features))
    batch = next(iter(torch.utils.data.DataLoader(task.train, batch_size=4)))
    loss, logs = task.loss(batch, torch.device("cpu"))
    assert "train/bce" in logs and "weight/cad/mem4" in logs and "train/uw/reg" in logs
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in loaded.model.parameters())
    assert any(p.grad is not None for p in task.student.parameters())
    assert task.weighting.params.grad is not None  # UW weights learn
    assert set(task.taps) == {
        f"{b}.{layer}.{t}" for b in ("mem", "av", "va") for layer in range(1, 5) for t in ("scores", "v")
    }


def test_layers_select_the_taps(features, teacher: Path) -> None:
    from avkd.data.lrs2.store import FeatureStore
    from avkd.tasks.sync.distill import DistillTask

    loaded = load_model(teacher)
    task = DistillTask(
        small("nmtd", layers="av1-2").resolved(), loaded.model, loaded.spec, FeatureStore(features)
    )
    assert sorted(task.taps) == ["av.1.scores", "av.1.v", "av.2.scores", "av.2.v"]
    assert task.loss_fn.term_names() == ["cad/av1", "vr/av1", "cad/av2", "vr/av2"]


def test_bad_method_and_layers(features, teacher: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown sync distillation method 'dkd'"):
        distill_sync(small("dkd"), teacher, features.path, tmp_path / "x", show_progress=False)
    with pytest.raises(UsageError, match="av9"):
        distill_sync(small("mtd", layers="av9"), teacher, features.path, tmp_path / "x", show_progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_distill_cli(features, teacher: Path, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "distill", "--method", "nmtd", "--layers", "fusion4", "--teacher", str(teacher), "--data", str(features.path),
            "--out", str(tmp_path / "s"), "--student", "vocalist_lite", "--width", "8", "--epochs", "1",
            "--batch-size", "8", "--samples-per-epoch", "16", "--device", "cpu", "--set", "val_samples=8",
            "--set", "student.channels=[4, 4, 8, 8, 8]", "--json",
        ]
    )  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["metrics"]["weighting"] == "uniform"  # nmtd's default weighting
    # --layers fusion4 reached the loss: only fusion layer 4's CAD and VR terms were trained.
    (row,) = read_jsonl(tmp_path / "s" / "metrics.jsonl")
    assert sorted(k for k in row if k.startswith("train/") and k not in ("train/total", "train/bce")) == [
        "train/cad/mem4",
        "train/vr/mem4",
    ]


@pytest.mark.parametrize("method", METHODS.names())
def test_no_method_leaves_a_trained_parameter_without_a_gradient(
    features, teacher: Path, method: str
) -> None:
    """DistributedDataParallel runs these without looking for unused parameters each step (tests/ddp.py)."""
    loaded = load_model(teacher)
    task = DistillTask(small(method).resolved(), loaded.model, loaded.spec, FeatureStore(features))
    try:
        assert not getattr(task, "find_unused_parameters", False)
        assert unused_parameters(task) == []
    finally:
        task.close()
