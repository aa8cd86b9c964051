"""One training loop for teacher training and distillation, on any device, resumable after a kill.

A :class:`TrainTask` says what is trained (modules, parameter groups), how a batch becomes a loss, and how a
model is validated; :func:`fit` does the rest: epochs over a seeded dataset, AMP on CUDA, a per-epoch learning
rate schedule, validation and best-checkpoint selection, a JSONL metrics log, and full-state checkpoints.

Resume: ``checkpoints/last.pt`` holds model, optimizer, scheduler, scaler, position (epoch, step within the
epoch), history and every RNG state. Datasets draw sample ``i`` of epoch ``e`` as a pure function of
(seed, e, i) and are read in order, so a resumed run sees exactly the batches and dropout masks the
uninterrupted run would have. SIGTERM / SIGUSR1 / SIGUSR2 (Slurm's pre-emption and time-limit signals) make the loop
save that checkpoint at the next step and exit with code 75, so a job script can requeue itself with ``--resume``.

Data parallel: under ``torchrun`` or ``srun`` (:mod:`avkd.core.world`) the same loop runs one process per device.
``batch_size`` stays the *global* batch: step s of an epoch is samples ``s·B .. s·B+B-1`` wherever it runs, and
rank r of W reads its slice ``s·B + r·B/W ..``, so every rank takes the same number of steps and a run's samples do
not depend on W. The trained modules are wrapped together in one ``DistributedDataParallel`` (the frozen teacher
is not: it has no gradients), which averages gradients; with a loss that is a mean over samples this is the
gradient of the global batch. Rank 0 alone validates (over the whole split), exports, logs and writes; the
others read the checkpoint to resume. A stop signal on any rank stops all of them after the same step (one
all-reduce per step carries it). Each rank's RNG state is in the checkpoint: a resume on the same number of
processes is exact; on another number the position (global sample index) and the global batch hold, and the
dropout masks differ.

Passes: a task may split a step into several optimiser steps on the same batch (:attr:`TrainTask.passes`, e.g.
AVSiam's released pre-training: a contrastive step, then a reconstruction step, docs/reference/avsiam-mfh-syncnet.md
§1.6). Each pass has its own Adam (over a fresh call of ``param_groups()``), its own LR schedule and its own AMP
grad scaler, and runs forward (:meth:`TrainTask.pass_loss`) → backward → clip → step in order, the later passes
seeing the weights the earlier ones stepped. The step's logged loss is the sum of the passes' losses; every pass's
optimiser, schedule and scaler state is in the checkpoint (under ``passes``), so a resume stays exact. Without
``passes`` a task has one pass through :meth:`TrainTask.loss` and its checkpoint keeps the top-level
``optimizer`` / ``scheduler`` / ``scaler`` keys.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from avkd.core.artifacts import (
    MODEL,
    Artifact,
    ArtifactWriter,
    atomic_write_text,
    finished,
    load_artifact,
)
from avkd.core.config import bounded, to_dict, validate
from avkd.core.errors import AvkdError, UsageError
from avkd.core.jsonl import jsonl_text
from avkd.core.progress import ProgressReporter, log
from avkd.core.world import World
from avkd.models.device import amp_dtype, autocast, device_problem, resolve_device
from avkd.models.distributed import (
    all_reduce_sum,
    barrier,
    broadcast_object,
    convert_sync_batchnorm,
    gather_objects,
    init_world,
    rank_device,
)
from avkd.models.io import WEIGHTS, ModelSpec, count_parameters, save_weights
from avkd.train.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from avkd.train.determinism import deterministic_mode

LAST = "checkpoints/last.pt"
METRICS = "metrics.jsonl"


@dataclass
class LoopConfig:
    """Optimisation and run settings shared by every training stage."""

    epochs: int = bounded(10, ge=1)
    batch_size: int = bounded(32, ge=1)
    lr: float = bounded(5e-5, gt=0.0)
    weight_decay: float = bounded(0.0, ge=0.0)
    #: ``constant`` (VocaLiST teacher: Adam 5e-5, no schedule, docs/reference/vocalist.md §3.1) or ``warmup_step`` (MTD student:
    #: linear warm-up over ``warmup_epochs`` then ×``gamma`` every ``step_epochs``, docs/reference/vocalist.md §3.2) or
    #: ``multistep`` (AVSiam pre-training: full rate, then ×``gamma`` at epoch ``warmup_epochs`` and every ``step_epochs``
    #: after it, the released MultiStepLR, docs/reference/avsiam-mfh-syncnet.md §1.6).
    scheduler: Literal["constant", "warmup_step", "multistep"] = "constant"
    warmup_epochs: int = bounded(10, ge=1)
    step_epochs: int = bounded(20, ge=1)
    gamma: float = bounded(0.8, gt=0.0)
    grad_clip: float | None = bounded(None, gt=0.0)
    seed: int = 0
    #: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available).
    device: str = bounded("auto", check=device_problem)
    #: Mixed precision on CUDA (bf16 where supported, else fp16 with loss scaling); ignored on the CPU.
    amp: bool = True
    num_workers: int = bounded(0, ge=0)
    #: Cap the optimizer steps per epoch (quick runs); None = the whole dataset.
    max_steps_per_epoch: int | None = bounded(None, ge=1)
    #: Validation metric that selects the best checkpoint, and whether higher is better.
    select_metric: str = "val_f1"
    select_mode: Literal["max", "min"] = "max"
    #: Deterministic kernels (avkd.train.determinism): the same command on the same machine gives the same
    #: weights and artifact ids, at some cost in speed (benchmarks/determinism.py measures it).
    deterministic: bool = False
    #: Under data parallelism, BatchNorm statistics over the global batch rather than each process's share
    #: (the BatchNorm-heavy VocaLiST front-ends with small per-GPU batches). No effect in one process.
    sync_batchnorm: bool = False


class TrainTask(Protocol):
    """What :func:`fit` and :func:`fit_stage` need from a training stage."""

    #: How to rebuild the trained model (written into the artifact).
    spec: ModelSpec
    #: Validation metrics of the best epoch recorded in the artifact's metrics as ``best_<key>``.
    best_keys: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        """Facts recorded in the artifact's metrics before training (parameter counts, the method)."""

    def close(self) -> None:
        """Release what the task opened (feature stores)."""

    def modules(self) -> dict[str, nn.Module]:
        """Everything with state to checkpoint (the model, learnable loss weights, projections)."""

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimizer parameter groups."""

    def train_dataset(self) -> Dataset:
        """A dataset with ``set_epoch(e)`` whose items are a pure function of (seed, epoch, index)."""

    def loss(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        """The scalar to minimise for a batch, plus numbers to log."""

    def validate(self, device: torch.device) -> dict[str, float]:
        """Validation metrics (the trained modules are in eval mode)."""

    def export(self, path: Path) -> None:
        """Write the deliverable model file (called when the selection metric improves)."""

    # Optional: ``find_unused_parameters = True`` on a task whose loss leaves some trained parameters without a
    # gradient (DistributedDataParallel must then look for them each step; it costs a graph walk).
    #
    # Optional: ``passes: tuple[str, ...]``, the names of several optimiser steps per batch, in order (empty or
    # absent: one step on ``loss``). Such a task also has
    #     ``pass_loss(batch, device, name) -> tuple[torch.Tensor, dict[str, float]]``
    # (the scalar that pass ``name`` minimises, plus numbers to log; keep the log keys of the passes apart), and
    # each pass's Adam gets its own call of ``param_groups()``. A parameter that a pass leaves without a gradient
    # is not moved by that pass's optimiser (no weight decay either). Under data parallelism every pass's forward
    # goes through the one DistributedDataParallel wrapper; passes that use different parameters need
    # ``find_unused_parameters``.


class ModelTrainTask:
    """The parts of a :class:`TrainTask` that training one model from scratch shares (a teacher, or a student
    trained alone): subclasses set ``spec``, ``model`` and ``train`` and write ``loss``, ``validate``, ``close``."""

    spec: ModelSpec
    model: nn.Module
    train: Dataset

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.model.parameters())}]

    def train_dataset(self) -> Dataset:
        return self.train

    def export(self, path: Path) -> None:
        save_weights(path, self.model, self.spec)

    def summary(self) -> dict[str, Any]:
        return {"parameters": count_parameters(self.model)}


class Preempted(AvkdError):
    """The run saved its state on a signal and stopped; rerun with --resume."""

    exit_code = 75  # EX_TEMPFAIL: a job script can requeue on it


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    steps: int = 0


def lr_factor(config: LoopConfig, epoch: int) -> float:
    """Multiplier of the base LR for 0-based ``epoch``.

    warmup_step follows the MTD trainer's GradualWarmup(10) + StepLR(20, 0.8) as stepped per epoch (reference
    §3.2): lr·e/10 for 1-based epochs e = 1..10, then lr·0.8^floor((e−10)/20). The reference's very first
    iteration runs at lr 0 (the scheduler is stepped after it); here epoch 1 already uses lr/10.
    """
    if config.scheduler == "constant":
        return 1.0
    if config.scheduler == "multistep":
        # MultiStepLR(milestones=range(start, ∞, step)) stepped per epoch: 0-based epoch e runs at
        # lr·gamma^(milestones ≤ e).
        if epoch < config.warmup_epochs:
            return 1.0
        return config.gamma ** (1 + (epoch - config.warmup_epochs) // config.step_epochs)
    e = epoch + 1
    if e <= config.warmup_epochs:
        return e / config.warmup_epochs
    return config.gamma ** math.floor((e - config.warmup_epochs) / config.step_epochs)


class RankShard(Sampler[int]):
    """This rank's indices of global steps ``start..steps-1``: step s is samples s·B .. s·B+B-1 (B the global
    batch), of which rank r of W reads s·B + r·B/W .. s·B + (r+1)·B/W - 1, in order. In one process: the rest of
    an epoch from ``start`` (a mid-epoch resume)."""

    def __init__(self, steps: int, start: int, batch: int, rank: int = 0, size: int = 1) -> None:
        self.steps, self.start, self.batch, self.rank = steps, start, batch, rank
        self.local = batch // size

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start, self.steps):
            first = step * self.batch + self.rank * self.local
            yield from range(first, first + self.local)

    def __len__(self) -> int:
        return (self.steps - self.start) * self.local


@contextlib.contextmanager
def _stop_on_signals(flag: dict[str, int]) -> Iterator[None]:
    def handler(signum, frame) -> None:
        flag["signal"] = signum

    previous = {}
    with contextlib.suppress(ValueError):  # not the main thread: no handlers, the loop still works
        # Slurm sends what the job asks for (--signal=B:USR1@120, USR2, or TERM at the time limit): all three stop.
        for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def fit(
    task: TrainTask, config: LoopConfig, run_dir: Path, model_file: Path, show_progress: bool = True
) -> FitResult:
    """Train ``task`` for ``config.epochs`` epochs in ``run_dir``, continuing from ``run_dir/checkpoints/last.pt``."""
    with deterministic_mode(config.deterministic):
        return _fit(task, config, run_dir, model_file, show_progress)


class _Trained(nn.Module):
    """Every trained module of a task under one parent whose forward is the task's loss: the one module that
    DistributedDataParallel wraps, so its gradient hooks see all trained parameters whatever the task."""

    def __init__(self, task: TrainTask, modules: dict[str, nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(modules)
        self.task = [task]  # a list: not registered as a submodule

    def forward(
        self, batch: Any, device: torch.device, name: str | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        return _loss(self.task[0], batch, device, name)


def _loss(
    task: TrainTask, batch: Any, device: torch.device, name: str | None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Pass ``name``'s loss, or the task's one loss (``name`` None)."""
    if name is None:
        return task.loss(batch, device)
    return task.pass_loss(batch, device, name)  # type: ignore[attr-defined]


