"""The loss contract's helpers (``avkd.losses.base``); the contract itself is tests/losses/test_contract.py."""

from __future__ import annotations

import torch

from avkd.losses.base import teacher_tensor


def test_teacher_tensor() -> None:
    with torch.inference_mode():
        x = torch.ones(2)
    y = teacher_tensor(x)
    assert x.is_inference() and not y.is_inference()
    z = torch.ones(2, requires_grad=True)
    assert not teacher_tensor(z).requires_grad
    plain = torch.ones(2)
    assert teacher_tensor(plain).data_ptr() == plain.data_ptr()  # no copy when not needed
