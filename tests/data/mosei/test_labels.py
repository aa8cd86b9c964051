"""``label7`` (``avkd.data.mosei.labels``): MulT's 7-class rounding of the sentiment score."""

from __future__ import annotations

import numpy as np
import torch

from avkd.data.mosei.labels import label7


def test_label7_matches_multiclass_acc_rounding() -> None:
    values = [-3.4, -3.0, -2.6, -0.5, -0.49, 0.0, 0.33, 0.5, 1.5, 2.5, 2.51, 3.7]
    # np.round is half-to-even: -0.5 -> -0, 0.5 -> 0, 1.5 -> 2, 2.5 -> 2; then clip to [-3, 3] and + 3.
    expected = [0, 0, 0, 3, 3, 3, 3, 3, 5, 5, 6, 6]
    assert label7(np.array(values)).tolist() == expected
    assert label7(torch.tensor(values)).tolist() == expected
    assert label7(-3.4) == 0 and label7(-0.5) == 3 and isinstance(label7(1.2), int)
