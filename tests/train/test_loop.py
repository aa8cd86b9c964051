"""The training loop (``avkd.train.loop``): the LR schedule, resuming after a kill exactly, the batch-size check
(with the sync teacher stage as its workload)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from avkd.core.jsonl import read_jsonl
from avkd.data.lrs2.store import FeatureStore
from avkd.tasks.sync.config import SyncModelConfig, SyncTrainConfig
from avkd.tasks.sync.train import SyncTeacherTask
from avkd.train import loop
from avkd.train.loop import LoopConfig, Preempted, fit, lr_factor

TINY = SyncModelConfig(name="vocalist_lite", width=16, channels=[4, 4, 8, 8, 16])


def tiny_config(epochs: int = 2, **loop_kw) -> SyncTrainConfig:
    return SyncTrainConfig(
        model=TINY,
        loop=LoopConfig(epochs=epochs, batch_size=8, lr=1e-3, device="cpu", seed=3, **loop_kw),
        samples_per_epoch=32,
        val_samples=16,
    )


def test_warmup_step_schedule_matches_the_mtd_trainer() -> None:
    config = LoopConfig(scheduler="warmup_step", warmup_epochs=10, step_epochs=20, gamma=0.8)
    factors = {e + 1: lr_factor(config, e) for e in range(90)}  # keys are the reference's 1-based epochs
    assert [factors[e] for e in (1, 5, 10)] == pytest.approx([0.1, 0.5, 1.0])
    assert factors[11] == factors[29] == 1.0
    assert factors[30] == pytest.approx(0.8) and factors[49] == pytest.approx(0.8)
    assert factors[50] == pytest.approx(0.64) and factors[70] == pytest.approx(0.512)
    assert lr_factor(LoopConfig(), 40) == 1.0


def _weights(task: SyncTeacherTask) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in task.model.state_dict().items()}


def test_resume_after_a_kill_continues_exactly(features, tmp_path: Path, monkeypatch) -> None:
    store = FeatureStore(features)
    config = tiny_config(epochs=2)
    straight = SyncTeacherTask(config, store)
    fit(straight, config.loop, tmp_path / "a", tmp_path / "a.pt", show_progress=False)

    killed = SyncTeacherTask(config, store)
    real_loss = killed.loss
    calls = {"n": 0}

    def loss_then_signal(batch, device):
        calls["n"] += 1
        if (
            calls["n"] == 6
        ):  # second epoch, second step: what Slurm's SIGTERM before the time limit looks like
            os.kill(os.getpid(), signal.SIGTERM)
        return real_loss(batch, device)

    monkeypatch.setattr(killed, "loss", loss_then_signal)
    with pytest.raises(Preempted) as info:
        fit(killed, config.loop, tmp_path / "b", tmp_path / "b.pt", show_progress=False)
    assert info.value.exit_code == 75
    state = torch.load(tmp_path / "b" / loop.LAST, weights_only=False)
    assert (state["epoch"], state["step_in_epoch"], state["steps"]) == (1, 2, 6)

    resumed = SyncTeacherTask(config, store)  # a new process would build everything from scratch
    result = fit(resumed, config.loop, tmp_path / "b", tmp_path / "b.pt", show_progress=False)
    assert result.steps == 8
    a, b = _weights(straight), _weights(resumed)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [r["train_loss"] for r in read_jsonl(tmp_path / "b" / loop.METRICS)] == pytest.approx(
        [r["train_loss"] for r in read_jsonl(tmp_path / "a" / loop.METRICS)]
    )


def test_batch_larger_than_epoch_is_a_usage_error(features, tmp_path: Path) -> None:
    from avkd.core.errors import UsageError

    config = tiny_config()
    config.loop.batch_size = 64
    with pytest.raises(UsageError, match="larger than the 32 samples"):
        fit(
            SyncTeacherTask(config, FeatureStore(features)),
            config.loop,
            tmp_path,
            tmp_path / "m.pt",
            show_progress=False,
        )


def test_a_run_that_would_train_nothing_is_refused_before_any_work(features, tmp_path: Path) -> None:
    from avkd.core.errors import UsageError
    from avkd.tasks.sync.config import SyncModelConfig, SyncTrainConfig
    from avkd.tasks.sync.train import train_sync_teacher

    model = SyncModelConfig(name="vocalist_lite", width=8, channels=[4, 4, 8, 8, 8])
    for settings, message in (
        (LoopConfig(epochs=0), r"'loop\.epochs': 0 must be at least 1"),
        (LoopConfig(epochs=-1), r"'loop\.epochs': -1"),
        (LoopConfig(batch_size=0), r"'loop\.batch_size': 0"),
        (LoopConfig(lr=float("nan")), r"'loop\.lr': nan must be more than 0"),
    ):
        with pytest.raises(UsageError, match=message):
            train_sync_teacher(SyncTrainConfig(model=model, loop=settings), features.path, tmp_path / "t")
        assert not (tmp_path / "t").exists() and not (tmp_path / "t.partial").exists()
