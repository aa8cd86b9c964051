"""Distillation losses found by name (:mod:`avkd.losses.base`: the contract and the registry; the families
:mod:`avkd.losses.sync` and :mod:`avkd.losses.emotion`), the weightings that combine their terms with the
student's own loss (:mod:`avkd.losses.weighting`), and the methods built from both (:mod:`avkd.losses.methods`).

A loss says which taps it needs (``loss.taps()``) and returns named, unweighted scalar terms; a weighting
combines the student's BCE with those terms into the objective (uniform, manual, AW-13D/25D, UW-13D/25D).
"""

from __future__ import annotations

from avkd.losses import embedding, emotion, sync  # noqa: F401  (registration)
from avkd.losses.base import (
    LOSSES,
    DistillLoss,
    build_loss,
    is_loss,
    list_losses,
    register_loss,
    teacher_tensor,
)
from avkd.losses.layers import parse_layers
from avkd.losses.weighting import WEIGHTINGS, Weighting, build_weighting, list_weightings

__all__ = [
    "LOSSES",
    "WEIGHTINGS",
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
