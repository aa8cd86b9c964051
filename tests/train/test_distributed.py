"""Data parallelism on the CPU with gloo: the launcher's environment, the collectives with gradients, SyncBatchNorm,
and every training stage under ``torchrun --nproc-per-node 2`` against one process with the same global batch.

Runs compare within float tolerance (the gradient average and the BatchNorm statistics are summed in another order);
dropout is off in these runs, because two processes draw their masks from two streams and one process from one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from avkd.core.artifacts import load_artifact
from avkd.core.jsonl import read_jsonl
from avkd.core.world import World, first_host, world_from_env
from avkd.train.loop import RankShard
from tests import ddp
from tests.ddp import NO_DROPOUT_SYNC, avkd_run, avkd_start, same_training, sets, weights

# ------------------------------------------------------------------------------------------ environment


@pytest.mark.parametrize(
    ("nodelist", "host"),
    [
        ("node7", "node7"),
        ("gpu[03-05,07]", "gpu03"),
        ("gpu[12,3]", "gpu12"),
        ("a[001-004]-ib,b1", "a001-ib"),
        ("cpu1,gpu[2-3]", "cpu1"),
    ],
)
def test_first_host_of_a_slurm_node_list(nodelist: str, host: str) -> None:
    assert first_host(nodelist) == host


def test_the_launchers_variables_give_the_rank_and_size() -> None:
    assert world_from_env({}) == World()
    torchrun = world_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "SLURM_PROCID": "0"})
    assert torchrun == World(3, 4, 1, "torchrun")  # inside srun torchrun, torchrun's variables win
    slurm = world_from_env({"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1"})
    assert slurm == World(5, 8, 1, "slurm") and not slurm.is_main and slurm.distributed
    # One task (a plain sbatch script) is a world of one, whatever else Slurm sets.
    assert world_from_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}) == World()


def test_rank_shards_split_each_global_batch_without_gaps_or_overlap() -> None:
    one = list(RankShard(steps=5, start=2, batch=8))
    assert one == list(range(16, 40))
    shards = [list(RankShard(steps=5, start=2, batch=8, rank=r, size=4)) for r in range(4)]
    assert all(len(s) == 3 * 2 for s in shards)  # equal step counts on every rank
    for step in range(3):  # step s of every rank together is the one-process batch s
        together = [i for s in shards for i in s[step * 2 : step * 2 + 2]]
        assert together == one[step * 8 : step * 8 + 8]


# ------------------------------------------------------------------------------------------ collectives


@pytest.mark.slow
def test_gather_with_grad_and_sync_batchnorm_match_one_process(tmp_path: Path) -> None:
    size = 2
    mp.start_processes(
        ddp.collectives, args=(size, ddp.free_port(), str(tmp_path)), nprocs=size, start_method="spawn"
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(size)]
    data = ddp.inputs()

    x = data["x"].clone().requires_grad_(True)
    ddp.relation_loss(x).backward()
    rows = ddp.GLOBAL_ROWS // size
    for r, got in enumerate(ranks):
        assert got["world"] == World(r, size, r, "torchrun")
        assert torch.equal(got["gathered"], data["x"])  # rank order
        # Every rank computed the same global loss, so its rows collect size x the gradient; DDP's average over
        # ranks then gives exactly the gradient of the one global loss.
        torch.testing.assert_close(got["x_grad"] / size, x.grad[r * rows : (r + 1) * rows])

    bn = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(data["gamma"])
        bn.bias.copy_(data["beta"])
    inp = data["bn_in"].clone().requires_grad_(True)
    y = bn(inp)
    (y * data["bn_w"]).sum().backward()
    half = ddp.BN_SHAPE[0] // size
    for r, got in enumerate(ranks):
        torch.testing.assert_close(got["y"], y.detach()[r * half : (r + 1) * half], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got["in_grad"], inp.grad[r * half : (r + 1) * half], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got["running_mean"], bn.running_mean)
        torch.testing.assert_close(got["running_var"], bn.running_var)
    # The losses of the ranks add up to the global loss: their parameter gradients add up to its gradient.
    torch.testing.assert_close(sum(g["gamma_grad"] for g in ranks), bn.weight.grad, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(sum(g["beta_grad"] for g in ranks), bn.bias.grad, atol=1e-4, rtol=1e-5)

    assert all(g["sums"] == [1.0, 2.0] for g in ranks)
    assert ranks[0]["relayed"] == "UsageError: boom on rank 0"
    assert ranks[1]["relayed"] == "AvkdError: stopped because rank 0 failed: boom on rank 0"
    assert [g["on_main_value"] for g in ranks] == ["from rank 0", "from rank 0"]


# ------------------------------------------------------------------------------------ stages under torchrun


TEACHER = {
    "model.name": "vocalist_lite",
    "model.width": 16,
    "model.channels": [4, 4, 8, 8, 16],
    "model.kwargs": NO_DROPOUT_SYNC,
    "val_samples": 32,
}
LOOP = ["--batch-size", "16", "--lr", "1e-3", "--device", "cpu", "--sync-bn"]
# Two epochs of 4 steps: long enough to cross an epoch (validation, schedule, checkpoint), short enough that the
# float differences stay at rounding level. Longer runs part slowly: Adam turns the rounding noise in the gradient
# of a bias before a BatchNorm (zero in exact arithmetic) into steps of ±lr, in one process and two alike.
TEACHER_ARGS = [*LOOP, "--epochs", "2", "--samples-per-epoch", "64"]


@pytest.fixture(scope="module")
def teachers(features, tmp_path_factory) -> dict[int, Path]:
    """The same sync teacher run trained by one process and by two (global batch 16 either way)."""
    root = tmp_path_factory.mktemp("ddp-teacher")
    out = {}
    for procs in (1, 2):
        out[procs] = root / f"p{procs}" / "teacher"
        out[procs].parent.mkdir()
        args = ["train", "teacher", "--data", str(features.path), "--out", str(out[procs])]
        avkd_run([*args, *TEACHER_ARGS, *sets(TEACHER)], procs, root)
    return out


@pytest.mark.slow
def test_two_processes_train_the_sync_teacher_as_one(teachers: dict[int, Path]) -> None:
    same_training(teachers[1], teachers[2])


@pytest.mark.slow
def test_two_processes_distill_with_mtd_as_one(features, teachers: dict[int, Path], tmp_path: Path) -> None:
    student = {
        "student.name": "vocalist_lite",
        "student.width": 8,
        "student.channels": [4, 4, 8, 8, 8],
        "student.kwargs": NO_DROPOUT_SYNC,
        "samples_per_epoch": 64,
        "val_samples": 16,
    }
    runs = {}
    for procs in (1, 2):
        runs[procs] = tmp_path / f"p{procs}" / "mtd"
        runs[procs].parent.mkdir()
        args = ["distill", "--method", "mtd", "--teacher", str(teachers[1]), "--data", str(features.path)]
        loop = ["--epochs", "2", "--batch-size", "8", "--lr", "1e-3", "--device", "cpu", "--sync-bn"]
        avkd_run([*args, "--out", str(runs[procs]), *loop, *sets(student)], procs, tmp_path)
    same_training(runs[1], runs[2])


def _rank_pid(launcher: subprocess.Popen, rank: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                environ = (entry / "environ").read_bytes().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
            if ppid == launcher.pid and f"RANK={rank}".encode() in environ:
                return int(entry.name)
        time.sleep(0.05)
    raise AssertionError(f"no worker of rank {rank} under torchrun {launcher.pid}")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the workers through /proc")
def test_sigusr1_to_one_rank_stops_both_and_the_resume_matches(features, tmp_path: Path) -> None:
    def args(out: Path) -> list[str]:
        base = ["train", "teacher", "--data", str(features.path), "--out", str(out), *LOOP, *sets(TEACHER)]
        return [*base, "--epochs", "2", "--samples-per-epoch", "256"]  # 16 steps an epoch

    straight, out = tmp_path / "straight", tmp_path / "teacher"
    avkd_run(args(straight), 2, tmp_path)
    launcher = avkd_start(args(out), 2, tmp_path)
    rank1 = _rank_pid(launcher, 1)
    last = Path(str(out) + ".partial") / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and launcher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the first epoch's checkpoint: the signal then lands in the second epoch
    os.kill(rank1, signal.SIGUSR1)  # the rank that writes nothing: rank 0 must stop at the same step
    output, _ = launcher.communicate(timeout=120)
    assert launcher.returncode != 0, output
    assert "exitcode  : 75" in output or "exitcode: 75" in output, output
    assert "stopped by signal" in output and not out.exists()
    state = torch.load(last, weights_only=False)
    assert state["world_size"] == 2 and len(state["rank_rng"]) == 2
    assert state["epoch"] == 1 and 0 < state["step_in_epoch"] < 16, "the signal missed the second epoch"

    other = tmp_path / "on-one"  # the same saved state, resumed by one process instead of two
    shutil.copytree(Path(str(out) + ".partial"), Path(str(other) + ".partial"))

    avkd_run([*args(out), "--resume"], 2, tmp_path)
    # Same world size: the resumed run is the uninterrupted one, exactly.
    a, b = weights(straight), weights(out)
    assert all(torch.equal(a[k], b[k]) for k in a)
    curve = [(r["train_loss"], r["val_loss"]) for r in read_jsonl(out / "metrics.jsonl")]
    assert curve == [(r["train_loss"], r["val_loss"]) for r in read_jsonl(straight / "metrics.jsonl")]

    # Another world size: it says so, continues from the same global step with the same global batch (the same
    # samples, so with dropout off only rounding differs), and keeps the epoch's loss sums from before the stop.
    log = avkd_run([*args(other), "--resume"], 1, tmp_path)
    assert "checkpoint written by 2 process(es), resumed on 1" in log
    assert f"resuming at epoch 2, step {state['step_in_epoch']} of 16" in log
    history = read_jsonl(other / "metrics.jsonl")
    reference = read_jsonl(straight / "metrics.jsonl")
    assert [r["steps"] for r in history] == [r["steps"] for r in reference] == [16, 32]
    assert history[0]["train_loss"] == reference[0]["train_loss"]  # the epoch before the stop, as saved
    assert history[1]["train_loss"] == pytest.approx(reference[1]["train_loss"], rel=1e-4)
    assert load_artifact(other).metrics["world_size"] == 1
