"""Batched linear models of the MFH study (avkd.mfh.linear, docs/mfh.md §3-§4): the KD loss against numbers
computed by hand, the written-out gradients against autograd, training lowers the loss, Algorithm 1's salience."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avkd.mfh.gauss import make_draws, table2_layout
from avkd.mfh.linear import (
    accuracy,
    draw_permutations,
    fit,
    fit_joint,
    init_linear,
    kd_loss,
    logits,
    min_max,
    objective,
    salience,
    top_channels,
)

# Two samples. 1: teacher (0, 0) -> p = (1/2, 1/2), student (ln 3, 0) -> q = (3/4, 1/4).
# 2: teacher (ln 4, 0) -> p = (4/5, 1/5), student (0, 0) -> q = (1/2, 1/2).
TEACHER = torch.tensor([[[0.0, 0.0], [math.log(4.0), 0.0]]])
STUDENT = torch.tensor([[[math.log(3.0), 0.0], [0.0, 0.0]]])
KL_1 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)  # = ½ ln(4/3) = 0.143841
KL_2 = 0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5)  # = 0.192745


def test_kd_loss_by_hand() -> None:
    assert math.isclose(KL_1, 0.143841, abs_tol=1e-6) and math.isclose(KL_2, 0.192745, abs_tol=1e-6)
    # batchmean: the KL per sample, averaged over the 2 samples.
    assert kd_loss(STUDENT, TEACHER).item() == pytest.approx((KL_1 + KL_2) / 2, abs=1e-6)
    assert kd_loss(STUDENT, TEACHER).item() == pytest.approx(0.168293, abs=1e-6)
    # mean (the official nn.KLDivLoss() default): also divided by the 2 classes, half the KL.
    assert kd_loss(STUDENT, TEACHER, "mean").item() == pytest.approx(0.0841465, abs=1e-6)
    # ... which is what torch's own KLDivLoss gives under each name.
    log_q, p = torch.log_softmax(STUDENT[0], dim=1), torch.softmax(TEACHER[0], dim=1)
    for reduction in ("batchmean", "mean"):
        with pytest.warns(UserWarning) if reduction == "mean" else _nothing():
            expected = torch.nn.KLDivLoss(reduction=reduction)(log_q, p).item()
        assert kd_loss(STUDENT, TEACHER, reduction).item() == pytest.approx(expected, abs=1e-7)
    assert kd_loss(TEACHER, TEACHER).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="sum"):
        kd_loss(STUDENT, TEACHER, "sum")  # type: ignore[arg-type]


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _problems(b: int = 3, n: int = 40, d: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal((b, n, d)).astype(np.float32))
    y = (x[..., 0] + 0.5 * x[..., 1] > 0).long()  # learnable by a linear model
    inits = [init_linear(rng, d) for _ in range(b)]
    w0 = torch.from_numpy(np.stack([w for w, _ in inits]))
    b0 = torch.from_numpy(np.stack([bias for _, bias in inits]))
    teacher = torch.from_numpy(rng.standard_normal((b, n, 2)).astype(np.float32))
    return x, y, w0, b0, teacher


def test_init_is_nn_linear_s_distribution() -> None:
    w, b = init_linear(np.random.default_rng(0), 25)
    assert w.shape == (25, 2) and b.shape == (2,) and w.dtype == np.float32
    assert np.abs(w).max() <= 1 / 5 and np.abs(b).max() <= 1 / 5  # U(±1/√25), as nn.Linear(25, 2)


@pytest.mark.parametrize("reduction", ["batchmean", "mean"])
@pytest.mark.parametrize("with_teacher", [False, True])
def test_one_step_is_sgd_on_the_objective(reduction: str, with_teacher: bool) -> None:
    x, y, w0, b0, teacher = _problems()
    tl = teacher if with_teacher else None
    w1, b1 = fit(
        x, y, w0, b0, epochs=1, lr=0.1, teacher_logits=tl, ce_weight=0.7, kd_weight=1.3, reduction=reduction
    )
    w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    objective(x, y, w, b, tl, ce_weight=0.7, kd_weight=1.3, reduction=reduction).sum().backward()
    torch.testing.assert_close(w1, w0 - 0.1 * w.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(b1, b0 - 0.1 * b.grad, atol=1e-6, rtol=1e-5)


def test_mean_reduction_is_half_the_kd_weight() -> None:
    # The official KLDivLoss() weighs the KD term by 1/C = 1/2: "mean" with weight 1 is "batchmean" with 1/2.
    x, y, w0, b0, teacher = _problems()
    mean = fit(x, y, w0, b0, epochs=20, lr=0.1, teacher_logits=teacher, reduction="mean")
    half = fit(x, y, w0, b0, epochs=20, lr=0.1, teacher_logits=teacher, kd_weight=0.5)
    full = fit(x, y, w0, b0, epochs=20, lr=0.1, teacher_logits=teacher)
    torch.testing.assert_close(mean, half, atol=1e-6, rtol=1e-5)
    assert (mean[0] - full[0]).abs().max() > 1e-3


def test_training_lowers_the_loss_and_fits_the_training_set() -> None:
    x, y, w0, b0, teacher = _problems(n=80)
    for tl in (None, teacher):
        before = objective(x, y, w0, b0, tl)
        w, b = fit(x, y, w0, b0, epochs=300, lr=0.1, teacher_logits=tl)
        after = objective(x, y, w, b, tl)
        assert (after < 0.7 * before).all(), (before, after)
    w, b = fit(x, y, w0, b0, epochs=300, lr=0.1)
    assert (accuracy(x, y, w, b) > accuracy(x, y, w0, b0)).all()


def test_joint_training_steps_are_momentum_sgd_on_ce_ce_mse() -> None:
    xa, y, wa0, ba0, _ = _problems(d=6, seed=1)
    xb, _, wb0, bb0, _ = _problems(d=4, seed=2)
    params = [t.clone().requires_grad_() for t in (wa0, ba0, wb0, bb0)]
    optimizer = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    for _ in range(3):
        za, zb = logits(xa, *params[:2]), logits(xb, *params[2:])
        ce = torch.nn.functional.cross_entropy
        # Per problem: CE_t + CE_s + MSE(t, s) (MSE over N·C); problems are independent, so sum them.
        loss = sum(
            ce(za[i], y[i]) + ce(zb[i], y[i]) + torch.nn.functional.mse_loss(za[i], zb[i]) for i in range(3)
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ours = fit_joint(xa, xb, y, (wa0, ba0), (wb0, bb0), epochs=3, lr=0.05, momentum=0.9)
    for mine, theirs in zip(ours, params, strict=True):
        torch.testing.assert_close(mine, theirs.detach(), atol=1e-6, rtol=1e-5)


def test_salience_is_the_mse_after_permuting_each_column() -> None:
    x, _, w0, b0, _ = _problems(b=1, n=12, d=3)
    fixed = torch.randn(12, 2)
    perms = draw_permutations((0, 1), 4, 3, 12)
    assert perms.shape == (4, 3, 12) and all(
        sorted(p.tolist()) == list(range(12)) for p in perms.reshape(-1, 12)
    )
    own = logits(x, w0, b0)[0]
    scores = salience(x[0], w0[0], fixed, own, perms)
    by_hand = torch.zeros(3)
    for k in range(3):
        for j in range(4):
            shuffled = x[0].clone()
            shuffled[:, k] = x[0][perms[j, k], k]
            by_hand[k] += ((shuffled @ w0[0] + b0[0] - fixed) ** 2).mean() / 4
    torch.testing.assert_close(scores, by_hand, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(
        draw_permutations((0, 1), 4, 3, 12), perms
    )  # the same seed, the same permutations


def test_min_max() -> None:
    out = min_max(torch.tensor([[2.0, 4.0, 3.0], [1.0, 1.0, 1.0]]))
    torch.testing.assert_close(
        out, torch.tensor([[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]])
    )  # constant: zeros, not NaN


def test_algorithm_1_ranks_the_shared_channels_first() -> None:
    # The Table 2 data at c = 5: x^a's channels 0..4 and x^b's 0..4 carry the shared latents.
    layout = table2_layout(5)
    rng = np.random.default_rng(0)
    draws = [make_draws(rng, 200, [layout], None)[0] for _ in range(2)]
    xa = torch.from_numpy(np.stack([d.xa for d in draws]))
    xb = torch.from_numpy(np.stack([d.xb for d in draws]))
    y = torch.from_numpy(np.stack([d.y for d in draws]))
    init = [init_linear(rng, 50) for _ in range(4)]
    ia = (
        torch.from_numpy(np.stack([init[0][0], init[1][0]])),
        torch.from_numpy(np.stack([init[0][1], init[1][1]])),
    )
    ib = (
        torch.from_numpy(np.stack([init[2][0], init[3][0]])),
        torch.from_numpy(np.stack([init[2][1], init[3][1]])),
    )
    wa, ba, wb, bb = fit_joint(xa, xb, y, ia, ib, epochs=1000, lr=0.01, momentum=0.9)
    za, zb = logits(xa, wa, ba), logits(xb, wb, bb)
    for run in range(2):
        perms = draw_permutations((run, 0), 20, 50, 200)
        side_a = min_max(salience(xa[run], wa[run], zb[run], za[run], perms))
        side_b = min_max(salience(xb[run], wb[run], za[run], zb[run], perms))
        for side in (side_a, side_b):
            assert side[:5].min() > side[5:].max(), side  # every shared channel above every other
            assert side.max() == 1.0 and side.min() == 0.0
        # x^a's own decisive channels (5..14) matter to the teacher but not to teacher-student agreement as
        # much as the shared ones; pure noise (15..49) matters least.
        assert side_a[5:15].mean() > side_a[15:].mean()
    assert top_channels(torch.stack([side_a, side_b]), 5).tolist() == [list(range(5))] * 2
