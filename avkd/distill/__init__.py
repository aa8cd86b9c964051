"""Distillation: losses found by name (:mod:`avkd.distill.losses`) and term weightings
(:mod:`avkd.distill.weighting`).

A loss says which taps it needs (``loss.taps()``) and returns named, unweighted scalar terms; a weighting
combines the student's BCE with those terms into the objective (uniform, manual, AW-13D/25D, UW-13D/25D).
Method → weighting as in the MTDVocaLiST paper: ``mtd`` → ``uw25`` (``loss.default_weighting``), every other
method (``bce``, ``kd``, ``rkd``, ``fitnets``, ``minilm``, ``nmtd``) → ``uniform``.
"""

from __future__ import annotations

# The emotion track's losses (crd, edam_s, edam_t) join the same registry when the package is imported.
from avkd.distill import emotion_losses  # noqa: F401
from avkd.distill.losses import (
    DistillLoss,
    build_loss,
    is_loss,
    list_losses,
    parse_layers,
    register_loss,
    teacher_tensor,
)
from avkd.distill.weighting import Weighting, build_weighting, list_weightings

__all__ = [
    "DistillLoss",
    "Weighting",
    "build_loss",
    "build_weighting",
    "is_loss",
    "list_losses",
    "list_weightings",
    "parse_layers",
    "register_loss",
    "teacher_tensor",
]