def passes_of(task: TrainTask) -> tuple[str, ...]:
    """The task's pass names (``()``: one pass through ``loss``), checked: distinct non-empty strings, and a
    ``pass_loss`` to run them."""
    names = tuple(getattr(task, "passes", ()) or ())
    if names and (len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names)):
        raise UsageError(f"{type(task).__name__}: passes must be distinct non-empty names, got {names}")
    if names and not callable(getattr(task, "pass_loss", None)):
        raise UsageError(f"{type(task).__name__} declares passes {names} but has no pass_loss")
    return names


def _data_parallel(task: TrainTask, modules: dict[str, nn.Module], device: torch.device) -> nn.Module:
    # Buffers are not broadcast each step: BatchNorm statistics of the other ranks are never read (rank 0
    # validates and exports), and losses with state (the CRD memory) keep their ranks in step themselves.
    return nn.parallel.DistributedDataParallel(
        _Trained(task, modules),
        device_ids=[device.index] if device.type == "cuda" else None,
        broadcast_buffers=False,
        find_unused_parameters=bool(getattr(task, "find_unused_parameters", False)),
    )


def on_main(w: World, action: Callable[[], Any]) -> Any:
    """Run ``action`` on rank 0 only and hand its result to every rank; if it fails there, every rank fails
    (the others with a one-line error naming rank 0) instead of waiting for a rank that is gone."""
    if not w.distributed:
        return action()
    outcome: tuple[str, Any] = ("ok", None)
    error: BaseException | None = None
    if w.is_main:
        try:
            outcome = ("ok", action())
        except BaseException as exc:  # re-raised below, after the others are told
            error, outcome = exc, ("error", str(exc))
    outcome = broadcast_object(outcome)
    if error is not None:
        raise error
    if outcome[0] == "error":
        raise AvkdError(f"stopped because rank 0 failed: {outcome[1]}")
    return outcome[1]


