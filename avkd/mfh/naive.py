"""The straightforward way to compute what :mod:`avkd.mfh.linear` computes: one problem at a time, each a
``torch.nn.Linear`` trained with autograd and ``torch.optim.SGD``, Algorithm 1's salience by permuting a copy of
the input for every repeat and channel (docs/mfh.md §3-§4). It is how the official ``gauss`` scripts work (less
their evaluation at every epoch).

It takes and returns the batched layout of :mod:`avkd.mfh.linear` (problems on the first axis) and loops over it,
so the experiments run unchanged on either (:class:`NaiveEngine`). It is the tests' oracle for the vectorised
code and the baseline of ``benchmarks/mfh.py``; the simulation itself never uses it.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor, nn

from avkd.mfh.linear import KL_REDUCTIONS, Reduction

__all__ = ["NaiveEngine", "fit_joint_naive", "fit_naive", "salience_naive"]


def _linear(w: Tensor, b: Tensor) -> nn.Linear:
    """An ``nn.Linear`` holding (w (d, C), b (C,)); nn.Linear stores the weight transposed, (C, d)."""
    layer = nn.Linear(w.shape[0], w.shape[1])
    with torch.no_grad():
        layer.weight.copy_(w.t())
        layer.bias.copy_(b)
    return layer


def _weights(layer: nn.Linear) -> tuple[Tensor, Tensor]:
    return layer.weight.detach().t().clone(), layer.bias.detach().clone()


def fit_naive(
    x: Tensor,
    y: Tensor,
    w0: Tensor,
    b0: Tensor,
    *,
    epochs: int,
    lr: float,
    teacher_logits: Tensor | None = None,
    ce_weight: float = 1.0,
    kd_weight: float = 1.0,
    reduction: Reduction = "batchmean",
) -> tuple[Tensor, Tensor]:
    """:func:`avkd.mfh.linear.fit`, problem by problem, with ``nn.CrossEntropyLoss`` and
    ``nn.KLDivLoss(reduction)`` on ``log_softmax(student)`` against ``softmax(teacher)``."""
    if reduction not in KL_REDUCTIONS:
        raise ValueError(f"kl reduction {reduction!r} is not one of {', '.join(KL_REDUCTIONS)}")
    ws, bs = [], []
    for i in range(x.shape[0]):
        model = _linear(w0[i], b0[i])
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        ce = nn.CrossEntropyLoss()
        kl = nn.KLDivLoss(reduction=reduction)
        target = None if teacher_logits is None else torch.softmax(teacher_logits[i], dim=1)
        for _ in range(epochs):
            out = model(x[i])
            loss = ce_weight * ce(out, y[i])
            if target is not None:
                with (
                    warnings.catch_warnings()
                ):  # torch warns that "mean" is not the KL: that is its point here
                    warnings.simplefilter("ignore", UserWarning)
                    loss = loss + kd_weight * kl(torch.log_softmax(out, dim=1), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        w, b = _weights(model)
        ws.append(w)
        bs.append(b)
    return torch.stack(ws), torch.stack(bs)


def fit_joint_naive(
    xa: Tensor,
    xb: Tensor,
    y: Tensor,
    init_a: tuple[Tensor, Tensor],
    init_b: tuple[Tensor, Tensor],
    *,
    epochs: int,
    lr: float,
    momentum: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """:func:`avkd.mfh.linear.fit_joint`, problem by problem: CE + CE + ``nn.MSELoss`` of the logits, one
    ``torch.optim.SGD(momentum)`` over both models."""
    out: list[list[Tensor]] = [[], [], [], []]
    for i in range(xa.shape[0]):
        teacher, student = _linear(init_a[0][i], init_a[1][i]), _linear(init_b[0][i], init_b[1][i])
        params = list(teacher.parameters()) + list(student.parameters())
        optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum)
        ce, mse = nn.CrossEntropyLoss(), nn.MSELoss()
        for _ in range(epochs):
            ta, sb = teacher(xa[i]), student(xb[i])
            loss = ce(ta, y[i]) + ce(sb, y[i]) + mse(ta, sb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        for slot, value in zip(out, (*_weights(teacher), *_weights(student)), strict=True):
            slot.append(value)
    wa, ba, wb, bb = (torch.stack(v) for v in out)
    return wa, ba, wb, bb


@torch.no_grad()
def salience_naive(
    x_perm: Tensor, w_perm: Tensor, b_perm: Tensor, fixed_logits: Tensor, perms: Tensor
) -> Tensor:
    """:func:`avkd.mfh.linear.salience` for one problem and side, the official way: for every repeat j and
    channel k, copy the input, permute its column k, run the model, take the MSE against ``fixed_logits``."""
    model = _linear(w_perm, b_perm)
    mse = nn.MSELoss()
    repeats, channels, _ = perms.shape
    scores = torch.zeros(repeats, channels, dtype=torch.float64)
    for j in range(repeats):
        for k in range(channels):
            shuffled = x_perm.clone()
            shuffled[:, k] = x_perm[perms[j, k], k]
            scores[j, k] = mse(model(shuffled), fixed_logits).item()
    return scores.mean(dim=0).to(x_perm.dtype)


class NaiveEngine:
    """The experiments' engine (:class:`avkd.mfh.simulate.Engine`) made of the functions above: pass it as
    ``engine=`` to run any experiment the straightforward way."""

    def fit(self, x: Tensor, y: Tensor, w0: Tensor, b0: Tensor, **options: Any) -> tuple[Tensor, Tensor]:
        return fit_naive(x, y, w0, b0, **options)

    def fit_joint(
        self,
        xa: Tensor,
        xb: Tensor,
        y: Tensor,
        init_a: tuple[Tensor, Tensor],
        init_b: tuple[Tensor, Tensor],
        **options: Any,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return fit_joint_naive(xa, xb, y, init_a, init_b, **options)

    def side_salience(
        self, x: Tensor, w: Tensor, b: Tensor, own_logits: Tensor, fixed_logits: Tensor, perms: Tensor
    ) -> Tensor:
        return salience_naive(x, w, b, fixed_logits, perms)
