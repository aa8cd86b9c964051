"""Linear teachers and students of the MFH synthetic study, many problems at once (docs/mfh.md §3).

Every model is one linear layer to 2 classes (official ``LinearClassifier``). A batch of independent problems
(runs, settings, channel choices) is trained together: weights ``w`` (B, d, C), biases ``b`` (B, C), inputs
``x`` (B, N, d), labels ``y`` (B, N); one full-batch step is a handful of batched matmuls over the problem axis
instead of one small autograd graph per problem. The gradients are written out (softmax cross-entropy and KL
with respect to the logits are ``q − target``), which is exact for these losses and saves autograd's overhead,
which dominates at these sizes; :mod:`avkd.mfh.naive` computes the same with ``torch.nn`` and autograd, one
problem at a time, and the tests hold the two equal.

The objective of a KD student is ``ce_weight · CE(s(x^b), y) + kd_weight · KL(softmax(t(x^a)) ‖ softmax(s(x^b)))``
at temperature 1 (docs/mfh.md §3). The KL is averaged over samples (``batchmean``, the KL divergence per sample).
The official code uses ``torch.nn.KLDivLoss()``, whose default ``mean`` also divides by the 2 classes, so its KD
term weighs half as much as written; ``reduction="mean"`` reproduces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "KL_REDUCTIONS",
    "Reduction",
    "accuracy",
    "draw_permutations",
    "fit",
    "fit_joint",
    "init_linear",
    "kd_loss",
    "logits",
    "min_max",
    "objective",
    "salience",
    "top_channels",
]

Reduction = Literal["batchmean", "mean"]
KL_REDUCTIONS: tuple[str, ...] = ("batchmean", "mean")


def init_linear(rng: np.random.Generator, d: int, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """One problem's initial weights (d, C) and biases (C,), uniform in ±1/√d: the distribution of
    ``torch.nn.Linear``'s default initialisation (official models are ``nn.Linear``s), drawn from ``rng`` so
    that runs are reproducible whatever torch's global seed."""
    bound = 1.0 / np.sqrt(d)
    w = rng.uniform(-bound, bound, (d, classes)).astype(np.float32)
    b = rng.uniform(-bound, bound, classes).astype(np.float32)
    return w, b