def _fit(
    task: TrainTask, config: LoopConfig, run_dir: Path, model_file: Path, show_progress: bool
) -> FitResult:
    device = rank_device(resolve_device(config.device))
    w = init_world(device)
    if config.batch_size % w.size:
        raise UsageError(
            f"batch size {config.batch_size} is the global batch and must split evenly over {w.size} processes"
        )
    show_progress = show_progress and w.is_main
    modules = task.modules()
    for module in modules.values():
        module.to(device)
        if config.sync_batchnorm and w.distributed:
            convert_sync_batchnorm(module, device)
    passes = passes_of(task)
    names: tuple[str | None, ...] = passes or (None,)  # None: the one pass through ``task.loss``
    use_amp = config.amp and device.type == "cuda"
    # One optimiser, schedule and scaler per pass (the released AVSiam keeps two Adam states and two scalers).
    optimizers = [
        torch.optim.Adam(task.param_groups(), lr=config.lr, weight_decay=config.weight_decay) for _ in names
    ]
    schedulers = [
        torch.optim.lr_scheduler.LambdaLR(opt, lambda e: lr_factor(config, e)) for opt in optimizers
    ]
    scalers = [torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype() == torch.float16) for _ in names]
    dataset = task.train_dataset()
    steps_per_epoch = len(dataset) // config.batch_size
    if config.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    if steps_per_epoch == 0:
        raise UsageError(
            f"batch size {config.batch_size} is larger than the {len(dataset)} samples of an epoch"
        )

    last = run_dir / LAST
    if w.is_main:
        last.parent.mkdir(parents=True, exist_ok=True)
    result = FitResult()
    epoch, step_in_epoch = 0, 0
    # The epoch's sums so far of each step's loss and logged numbers, as means over the global batch (the same on
    # every rank), kept across a mid-epoch resume whatever the number of processes.
    running: dict[str, Any] = {"loss_sum": 0.0, "loss_count": 0, "logs": {}}
    if last.exists():
        state = load_checkpoint(last)
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name])
        for opt_state, optimizer, scheduler, scaler in zip(
            _saved_passes(state, passes, last), optimizers, schedulers, scalers, strict=True
        ):
            optimizer.load_state_dict(opt_state["optimizer"])
            scheduler.load_state_dict(opt_state["scheduler"])
            scaler.load_state_dict(opt_state["scaler"])
        epoch, step_in_epoch = state["epoch"], state["step_in_epoch"]
        result = FitResult(state["history"], state["best"], state["steps"])
        running = state["running"]
        rngs = state.get("rank_rng") or [state["rng"]]
        if len(rngs) == w.size:
            set_rng_state(rngs[w.rank])
        else:
            # Another number of processes: the step (a global sample index), the global batch and the epoch's
            # sums so far hold; the random streams start afresh (other dropout masks).
            seed_everything(config.seed + 1_000_003 * w.rank + 7919 * result.steps)
            log(
                f"checkpoint written by {len(rngs)} process(es), resumed on {w.size}: same samples and global "
                "batch from here, other random draws (not bit-exact)"
            )
        log(f"resuming at epoch {epoch + 1}, step {step_in_epoch} of {steps_per_epoch}")
    else:
        # Rank 0 draws what one process would; the others get their own streams (independent dropout masks).
        seed_everything(config.seed + 1_000_003 * w.rank)
    engine = _data_parallel(task, modules, device) if w.distributed else None

    def loss_of(batch: Any, name: str | None) -> tuple[torch.Tensor, dict[str, float]]:
        if engine is None:
            return _loss(task, batch, device, name)
        # Through the wrapper, so that this pass's backward all-reduces the gradients.
        return engine(batch, device) if name is None else engine(batch, device, name)

    def checkpoint() -> None:
        rngs = gather_objects(rng_state())  # every rank takes part
        if not w.is_main:
            return
        save_checkpoint(
            last,
            {
                "modules": {name: m.state_dict() for name, m in modules.items()},
                **_optimiser_state(passes, optimizers, schedulers, scalers),
                "epoch": epoch,
                "step_in_epoch": step_in_epoch,
                "running": running,
                "history": result.history,
                "best": result.best,
                "steps": result.steps,
                "world_size": w.size,
                "rank_rng": rngs,
            },
        )

    def validate_and_export() -> tuple[dict[str, float], bool]:
        for module in modules.values():
            module.eval()
        with torch.no_grad():
            metrics = task.validate(device)
        value = metrics.get(config.select_metric)
        if value is None:
            raise UsageError(f"validation gives no {config.select_metric!r}; it gives {sorted(metrics)}")
        better = result.best is None or (
            value > result.best[config.select_metric]
            if config.select_mode == "max"
            else value < result.best[config.select_metric]
        )
        if better:
            task.export(model_file)
        return metrics, better

    stop: dict[str, int] = {}
    with _stop_on_signals(stop):
        while epoch < config.epochs:
            dataset.set_epoch(epoch)
            loader = DataLoader(
                dataset,
                batch_size=config.batch_size // w.size,
                sampler=RankShard(steps_per_epoch, step_in_epoch, config.batch_size, w.rank, w.size),
                num_workers=config.num_workers,
                pin_memory=device.type == "cuda",
                drop_last=True,
                persistent_workers=False,
                # Its own generator: creating an iterator would otherwise draw from the global RNG, and a
                # run resumed mid-epoch (iterator created after the restore) would then see other dropout masks.
                generator=torch.Generator().manual_seed(config.seed * 100003 + epoch),
            )
            for module in modules.values():
                module.train()
            started, seen = time.monotonic(), 0
            desc = f"epoch {epoch + 1}/{config.epochs}"
            with ProgressReporter(steps_per_epoch, desc, enabled=show_progress) as bar:
                bar.advance(step_in_epoch)
                for batch in loader:
                    step_loss, logs, stopping = 0.0, {}, False
                    for k, name in enumerate(names):
                        optimizer, scaler = optimizers[k], scalers[k]
                        with autocast(device, use_amp):
                            loss, pass_logs = loss_of(batch, name)
                        local = float(loss.detach())
                        # One collective a pass: a non-finite loss or a stop request anywhere is seen everywhere
                        # before any rank steps, and the loss and logs become means over the global batch.
                        bad, stop_now, pass_loss, pass_logs = _agree(w, local, pass_logs, bool(stop))
                        if bad:
                            what = local if not math.isfinite(local) else "non-finite on another rank"
                            which = "loss" if name is None else f"loss of pass {name!r}"
                            raise AvkdError(
                                f"{which} became {what} at epoch {epoch + 1} step {step_in_epoch}"
                            )
                        optimizer.zero_grad(set_to_none=True)
                        scaler.scale(loss).backward()
                        if config.grad_clip:
                            scaler.unscale_(optimizer)
                            nn.utils.clip_grad_norm_(
                                [p for g in optimizer.param_groups for p in g["params"]], config.grad_clip
                            )
                        scaler.step(optimizer)
                        scaler.update()
                        stopping = stopping or stop_now
                        step_loss = pass_loss if k == 0 else step_loss + pass_loss
                        logs.update(pass_logs)
                    step_in_epoch += 1
                    result.steps += 1
                    seen += config.batch_size
                    running["loss_sum"] += step_loss
                    running["loss_count"] += 1
                    for key, value in logs.items():
                        running["logs"][key] = running["logs"].get(key, 0.0) + float(value)
                    rate = seen / max(time.monotonic() - started, 1e-9)
                    mean = running["loss_sum"] / running["loss_count"]
                    bar.advance(1, status=f"loss {mean:.4f} {rate:.1f} samples/s")
                    if stopping:
                        checkpoint()
                        barrier()  # nobody exits (and makes the launcher kill the rest) before the save
                        raise Preempted(
                            f"{run_dir}: stopped by signal {stop.get('signal', 'on another rank')} at epoch "
                            f"{epoch + 1} step {step_in_epoch}; state saved, rerun with --resume"
                        )
            for scheduler in schedulers:
                scheduler.step()
            row_base = {
                "epoch": epoch + 1,
                "steps": result.steps,
                "lr": optimizers[0].param_groups[0]["lr"],
                "train_loss": running["loss_sum"] / max(running["loss_count"], 1),
                "train_samples_per_s": seen / max(time.monotonic() - started, 1e-9),
                **{k: v / max(running["loss_count"], 1) for k, v in running["logs"].items()},  # epoch means
            }
            metrics, better = on_main(w, validate_and_export)
            row = {**row_base, **metrics}
            result.history.append(row)
            if better:
                result.best = row
            epoch += 1
            step_in_epoch = 0
            running = {"loss_sum": 0.0, "loss_count": 0, "logs": {}}
            checkpoint()
            if w.is_main:
                atomic_write_text(run_dir / METRICS, jsonl_text(result.history))
            log(
                f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, "
                + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
                + (" (best)" if better else "")
            )
    return result


