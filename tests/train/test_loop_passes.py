"""The training loop's passes (``TrainTask.passes``): several optimiser steps a batch, each with its own Adam,
schedule and grad scaler; a step is those passes taken in turn, a killed run resumes exactly, a checkpoint of
other passes is refused, and two processes train as one."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import Dataset

from avkd.core.errors import AvkdError, UsageError
from avkd.core.jsonl import read_jsonl
from avkd.train import loop
from avkd.train.checkpoint import seed_everything
from avkd.train.loop import LoopConfig, Preempted, fit, lr_factor, passes_of
from tests import ddp

SAMPLES = 24


class Points(Dataset):
    """Fixed points in a new order each epoch, a pure function of (seed, epoch): (x, target of a, target of b)."""

    def __init__(self, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(17)
        self.x = torch.randn(SAMPLES, 4, generator=g)
        self.ya = self.x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.3
        self.yb = torch.tanh(self.x[:, 0] - self.x[:, 3])
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.order = np.random.default_rng([self.seed, epoch]).permutation(SAMPLES)

    def __len__(self) -> int:
        return SAMPLES

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i = int(self.order[index])
        return self.x[i], self.ya[i], self.yb[i]


class TwoHeads(nn.Module):
    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(dropout))
        self.head_a = nn.Linear(8, 1)
        self.head_b = nn.Linear(8, 1)


def loss_a(model: TwoHeads, batch: Any) -> torch.Tensor:
    return (model.head_a(model.trunk(batch[0])).squeeze(1) - batch[1]).pow(2).mean()


def loss_b(model: TwoHeads, batch: Any) -> torch.Tensor:
    return (model.head_b(model.trunk(batch[0])).squeeze(1) - batch[2]).abs().mean()


class TwoPassTask:
    """A shared trunk with two heads: pass ``a`` trains trunk + head a on an MSE, pass ``b`` trunk + head b on an
    L1, so that each pass's Adam holds moments of its own (and none for the other head)."""

    best_keys = ("val_loss",)
    passes = ("a", "b")
    find_unused_parameters = True  # each pass leaves the other head without a gradient

    def __init__(self, dropout: float = 0.2, seed: int = 0) -> None:
        seed_everything(seed)
        self.model = TwoHeads(dropout)
        self.data = Points(seed)

    def summary(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.model.parameters()), "betas": (0.95, 0.999)}]

    def train_dataset(self) -> Dataset:
        return self.data

    def loss(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        raise AssertionError("a task with passes is never asked for its one loss")

    def pass_loss(self, batch: Any, device: torch.device, name: str) -> tuple[torch.Tensor, dict[str, float]]:
        value = (loss_a if name == "a" else loss_b)(self.model, batch)
        return value, {f"loss_{name}": float(value.detach())}

    def validate(self, device: torch.device) -> dict[str, float]:
        batch = (self.data.x, self.data.ya, self.data.yb)
        return {"val_loss": float(loss_a(self.model, batch) + loss_b(self.model, batch))}

    def export(self, path: Path) -> None:
        torch.save(self.model.state_dict(), path)


def config(**changes) -> LoopConfig:
    base = {
        "epochs": 2,
        "batch_size": 8,
        "lr": 1e-2,
        "weight_decay": 1e-3,
        "scheduler": "warmup_step",  # 0.5 x lr in epoch 1, 1 x in epoch 2: both schedules must move
        "warmup_epochs": 2,
        "device": "cpu",
        "seed": 4,
        "select_metric": "val_loss",
        "select_mode": "min",
    }
    return LoopConfig(**{**base, **changes})


def reference(cfg: LoopConfig) -> TwoHeads:
    """The same training written out by hand: per batch, pass a's Adam steps on loss a, then pass b's Adam steps
    on loss b at the weights pass a left; each Adam's rate follows the schedule per epoch."""
    task = TwoPassTask()
    seed_everything(cfg.seed)  # what fit draws its dropout masks from
    model = task.model
    optimizers = [
        torch.optim.Adam(task.param_groups(), lr=cfg.lr, weight_decay=cfg.weight_decay) for _ in range(2)
    ]
    for epoch in range(cfg.epochs):
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(cfg, epoch)
        task.data.set_epoch(epoch)
        model.train()
        for step in range(SAMPLES // cfg.batch_size):
            items = [task.data[i] for i in range(step * cfg.batch_size, (step + 1) * cfg.batch_size)]
            batch = [torch.stack(column) for column in zip(*items, strict=True)]
            for opt, objective in zip(optimizers, (loss_a, loss_b), strict=True):
                opt.zero_grad(set_to_none=True)
                objective(model, batch).backward()
                opt.step()
    return model


def test_a_step_is_each_passs_own_adam_step_in_turn(tmp_path: Path) -> None:
    cfg = config()
    task = TwoPassTask()
    result = fit(task, cfg, tmp_path / "run", tmp_path / "m.pt", show_progress=False)
    assert result.steps == 6
    expected = reference(cfg).state_dict()
    for key, value in task.model.state_dict().items():
        assert torch.equal(value, expected[key]), key

    state = torch.load(tmp_path / "run" / loop.LAST, weights_only=False)
    assert "optimizer" not in state and list(state["passes"]) == ["a", "b"]
    a, b = (state["passes"][name] for name in ("a", "b"))
    # Parameters 0-1 the trunk, 2-3 head a, 4-5 head b: each Adam has moments for what its pass trains only.
    assert sorted(a["optimizer"]["state"]) == [0, 1, 2, 3] and sorted(b["optimizer"]["state"]) == [0, 1, 4, 5]
    assert float(a["optimizer"]["state"][0]["step"]) == float(b["optimizer"]["state"][0]["step"]) == 6
    assert not torch.allclose(a["optimizer"]["state"][0]["exp_avg"], b["optimizer"]["state"][0]["exp_avg"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 2
    assert a["optimizer"]["param_groups"][0]["betas"] == (0.95, 0.999)
    rows = read_jsonl(tmp_path / "run" / loop.METRICS)
    for row in rows:  # the step's loss is the sum of its passes'
        assert row["train_loss"] == pytest.approx(row["loss_a"] + row["loss_b"])
    assert [r["lr"] for r in rows] == pytest.approx([1e-2, 1e-2])  # after epoch 1's step: factor 1


def test_a_killed_two_pass_run_resumes_exactly(tmp_path: Path, monkeypatch) -> None:
    cfg = config()
    straight = TwoPassTask()
    fit(straight, cfg, tmp_path / "a", tmp_path / "a.pt", show_progress=False)

    killed = TwoPassTask()
    real, calls = killed.pass_loss, {"n": 0}

    def loss_then_signal(batch, device, name):
        calls["n"] += 1
        if calls["n"] == 8:  # epoch 2, step 1, pass b: the step finishes both passes before the stop
            os.kill(os.getpid(), signal.SIGTERM)
        return real(batch, device, name)

    monkeypatch.setattr(killed, "pass_loss", loss_then_signal)
    with pytest.raises(Preempted):
        fit(killed, cfg, tmp_path / "b", tmp_path / "b.pt", show_progress=False)
    state = torch.load(tmp_path / "b" / loop.LAST, weights_only=False)
    assert (state["epoch"], state["step_in_epoch"], state["steps"]) == (1, 1, 4)
    assert [float(state["passes"][n]["optimizer"]["state"][0]["step"]) for n in "ab"] == [4, 4]

    torch.manual_seed(99)  # a new process: other RNG state until the checkpoint's is restored
    resumed = TwoPassTask()
    assert fit(resumed, cfg, tmp_path / "b", tmp_path / "b.pt", show_progress=False).steps == 6
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows_a, rows_b = read_jsonl(tmp_path / "a" / loop.METRICS), read_jsonl(tmp_path / "b" / loop.METRICS)
    for key in ("train_loss", "loss_a", "loss_b", "val_loss"):
        assert [r[key] for r in rows_b] == [r[key] for r in rows_a], key


class OnePass(TwoPassTask):
    passes = ()

    def loss(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        return loss_a(self.model, batch) + loss_b(self.model, batch), {}


def test_a_checkpoint_of_other_passes_is_refused(tmp_path: Path) -> None:
    fit(TwoPassTask(), config(epochs=1), tmp_path / "run", tmp_path / "m.pt", show_progress=False)
    with pytest.raises(UsageError) as info:
        fit(OnePass(), config(epochs=2), tmp_path / "run", tmp_path / "m.pt", show_progress=False)
    message = str(info.value)
    assert "last.pt: written with passes (a, b), this run has (one pass)" in message
    assert len(message.splitlines()) == 1

    fit(OnePass(), config(epochs=1), tmp_path / "one", tmp_path / "o.pt", show_progress=False)
    single = torch.load(tmp_path / "one" / loop.LAST, weights_only=False)
    assert {"optimizer", "scheduler", "scaler"} <= set(single) and "passes" not in single  # the old layout
    with pytest.raises(UsageError, match=r"written with passes \(one pass\), this run has \(a, b\)"):
        fit(TwoPassTask(), config(epochs=2), tmp_path / "one", tmp_path / "o.pt", show_progress=False)


def test_a_bad_pass_is_named() -> None:
    task = TwoPassTask()
    task.passes = ("a", "a")
    with pytest.raises(UsageError, match="distinct non-empty names"):
        passes_of(task)
    assert passes_of(OnePass()) == ()

    class NoPassLoss:
        passes = ("x",)

    with pytest.raises(UsageError, match=r"declares passes .* but has no pass_loss"):
        passes_of(NoPassLoss())


def test_a_non_finite_pass_loss_names_the_pass(tmp_path: Path, monkeypatch) -> None:
    task = TwoPassTask()
    real = task.pass_loss

    def nan_in_b(batch, device, name):
        value, logs = real(batch, device, name)
        return (value * float("nan"), logs) if name == "b" else (value, logs)

    monkeypatch.setattr(task, "pass_loss", nan_in_b)
    with pytest.raises(AvkdError, match="loss of pass 'b' became nan at epoch 1 step 0"):
        fit(task, config(), tmp_path / "run", tmp_path / "m.pt", show_progress=False)


# ------------------------------------------------------------------------------------------ two processes


def two_pass_worker(rank: int, size: int, port: int, out: str) -> None:
    """One rank of a two-pass run under gloo (spawned: it must live in a module)."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(size),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    task = TwoPassTask(dropout=0.0)  # ranks draw dropout masks from streams of their own
    fit(task, config(), Path(out) / "run", Path(out) / "m.pt", show_progress=False)
    torch.save(task.model.state_dict(), Path(out) / f"rank{rank}.pt")


@pytest.mark.slow
def test_two_processes_take_the_passes_as_one(tmp_path: Path) -> None:
    size = 2
    mp.start_processes(
        two_pass_worker, args=(size, ddp.free_port(), str(tmp_path)), nprocs=size, start_method="spawn"
    )
    one = TwoPassTask(dropout=0.0)
    fit(one, config(), tmp_path / "one", tmp_path / "one.pt", show_progress=False)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(size)]
    for key, value in one.model.state_dict().items():
        assert torch.equal(ranks[0][key], ranks[1][key]), key  # both passes' gradients were all-reduced
        torch.testing.assert_close(ranks[0][key], value, atol=1e-5, rtol=1e-4, msg=key)
    state = torch.load(tmp_path / "run" / loop.LAST, weights_only=False)  # rank 0 wrote both passes' state
    assert state["world_size"] == 2 and list(state["passes"]) == ["a", "b"]
    rows_two, rows_one = (
        read_jsonl(tmp_path / "run" / loop.METRICS),
        read_jsonl(tmp_path / "one" / loop.METRICS),
    )
    assert [r["train_loss"] for r in rows_two] == pytest.approx([r["train_loss"] for r in rows_one], rel=1e-5)
