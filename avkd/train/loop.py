"""One training loop for teacher training and distillation, on any device, resumable after a kill.

A :class:`TrainTask` says what is trained (modules, parameter groups), how a batch becomes a loss, and how a
model is validated; :func:`fit` does the rest: epochs over a seeded dataset, AMP on CUDA, a per-epoch learning
rate schedule, validation and best-checkpoint selection, a JSONL metrics log, and full-state checkpoints.

Resume: ``checkpoints/last.pt`` holds model, optimizer, scheduler, scaler, position (epoch, step within the
epoch), history and every RNG state. Datasets draw sample ``i`` of epoch ``e`` as a pure function of
(seed, e, i) and are read in order, so a resumed run sees exactly the batches and dropout masks the
uninterrupted run would have. SIGTERM / SIGUSR1 (Slurm's pre-emption and time-limit signals) make the loop save
that checkpoint at the next step and exit with code 75, so a job script can requeue itself with ``--resume``.
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

from avkd.core.artifacts import MODEL, Artifact, ArtifactWriter, atomic_write_text, finished
from avkd.core.config import bounded, to_dict, validate
from avkd.core.errors import AvkdError, UsageError
from avkd.core.jsonl import jsonl_text
from avkd.core.progress import ProgressReporter, log
from avkd.models.device import amp_dtype, autocast, device_problem, resolve_device
from avkd.models.io import WEIGHTS, ModelSpec, count_parameters, save_weights
from avkd.train.checkpoint import load_checkpoint, save_checkpoint, seed_everything, set_rng_state
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
    #: linear warm-up over ``warmup_epochs`` then ×``gamma`` every ``step_epochs``, docs/reference/vocalist.md §3.2).
    scheduler: Literal["constant", "warmup_step"] = "constant"
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
    e = epoch + 1
    if e <= config.warmup_epochs:
        return e / config.warmup_epochs
    return config.gamma ** math.floor((e - config.warmup_epochs) / config.step_epochs)


class _FromStep(Sampler[int]):
    """Indices start..len-1 in order: the rest of an epoch after a mid-epoch resume."""

    def __init__(self, length: int, start: int) -> None:
        self.length, self.start = length, start

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.length))

    def __len__(self) -> int:
        return self.length - self.start


@contextlib.contextmanager
def _stop_on_signals(flag: dict[str, int]) -> Iterator[None]:
    def handler(signum, frame) -> None:
        flag["signal"] = signum

    previous = {}
    with contextlib.suppress(ValueError):  # not the main thread: no handlers, the loop still works
        for sig in (signal.SIGTERM, signal.SIGUSR1):
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


def _fit(
    task: TrainTask, config: LoopConfig, run_dir: Path, model_file: Path, show_progress: bool
) -> FitResult:
    device = resolve_device(config.device)
    modules = task.modules()
    for module in modules.values():
        module.to(device)
    optimizer = torch.optim.Adam(task.param_groups(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: lr_factor(config, e))
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype() == torch.float16)
    dataset = task.train_dataset()
    steps_per_epoch = len(dataset) // config.batch_size
    if config.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    if steps_per_epoch == 0:
        raise UsageError(
            f"batch size {config.batch_size} is larger than the {len(dataset)} samples of an epoch"
        )

    last = run_dir / LAST
    last.parent.mkdir(parents=True, exist_ok=True)
    result = FitResult()
    epoch, step_in_epoch = 0, 0
    # This epoch's sums so far (loss and the task's logged numbers), kept across a mid-epoch resume.
    running: dict[str, Any] = {"loss_sum": 0.0, "loss_count": 0, "logs": {}}
    if last.exists():
        state = load_checkpoint(last)
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        epoch, step_in_epoch = state["epoch"], state["step_in_epoch"]
        running = state["running"]
        result = FitResult(state["history"], state["best"], state["steps"])
        set_rng_state(state["rng"])
        log(f"resuming at epoch {epoch + 1}, step {step_in_epoch} of {steps_per_epoch}")
    else:
        seed_everything(config.seed)

    def checkpoint() -> None:
        save_checkpoint(
            last,
            {
                "modules": {name: m.state_dict() for name, m in modules.items()},
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "step_in_epoch": step_in_epoch,
                "running": running,
                "history": result.history,
                "best": result.best,
                "steps": result.steps,
            },
        )

    stop: dict[str, int] = {}
    with _stop_on_signals(stop):
        while epoch < config.epochs:
            dataset.set_epoch(epoch)
            loader = DataLoader(
                dataset,
                batch_size=config.batch_size,
                sampler=_FromStep(steps_per_epoch * config.batch_size, step_in_epoch * config.batch_size),
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
                    with autocast(device, use_amp):
                        loss, logs = task.loss(batch, device)
                    if not torch.isfinite(loss):
                        raise AvkdError(
                            f"loss became {loss.item()} at epoch {epoch + 1} step {step_in_epoch}"
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
                    step_in_epoch += 1
                    result.steps += 1
                    seen += config.batch_size
                    running["loss_sum"] += float(loss.detach())
                    running["loss_count"] += 1
                    for key, value in logs.items():
                        running["logs"][key] = running["logs"].get(key, 0.0) + float(value)
                    rate = seen / max(time.monotonic() - started, 1e-9)
                    mean = running["loss_sum"] / running["loss_count"]
                    bar.advance(1, status=f"loss {mean:.4f} {rate:.1f} samples/s")
                    if stop:
                        checkpoint()
                        raise Preempted(
                            f"{run_dir}: stopped by signal {stop['signal']} at epoch {epoch + 1} step {step_in_epoch}; "
                            "state saved, rerun with --resume"
                        )
            scheduler.step()
            for module in modules.values():
                module.eval()
            with torch.no_grad():
                metrics = task.validate(device)
            row = {
                "epoch": epoch + 1,
                "steps": result.steps,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": running["loss_sum"] / max(running["loss_count"], 1),
                "train_samples_per_s": seen / max(time.monotonic() - started, 1e-9),
                **{k: v / max(running["loss_count"], 1) for k, v in running["logs"].items()},  # epoch means
                **metrics,
            }
            result.history.append(row)
            value = metrics.get(config.select_metric)
            if value is None:
                raise UsageError(f"validation gives no {config.select_metric!r}; it gives {sorted(metrics)}")
            better = result.best is None or (
                value > result.best[config.select_metric]
                if config.select_mode == "max"
                else value < result.best[config.select_metric]
            )
            if better:
                result.best = row
                task.export(model_file)
            epoch += 1
            step_in_epoch = 0
            running = {"loss_sum": 0.0, "loss_count": 0, "logs": {}}
            checkpoint()
            atomic_write_text(run_dir / METRICS, jsonl_text(result.history))
            log(
                f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, "
                + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
                + (" (best)" if better else "")
            )
    return result


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
    resolve_device(config.loop.device)  # and so is a device this machine does not have
    if (done := finished(out, MODEL, resume)) is not None:
        return done
    task, inputs = build()
    try:
        with ArtifactWriter(
            out, MODEL, to_dict(config), inputs=inputs, overwrite=overwrite, resume=resume, logs=[METRICS]
        ) as writer:
            result = fit(task, config.loop, writer.workdir, writer.path(WEIGHTS), show_progress=show_progress)
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
            }
            return writer.commit(metrics=summary, spec=task.spec.to_json(), logs=METRICS)
    finally:
        task.close()
