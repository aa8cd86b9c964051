"""The distillation-loss contract and registry: ``build_loss("mtd", layers="all")``, ``list_losses()``.

Every loss is an :class:`nn.Module` with the same small interface, so that every method (plain BCE included)
goes through one code path in a distillation stage::

    loss = build_loss("mtd", layers="all")
    req = loss.tap_request()                        # TapRequest of exactly loss.taps(), or None
    with torch.no_grad():                           # or torch.inference_mode(): both work (see below)
        t = teacher(video, mel, taps=req) if req else Tapped(teacher(video, mel), {})
    s = student(video, mel, taps=req) if req else Tapped(student(video, mel), {})
    terms = loss(s, t, labels)                      # {"cad/mem1": ..., "vr/mem1": ..., ...}: unweighted scalars
    total, logs = weighting(bce, terms)             # avkd.losses.weighting

* :meth:`DistillLoss.taps` names the taps the loss needs from **both** models (exact names, which are valid
  :class:`~avkd.models.attention.TapRequest` patterns since they contain no wildcard); requesting exactly these
  keeps the forward cheap (un-requested attention layers stay on the fused SDPA path).
* :meth:`DistillLoss.forward` returns **named, unweighted, scalar terms**; their weighting (and the BCE's) is
  :mod:`avkd.losses.weighting`, so uniform / manual / AW / UW apply to any set of terms. The exceptions are
  the baselines whose official module multiplies a fixed coefficient internally (RKD's w_d / w_a, FitNets'
  Beta, KD's T²): their terms include that coefficient, so that ``uniform`` weighting with ``alpha=1`` gives the
  official ``BCE + loss`` (docs/reference/vocalist.md §3.2, "fixed-weight baselines").
* :meth:`DistillLoss.term_names` lists the term names before any forward (a weighting needs them to size its
  parameters, and the optimiser needs those parameters up front).

Teacher tensors: every teacher tap is read through :func:`teacher_tensor`, which detaches it and, if it is an
inference tensor (teacher run under ``torch.inference_mode()``), clones it into a normal tensor, because an
inference tensor cannot be saved for backward (e.g. as the input of the trainable FitNets projection). So a
teacher forward under either ``torch.no_grad()`` or ``torch.inference_mode()`` works with every loss; the loss
itself must then run *outside* inference mode (it needs autograd for the student). Losses compute in float32
with autocast disabled (:func:`full_precision`), so they may be called inside the trainer's AMP region.

The families: :mod:`avkd.losses.sync` (MTD, NMTD, MiniLM*, KD, RKD, FitNets, BCE) and
:mod:`avkd.losses.emotion` (CRD, EDAM-S, EDAM-T); importing :mod:`avkd.losses` registers both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from avkd.core.registry import Registry
from avkd.models.attention import Tapped, TapRequest

__all__ = [
    "LOSSES",
    "DistillLoss",
    "build_loss",
    "full_precision",
    "is_loss",
    "list_losses",
    "loss_entrypoint",
    "register_loss",
    "teacher_tensor",
]


# ----------------------------------------------------------------------------------------------- base


def teacher_tensor(x: Tensor) -> Tensor:
    """A teacher tensor made safe for the student's autograd graph: detached, and a normal tensor.

    Tensors produced under ``torch.inference_mode()`` are *inference tensors*; using one where autograd saves
    it for backward (a ``Linear`` input whose weight requires grad, a ``kl_div`` target, ...) raises
    "Inference tensors cannot be saved for backward". Cloning outside inference mode gives a normal tensor;
    only inference tensors are copied, so a teacher run under ``torch.no_grad()`` costs nothing here.
    """
    x = x.detach()
    return x.clone() if x.is_inference() else x


def full_precision(fn: Callable[..., dict[str, Tensor]]) -> Callable[..., dict[str, Tensor]]:
    """Run a loss ``forward`` with autocast disabled on the logits' device, so every term is float32 math.

    Under AMP, autocast would run the matmuls of VR, RKD's Gram-matrix distances and the FitNets projection in
    fp16/bf16 even on float32 inputs (the reference trained in fp32, §3.2); the Gram expansion in particular
    loses the small distances to cancellation. The taps themselves may be half precision: they are upcast.
    """

    @functools.wraps(fn)
    def wrapper(self: DistillLoss, student: Tapped, teacher: Tapped, labels: Tensor | None = None) -> Any:
        dev = student.logits.device.type
        if torch.is_autocast_enabled(dev):
            with torch.autocast(dev, enabled=False):
                return fn(self, student, teacher, labels)
        return fn(self, student, teacher, labels)

    return wrapper


def _tap(out: Tapped, name: str, who: str, loss: str) -> Tensor:
    try:
        return out.taps[name]
    except KeyError:
        raise ValueError(
            f"loss {loss!r} needs tap {name!r} from the {who}; run the {who} with taps=loss.tap_request() "
            f"(it has {sorted(out.taps) or 'no taps'})"
        ) from None


class DistillLoss(nn.Module):
    """Base class of every distillation loss (see the module docstring for the contract).

    Subclasses implement :meth:`taps`, :meth:`term_names` and :meth:`forward`. ``name`` is the registry name
    the loss was built under. Which weighting a method pairs the loss with is the method's business
    (:class:`avkd.losses.methods.Method`), not the loss's.
    """

    name: str = "?"
    #: Whether the loss reads the teacher at all (its logits or taps); the stage skips the teacher pass if not.
    uses_teacher: bool = True

    def taps(self) -> list[str]:
        """Exact tap names needed from both teacher and student (request exactly these)."""
        return []

    def term_names(self) -> list[str]:
        """Names of the terms :meth:`forward` returns, in its order."""
        return []

    def setup(self, student: nn.Module, teacher: nn.Module) -> None:
        """Called once by the stage with the two models before the optimiser is built; a loss that needs the
        models' sizes (FitNets' projection) creates its parameters here. The default does nothing."""

    def tap_request(self) -> TapRequest | None:
        """A :class:`TapRequest` of exactly :meth:`taps`, or None when none are needed (run a plain forward
        and wrap the logits as ``Tapped(logits, {})``)."""
        names = self.taps()
        return TapRequest(*names) if names else None

    def teacher_tap(self, teacher: Tapped, name: str) -> Tensor:
        """Teacher tap ``name`` through :func:`teacher_tensor` (detached, never an inference tensor)."""
        return teacher_tensor(_tap(teacher, name, "teacher", self.name))

    def student_tap(self, student: Tapped, name: str) -> Tensor:
        return _tap(student, name, "student", self.name)

    def forward(self, student: Tapped, teacher: Tapped, labels: Tensor | None = None) -> dict[str, Tensor]:
        """Named, unweighted 0-dim loss terms (float32)."""
        raise NotImplementedError


# -------------------------------------------------------------------------------------------- registry

LOSSES: Registry[Callable[..., DistillLoss]] = Registry("loss")

#: ``@register_loss`` or ``@register_loss(name="x", aliases=("y",))``: functions or classes returning a loss.
register_loss = LOSSES.register


def list_losses(pattern: str = "*") -> list[str]:
    """Sorted names of registered losses matching the fnmatch ``pattern``."""
    return sorted(LOSSES.names(pattern))


def is_loss(name: str) -> bool:
    return name in LOSSES


def loss_entrypoint(name: str) -> Callable[..., DistillLoss]:
    """The entrypoint registered as ``name``; :class:`~avkd.core.errors.UsageError` if there is none."""
    return LOSSES.get(name)


def build_loss(name: str, **kwargs: Any) -> DistillLoss:
    """Build the loss registered as ``name`` (or an alias); unknown names and arguments raise ``UsageError``."""
    loss = LOSSES.build(name, **kwargs)
    loss.name = LOSSES.canonical(name)
    return loss