def _optimiser_state(
    passes: tuple[str, ...],
    optimizers: list[torch.optim.Optimizer],
    schedulers: list[Any],
    scalers: list[torch.amp.GradScaler],
) -> dict[str, Any]:
    """The checkpoint's optimisation state: the top-level keys of one pass, or one entry per named pass."""
    states = [
        {"optimizer": o.state_dict(), "scheduler": s.state_dict(), "scaler": g.state_dict()}
        for o, s, g in zip(optimizers, schedulers, scalers, strict=True)
    ]
    if not passes:
        return states[0]
    return {"passes": dict(zip(passes, states, strict=True))}


def _saved_passes(state: dict[str, Any], passes: tuple[str, ...], path: Path) -> list[dict[str, Any]]:
    """Each pass's saved optimisation state, in order; a checkpoint of other passes is refused (its Adam
    moments belong to other objectives)."""
    saved = tuple(state.get("passes", {}))
    if saved != passes:
        said, has = (", ".join(names) or "one pass" for names in (saved, passes))
        raise UsageError(
            f"{path}: written with passes ({said}), this run has ({has}); "
            "resume with the same settings or start afresh"
        )
    return [state["passes"][name] for name in passes] if passes else [state]


def _agree(
    w: World, loss: float, logs: dict[str, float], stop: bool
) -> tuple[bool, bool, float, dict[str, float]]:
    """(any rank's loss non-finite, any rank asked to stop, the loss and logs averaged over the ranks)."""
    finite = math.isfinite(loss)
    if not w.distributed:
        return not finite, stop, loss, logs
    keys = sorted(logs)
    sums = all_reduce_sum(
        [float(not finite), float(stop), loss if finite else 0.0, *(float(logs[k]) for k in keys)]
    )
    mean = {k: v / w.size for k, v in zip(keys, sums[3:], strict=True)}
    return sums[0] > 0, sums[1] > 0, sums[2] / w.size, mean


