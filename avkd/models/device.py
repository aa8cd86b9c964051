"""Device choice and mixed precision, one rule for every stage (training, distillation, evaluation, ``avkd sync``)."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import torch

from avkd.core.errors import UsageError

__all__ = ["amp_dtype", "autocast", "device_problem", "resolve_device"]

_DEVICE = re.compile(r"^(auto|cpu|cuda(:[0-9]+)?)$")


def device_problem(name: str) -> str | None:
    """What is wrong with a device name in a config (None: nothing), checked before any work."""
    return None if _DEVICE.match(str(name)) else "is not a device: expected auto, cpu, cuda or cuda:N"


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    A CUDA device on a machine without CUDA, or a name torch does not know (``gpu``, ``tpu``), is a
    :class:`~avkd.core.errors.UsageError`. ``cuda`` without an index becomes the current device, so that the
    model and its inputs agree on one.
    """
    if isinstance(name, str) and name == "auto":
        return (
            torch.device("cuda", torch.cuda.current_device())
            if torch.cuda.is_available()
            else torch.device("cpu")
        )
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UsageError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {name!r}: avkd runs on cpu or cuda (auto picks one)")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: CUDA is not available on this machine")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        elif device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def amp_dtype() -> torch.dtype:
    """The AMP dtype on CUDA: bf16 where the GPU supports it, else fp16 (which then needs loss scaling)."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """Autocast in :func:`amp_dtype` on CUDA when ``enabled``; a no-op on the CPU."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=amp_dtype())
    return contextlib.nullcontext()
