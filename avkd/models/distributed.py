"""Data-parallel training across processes: joining the process group, the collectives avkd needs, SyncBatchNorm.

avkd uses PyTorch's own stack and no launcher of its own: ``torchrun`` or Slurm's ``srun`` with one task per GPU
(:mod:`avkd.core.world` reads their variables). A process that finds neither is a world of one, and every
function here is then a no-op, so single-process code pays nothing.

The backend is NCCL on CUDA and gloo on the CPU. Collectives that must carry gradients (negatives from other
ranks in a contrastive loss, a statistic of the whole global batch) go through :func:`gather_with_grad` and
:func:`all_reduce_with_grad`; a plain ``torch.distributed.all_gather`` cuts the graph.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from avkd.core.errors import UsageError
from avkd.core.world import World, slurm_rendezvous, world_from_env

__all__ = [
    "CpuSyncBatchNorm",
    "all_reduce_sum",
    "all_reduce_with_grad",
    "barrier",
    "broadcast_object",
    "convert_sync_batchnorm",
    "gather_objects",
    "gather_with_grad",
    "init_world",
    "rank_device",
    "world",
]


def init_world(device: torch.device, timeout_s: float = 1800.0) -> World:
    """Join the process group the launcher describes (once per process) and return this process's place.

    NCCL when ``device`` is CUDA, gloo otherwise. The CUDA device of a rank is ``cuda:LOCAL_RANK``; the
    caller picks it with :func:`rank_device`.
    """
    w = world_from_env()
    if not w.distributed or (dist.is_available() and dist.is_initialized()):
        return world()
    if not dist.is_available():
        raise UsageError(f"{w.launcher} asks for {w.size} processes but this torch has no torch.distributed")
    if w.launcher == "slurm":
        slurm_rendezvous(w)
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs: dict[str, Any] = {"timeout": timedelta(seconds=timeout_s)}
    if device.type == "cuda":
        kwargs["device_id"] = device
    dist.init_process_group(backend=backend, **kwargs)
    # Leave the group before the interpreter tears down: a gloo group still alive at exit can abort the process
    # ("terminate called without an active exception", SIGABRT) after its work is done, failing the job.
    atexit.register(_leave)
    return world()


def _leave() -> None:
    if not (dist.is_available() and dist.is_initialized()):
        return
    # gloo: every rank reaches this point before any tears down (a rank that exits first closes its sockets under
    # the others' feet); a rank that died ends the wait with an error after a minute instead of a hang. NCCL has no
    # such bounded barrier, and there the launcher's teardown is enough.
    if dist.get_backend() == "gloo":
        with contextlib.suppress(Exception):
            dist.monitored_barrier(timeout=timedelta(seconds=60))
    dist.destroy_process_group()
    # Free the group (DDP's reducer holds it) while the interpreter is whole, so its threads are joined here and
    # not left running into the static destructors.
    gc.collect()


def rank_device(device: torch.device) -> torch.device:
    """``cuda`` under a launcher is one GPU per process: ``cuda:LOCAL_RANK`` when the process sees the node's GPUs,
    ``cuda:0`` when it sees only its own (``srun --gpus-per-task=1``). Anything else is kept."""
    w = world_from_env()
    if device.type == "cuda" and w.distributed:
        count = torch.cuda.device_count()
        if count > 1 and w.local_rank >= count:
            raise UsageError(f"rank {w.rank} has LOCAL_RANK {w.local_rank} but this node shows {count} GPUs")
        device = torch.device("cuda", w.local_rank if count > 1 else 0)
        torch.cuda.set_device(device)
    return device


def world() -> World:
    """This process's place: from the initialised process group, else a world of one."""
    if dist.is_available() and dist.is_initialized():
        env = world_from_env()
        return World(dist.get_rank(), dist.get_world_size(), env.local_rank, env.launcher)
    return World()


# ----------------------------------------------------------------------------------------- collectives


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _backend_device() -> torch.device:
    # NCCL reduces CUDA tensors only; gloo CPU tensors (it also takes CUDA ones, via a copy).
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    if _active():
        dist.barrier()


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sums over ranks of a list of numbers (epoch totals), in float64."""
    if not _active() or not values:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_backend_device())
    dist.all_reduce(t)
    return [float(v) for v in t.cpu()]


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (picklable Python objects: metrics, an error message)."""
    if not _active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (RNG states for a checkpoint)."""
    if not _active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward hands each rank the summed gradient of its own slice.

    Every rank computes a loss over the gathered tensor, so the gradient of rank r's rows is the sum over all
    ranks' losses: the backward all-reduces the full gradient and keeps rank r's part. DDP then averages the
    parameter gradients over ranks, which gives exactly the gradient of the (identical) global loss. Written
    with all_reduce rather than reduce_scatter because gloo has no reduce_scatter.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.rank, ctx.size, ctx.rows = dist.get_rank(), dist.get_world_size(), x.size(0)
        parts = [torch.empty_like(x) for _ in range(ctx.size)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def gather_with_grad(x: Tensor) -> Tensor:
    """``cat`` over ranks (rank order) of each rank's ``x`` (same shape on every rank), differentiable.

    For losses over the whole global batch (relational KD, batch negatives); identity in a world of one.
    A tensor that needs no gradient (a frozen teacher's) is gathered the same way, without the backward.
    """
    if not _active():
        return x
    if not x.requires_grad:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)
    return _GatherWithGrad.apply(x)


class _AllReduceWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:  # type: ignore[override]
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_reduce_with_grad(x: Tensor) -> Tensor:
    """Sum of ``x`` over ranks, differentiable (the backward sums the gradients the same way)."""
    if not _active():
        return x
    return _AllReduceWithGrad.apply(x)


# ------------------------------------------------------------------------------------------ SyncBN


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the whole global batch, for any backend (gloo too).

    ``torch.nn.SyncBatchNorm`` runs only on GPUs; this is its CPU counterpart, used by
    :func:`convert_sync_batchnorm` when training on the CPU (the tests, and gloo runs). Per channel it
    all-reduces (count, Σx, Σx²) with gradient, normalises with the biased variance and updates the running
    variance with the unbiased one, as ``nn.BatchNorm`` does. Any number of spatial dimensions.
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and _active()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = torch.tensor([x.numel() / x.size(1)], dtype=xf.dtype, device=x.device)
        stats = torch.cat([count, xf.sum(dims), (xf * xf).sum(dims)])
        stats = all_reduce_with_grad(stats)
        n = stats[0]
        c = x.size(1)
        mean = stats[1 : 1 + c] / n
        var = (stats[1 + c :] / n - mean * mean).clamp_min(0.0)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)).clamp_min(0), alpha=m)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of ``module`` computes its statistics over the global batch: ``torch.nn.SyncBatchNorm``
    on CUDA, :class:`CpuSyncBatchNorm` elsewhere. State-dict keys are unchanged (the weights load both ways).
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_cpu(module)


def _convert_cpu(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, CpuSyncBatchNorm):
        new = CpuSyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if (
            module.affine
        ):  # the same Parameter objects, as torch's conversion does: an optimizer keeps working
            new.weight, new.bias = module.weight, module.bias
        new.running_mean = module.running_mean
        new.running_var = module.running_var
        new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        converted = _convert_cpu(child)
        if converted is not child:
            setattr(module, name, converted)
    return module
