"""What the data-parallel tests share: the worker they spawn (it must live in a module), runs of ``avkd`` under
``torchrun --nproc-per-node 2``, and the comparison of a two-process run with a one-process run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from avkd.core.artifacts import load_artifact
from avkd.core.errors import AvkdError, UsageError
from avkd.core.jsonl import read_jsonl
from avkd.core.world import World
from avkd.models.distributed import (
    CpuSyncBatchNorm,
    all_reduce_sum,
    gather_with_grad,
    init_world,
)
from avkd.train.loop import on_main

#: Global inputs shared by both ranks and the one-process reference (tests/train/test_distributed.py).
GLOBAL_ROWS = 6
BN_SHAPE = (8, 3, 5, 2)


def inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    return {
        "x": torch.randn(GLOBAL_ROWS, 4, generator=g),
        "bn_in": torch.randn(*BN_SHAPE, generator=g) * 2 + 1,
        "bn_w": torch.randn(*BN_SHAPE, generator=g),
        "gamma": torch.rand(3, generator=g) + 0.5,
        "beta": torch.randn(3, generator=g),
    }


def relation_loss(g: torch.Tensor) -> torch.Tensor:
    """A loss over every pair of the global batch (like RKD's distances)."""
    return (g @ g.t()).pow(2).sum()


def collectives(rank: int, size: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(size),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    w = init_world(torch.device("cpu"))
    data = inputs()
    rows = GLOBAL_ROWS // size
    x = data["x"][rank * rows : (rank + 1) * rows].clone().requires_grad_(True)
    gathered = gather_with_grad(x)
    relation_loss(gathered).backward()

    half = BN_SHAPE[0] // size
    local = data["bn_in"][rank * half : (rank + 1) * half].clone().requires_grad_(True)
    bn = CpuSyncBatchNorm(3)
    with torch.no_grad():
        bn.weight.copy_(data["gamma"])
        bn.bias.copy_(data["beta"])
    y = bn(local)
    (y * data["bn_w"][rank * half : (rank + 1) * half]).sum().backward()

    def fail() -> None:
        raise UsageError("boom on rank 0")

    try:
        on_main(w, fail)
        relayed = "nothing raised"
    except (AvkdError, UsageError) as exc:
        relayed = f"{type(exc).__name__}: {exc}"
    result = {
        "world": w,
        "gathered": gathered.detach(),
        "x_grad": x.grad,
        "y": y.detach(),
        "in_grad": local.grad,
        "gamma_grad": bn.weight.grad,
        "beta_grad": bn.bias.grad,
        "running_mean": bn.running_mean.clone(),
        "running_var": bn.running_var.clone(),
        "sums": all_reduce_sum([float(rank), 1.0]),
        "relayed": relayed,
        "on_main_value": on_main(w, lambda: f"from rank {w.rank}"),
    }
    torch.save(result, Path(out) / f"rank{rank}.pt")
    assert isinstance(w, World)


NO_DROPOUT_SYNC = {"embed_dropout": 0.0, "res_dropout": 0.0, "relu_dropout": 0.0}
NO_DROPOUT_MULT = {
    "attn_dropout": 0.0,
    "relu_dropout": 0.0,
    "res_dropout": 0.0,
    "embed_dropout": 0.0,
    "out_dropout": 0.0,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def avkd_start(args: list[str], procs: int, cwd: Path) -> subprocess.Popen:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
    cmd = [*launcher, "-m", "avkd", *args] if procs > 1 else [sys.executable, "-m", "avkd", *args]
    return subprocess.Popen(
        cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def avkd_run(args: list[str], procs: int, cwd: Path) -> str:
    proc = avkd_start(args, procs, cwd)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    return output


def sets(values: dict) -> list[str]:
    return [item for key, value in values.items() for item in ("--set", f"{key}={json.dumps(value)}")]


def weights(artifact: Path) -> dict[str, torch.Tensor]:
    return torch.load(artifact / "model.pt", map_location="cpu", weights_only=False)["state_dict"]


#: Parameters whose gradient is zero in exact arithmetic, so that Adam turns rounding noise into steps of about
#: ±lr, differently in every run, while the outputs do not depend on them: a convolution's bias right before a
#: BatchNorm (the BatchNorm subtracts any constant; VocaLiST's ``conv_block.0.bias``) with the running mean that
#: follows it, and the key part of an attention's input bias (softmax ignores a constant added to a query's scores).
def _comparable(key: str, value: torch.Tensor) -> torch.Tensor | None:
    if key.endswith(("conv_block.0.bias", "conv_block.1.running_mean")):
        return None
    if key.endswith("in_proj_bias"):
        q, _, v = value.float().chunk(3)
        return torch.cat([q, v])
    return value.float()


def same_training(one: Path, two: Path, atol: float = 1e-5) -> None:
    """The two-process run took the one-process run's steps: its loss curves and its weights (the comparable
    ones, :func:`_comparable`), within float error."""
    h1, h2 = read_jsonl(one / "metrics.jsonl"), read_jsonl(two / "metrics.jsonl")
    assert [r["steps"] for r in h1] == [r["steps"] for r in h2]
    for a, b in zip(h1, h2, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5, abs=1e-6)
        validation = [k for k in a if k.startswith("val_")]
        assert validation and b.keys() == a.keys()
        assert [b[k] for k in validation] == pytest.approx([a[k] for k in validation], rel=1e-4, abs=1e-5)
    w1, w2 = weights(one), weights(two)
    assert w1.keys() == w2.keys()
    compared = 0
    for key in w1:
        a, b = _comparable(key, w1[key]), _comparable(key, w2[key])
        if a is not None and b is not None:
            torch.testing.assert_close(b, a, atol=atol, rtol=1e-4, msg=key)
            compared += 1
    assert compared > len(w1) // 2
    assert load_artifact(two).metrics["world_size"] == 2 and load_artifact(one).metrics["world_size"] == 1
    # Rank 0 alone wrote: one artifact, one metrics row per epoch, nothing left beside it.
    assert sorted(p.name for p in two.parent.iterdir() if p.name.startswith(two.name)) == [two.name]
    assert len(h2) == load_artifact(two).metrics["epochs"]


def unused_parameters(task) -> list[str]:
    """Trained parameters that one step's loss leaves without a gradient (DDP must be told about them)."""
    for module in task.modules().values():
        module.train()
    batch = next(iter(DataLoader(task.train_dataset(), batch_size=4)))
    loss, _ = task.loss(batch, torch.device("cpu"))
    loss.backward()
    return [
        f"{name}.{p_name}"
        for name, module in task.modules().items()
        for p_name, p in module.named_parameters()
        if p.requires_grad and p.grad is None
    ]
