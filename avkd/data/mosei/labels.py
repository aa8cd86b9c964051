"""The 7-class emotion target of the seed paper: ``label7(y) = round(clip(y, -3, 3)) + 3``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["label7"]


def label7(y: Any) -> Any:
    """7-class sentiment: ``round(clip(y, -3, 3)) + 3`` (docs/reference/mult-mosei.md §2.2, §5.5.1).

    Rounding is half-to-even, exactly MulT's ``np.round`` in ``multiclass_acc``: -0.5 -> 3, 0.5 -> 3, 1.5 -> 5,
    2.5 -> 5, -3.4 -> 0. Accepts a float, a numpy array or a torch tensor; returns int / int64 of the same kind.
    """
    if isinstance(y, torch.Tensor):
        return (torch.round(torch.clamp(y, -3.0, 3.0)) + 3).to(torch.int64)
    out = np.round(np.clip(np.asarray(y, dtype=np.float64), -3.0, 3.0)).astype(np.int64) + 3
    return int(out) if out.ndim == 0 else out