class TrainingConfig(Protocol):
    """What every training stage's config has: the loop settings and whether to keep the full state."""

    loop: LoopConfig
    keep_checkpoint: bool


def fit_stage(
    out: str | Path,
    config: TrainingConfig,
    build: Callable[[], tuple[TrainTask, list[Artifact]]],
    overwrite: bool = False,
    resume: bool = False,
    show_progress: bool = True,
) -> Artifact:
    """The one sequence every training stage runs: a complete artifact at ``out`` under ``--resume`` is the
    result; otherwise ``build()`` loads the inputs and makes the task, which trains into a ``model`` artifact.

    The artifact holds ``model.pt`` (the best epoch by ``loop.select_metric``), ``metrics.jsonl`` and, with
    ``keep_checkpoint``, the full training state to train on later. Its metrics are the task's
    :meth:`~TrainTask.summary` plus the run's epochs, steps, best epoch and the best row's ``best_keys``.
    """
    out = Path(out)
    validate(config)  # nonsense values are usage errors before any work, whoever built the config
    device = resolve_device(config.loop.device)  # and so is a device this machine does not have
    w = init_world(rank_device(device))
    if (done := finished(out, MODEL, resume)) is not None:
        return done
    task, inputs = build()
    try:
        writer = ArtifactWriter(
            out, MODEL, to_dict(config), inputs=inputs, overwrite=overwrite, resume=resume, logs=[METRICS]
        )
        with contextlib.ExitStack() as stack:
            # Rank 0 alone enters (and so creates, locks and finally commits) the artifact; the others train
            # beside it, reading its checkpoint to resume, and write nothing.
            on_main(w, lambda: stack.enter_context(writer))
            result = fit(
                task, config.loop, writer.workdir, writer.workdir / WEIGHTS, show_progress=show_progress
            )

            def commit() -> Artifact:
                if not (writer.workdir / WEIGHTS).is_file():
                    raise AvkdError(f"{writer.workdir}: no epoch finished, so there is no model to commit")
                if not config.keep_checkpoint:
                    (writer.workdir / LAST).unlink(missing_ok=True)
                best = result.best or {}
                summary = {
                    **task.summary(),
                    "epochs": len(result.history),
                    "steps": result.steps,
                    "best_epoch": best.get("epoch"),
                    **{f"best_{key}": best.get(key) for key in task.best_keys},
                    "final_train_loss": result.history[-1]["train_loss"] if result.history else None,
                    # CPU reductions depend on it: a deterministic run is reproduced with the same count.
                    "torch_threads": torch.get_num_threads(),
                    # Gradients averaged over this many processes (batch_size is the global batch).
                    "world_size": w.size,
                }
                return writer.commit(metrics=summary, spec=task.spec.to_json(), logs=METRICS)

            artifact = on_main(w, commit)
        return artifact if w.is_main else load_artifact(out, kind=MODEL)
    finally:
        task.close()