def logits(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """(B, N, C) logits of the problems' linear models."""
    return torch.baddbmm(b.unsqueeze(1), x, w)


def accuracy(x: Tensor, y: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """(B,) accuracy in percent; a tie goes to class 0 (the first maximum), as ``torch.max`` in the official
    ``evaluate``."""
    predicted = logits(x, w, b).argmax(dim=-1)
    return (predicted == y).to(torch.float64).mean(dim=-1) * 100.0


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, reduction: Reduction = "batchmean") -> Tensor:
    """KL(softmax(teacher) ‖ softmax(student)) at temperature 1 for each problem: logits (..., N, C) -> (...).

    ``batchmean`` sums over classes and averages over the N samples (the KL divergence per sample);
    ``mean`` also divides by C, like ``torch.nn.KLDivLoss()``'s default, which the official code uses
    (docs/mfh.md §5): with C = 2 it is half the KL.
    """
    if reduction not in KL_REDUCTIONS:
        raise ValueError(f"kl reduction {reduction!r} is not one of {', '.join(KL_REDUCTIONS)}")
    p = torch.softmax(teacher_logits, dim=-1)
    pointwise = torch.xlogy(p, p) - p * torch.log_softmax(student_logits, dim=-1)  # 0 · log 0 = 0
    n, classes = student_logits.shape[-2:]
    return pointwise.sum(dim=(-2, -1)) / (n * (classes if reduction == "mean" else 1))


def objective(
    x: Tensor,
    y: Tensor,
    w: Tensor,
    b: Tensor,
    teacher_logits: Tensor | None = None,
    ce_weight: float = 1.0,
    kd_weight: float = 1.0,
    reduction: Reduction = "batchmean",
) -> Tensor:
    """(B,) training objective of each problem: ``ce_weight · CE`` (+ ``kd_weight · KL`` with a teacher)."""
    z = logits(x, w, b)
    ce = torch.nn.functional.cross_entropy(z.transpose(1, 2), y, reduction="none").mean(dim=-1)
    loss = ce_weight * ce
    if teacher_logits is not None:
        loss = loss + kd_weight * kd_loss(z, teacher_logits, reduction)
    return loss


def fit(
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
    """Full-batch SGD (no momentum) on :func:`objective` from ``(w0, b0)``; returns the final (w, b).

    The official recipe is lr 0.1, 1000 epochs (docs/mfh.md §3). With a teacher, the gradient with respect to the
    logits is ``(ce_weight · (q − onehot) + k · (q − p_t)) / N`` with ``k = kd_weight`` (batchmean) or
    ``kd_weight / C`` (mean), ``q`` and ``p_t`` the student's and teacher's softmax.
    """
    n, classes = x.shape[1], w0.shape[2]
    onehot = torch.nn.functional.one_hot(y, classes).to(x.dtype)
    if teacher_logits is None:
        target, total = ce_weight * onehot, ce_weight
    else:
        if reduction not in KL_REDUCTIONS:
            raise ValueError(f"kl reduction {reduction!r} is not one of {', '.join(KL_REDUCTIONS)}")
        k = kd_weight / (classes if reduction == "mean" else 1)
        target, total = ce_weight * onehot + k * torch.softmax(teacher_logits, dim=-1), ce_weight + k
    # Class-major inside the loop: logits (B, C, N) = w^T (B, C, d) @ x^T (B, d, N), gradient (B, C, d) =
    # g (B, C, N) @ x (B, N, d). With C = 2 these are 5-7 times faster on the CPU than the sample-major
    # products (B, N, d) @ (B, d, C), whose output is two columns wide.
    target = (target / n).transpose(1, 2).contiguous()  # folded in once: the step is (total/N)·q − target
    x = x.contiguous()
    xt = x.transpose(1, 2).contiguous()
    wt, bt = w0.transpose(1, 2).contiguous(), b0.unsqueeze(2).clone()
    scale = total / n
    for _ in range(epochs):
        g = torch.softmax(torch.baddbmm(bt, wt, xt), dim=1).mul_(scale).sub_(target)  # dL/dlogits, (B, C, N)
        wt.sub_(torch.bmm(g, x), alpha=lr)
        bt.sub_(g.sum(dim=2, keepdim=True), alpha=lr)
    return wt.transpose(1, 2).contiguous(), bt.squeeze(2)


def fit_joint(
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
    """Algorithm 1 step 1 (docs/mfh.md §4): train teacher t(x^a) and student s(x^b) together on
    ``CE(t, y) + CE(s, y) + MSE(t, s)`` (MSE of the logits, averaged over N·C), full-batch SGD with momentum
    (official lr 0.01, momentum 0.9, 1000 epochs). Returns (wa, ba, wb, bb).

    Momentum as ``torch.optim.SGD``: ``buf ← momentum · buf + grad`` (``buf = grad`` at the first step),
    ``p ← p − lr · buf``.
    """
    n, classes = xa.shape[1], init_a[0].shape[2]
    onehot = (torch.nn.functional.one_hot(y, classes).to(xa.dtype) / n).transpose(1, 2).contiguous()
    xa, xb = xa.contiguous(), xb.contiguous()
    xat, xbt = xa.transpose(1, 2).contiguous(), xb.transpose(1, 2).contiguous()
    # Class-major, as in fit: weights (B, C, d), biases (B, C, 1), logits and gradients (B, C, N).
    params = [
        init_a[0].transpose(1, 2).contiguous(),
        init_a[1].unsqueeze(2).clone(),
        init_b[0].transpose(1, 2).contiguous(),
        init_b[1].unsqueeze(2).clone(),
    ]
    bufs: list[Tensor] | None = None
    pull = 2.0 / (n * classes)  # d MSE / d logits = 2 (t − s) / (N·C)
    for _ in range(epochs):
        wa, ba, wb, bb = params
        za, zb = torch.baddbmm(ba, wa, xat), torch.baddbmm(bb, wb, xbt)
        gap = (za - zb).mul_(pull)
        ga = torch.softmax(za, dim=1).div_(n).sub_(onehot).add_(gap)
        gb = torch.softmax(zb, dim=1).div_(n).sub_(onehot).sub_(gap)
        grads = [
            torch.bmm(ga, xa),
            ga.sum(dim=2, keepdim=True),
            torch.bmm(gb, xb),
            gb.sum(dim=2, keepdim=True),
        ]
        if bufs is None:
            bufs = grads
        else:
            for buf, grad in zip(bufs, grads, strict=True):
                buf.mul_(momentum).add_(grad)
        for p, buf in zip(params, bufs, strict=True):
            p.sub_(buf, alpha=lr)
    wa, ba, wb, bb = params
    return wa.transpose(1, 2).contiguous(), ba.squeeze(2), wb.transpose(1, 2).contiguous(), bb.squeeze(2)


def draw_permutations(seed: Sequence[int], repeats: int, channels: int, n: int) -> Tensor:
    """(repeats, channels, n) int64: an independent permutation of the n samples for every repeat and channel,
    from ``numpy.random.default_rng(seed)`` (both implementations draw them here, so they permute alike)."""
    rng = np.random.default_rng(list(seed))
    order = np.tile(np.arange(n), (repeats * channels, 1))
    return torch.from_numpy(rng.permuted(order, axis=1).reshape(repeats, channels, n))


def salience(
    x_perm: Tensor, w_perm: Tensor, fixed_logits: Tensor, own_logits: Tensor, perms: Tensor
) -> Tensor:
    """Algorithm 1 step 2 for one problem and one side (docs/mfh.md §4): the raw salience of every input channel
    k of the side whose input ``x_perm`` (N, d) and weights ``w_perm`` (d, C) are permuted, averaged over the
    repeats: ``mean_j MSE(own logits with column k permuted by perms[j, k], fixed_logits)`` -> (d,).

    The model is linear, so permuting column k moves its logits by ``(x[π, k] − x[:, k]) ⊗ w[k]``: all
    repeats × channels permuted forwards are one broadcast, never ``d`` copies of the input.
    """
    cols = x_perm.t()  # (d, N)
    moved = torch.gather(cols.expand(perms.shape[0], -1, -1), 2, perms) - cols  # (M, d, N)
    gap = own_logits - fixed_logits  # (N, C)
    shifted = gap + moved.unsqueeze(-1) * w_perm.unsqueeze(0).unsqueeze(2)  # (M, d, N, C)
    return shifted.square().mean(dim=(-2, -1)).mean(dim=0)


def min_max(values: Tensor) -> Tensor:
    """Rescale the last axis to [0, 1] (Algorithm 1 step 3); a constant vector becomes zeros, not NaN (the
    official helper divides by zero there)."""
    low = values.amin(dim=-1, keepdim=True)
    span = values.amax(dim=-1, keepdim=True) - low
    return torch.where(span > 0, (values - low) / span.clamp_min(torch.finfo(values.dtype).tiny), 0.0)


def top_channels(salience: Tensor, count: int) -> Tensor:
    """Algorithm 1 step 4: the ``count`` most salient channels of each problem, (B, d) -> (B, count), in channel
    order (a stable sort, so a tie goes to the lower channel)."""
    top = torch.sort(salience, dim=-1, descending=True, stable=True).indices[:, :count]
    return top.sort(dim=-1).values
