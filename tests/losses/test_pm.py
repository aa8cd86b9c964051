"""The embedding objectives (avkd/losses/embedding.py): Perfect Match and SyncNet's contrastive loss, against
numbers computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from avkd.core.errors import UsageError
from avkd.losses import build_loss
from avkd.losses.embedding import contrastive_loss, perfect_match_loss
from avkd.models import Tapped


def tapped(v: torch.Tensor, a: torch.Tensor) -> Tapped:
    return Tapped(-torch.linalg.vector_norm(v - a, dim=1), {"video": v, "audio": a})


def test_pm_by_hand() -> None:
    # Clip 0 has two steps: v0 = (1, 0), v1 = (0, 1); a0 = (1, 0), a1 = (1, 1). Clip 1 has one step.
    # cos: v0·a0 = 1, v0·a1 = 1/√2, v1·a0 = 0, v1·a1 = 1/√2. With w = 10, b = −5 the rows' logits are
    # [5, 10/√2 − 5] (label 0) and [−5, 10/√2 − 5] (label 1), so the CEs are log(1 + e^(10/√2 − 10)) and
    # log(1 + e^(−10/√2)). A one-step clip has only its own audio step: loss 0. Mean per clip, then over clips.
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 5.0]])
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [-3.0, 1.0]])
    clip0 = (math.log1p(math.exp(10 / math.sqrt(2) - 10)) + math.log1p(math.exp(-10 / math.sqrt(2)))) / 2
    loss = build_loss("pm")
    terms = loss(tapped(v, a), Tapped(torch.zeros(3), {}), torch.tensor([0, 0, 1]))
    assert list(terms) == ["pm"]
    assert terms["pm"].item() == pytest.approx((clip0 + 0.0) / 2, rel=1e-6)
    # Clip 0 alone: the other clip's audio does not enter its softmax.
    alone = perfect_match_loss(v[:2], a[:2], torch.tensor([0, 0]), torch.tensor(10.0), torch.tensor(-5.0))
    assert alone.item() == pytest.approx(clip0, rel=1e-6)
    # The same windows as one 3-step clip: now each row also competes with a2.
    one_clip = perfect_match_loss(v, a, torch.tensor([7, 7, 7]), torch.tensor(10.0), torch.tensor(-5.0))
    assert one_clip.item() != pytest.approx(alone.item(), rel=1e-3)


def test_pm_scale_is_learnable_and_the_shift_is_inert() -> None:
    torch.manual_seed(0)
    v = torch.randn(6, 4, requires_grad=True)
    a = torch.randn(6, 4)
    loss = build_loss("pm", init_w=3.0, init_b=1.0)
    assert (loss.w.item(), loss.b.item()) == (3.0, 1.0)
    assert (build_loss("pm").w.item(), build_loss("pm").b.item()) == (
        10.0,
        -5.0,
    )  # syncnet_trainer's LossScale
    clips = torch.tensor([0, 0, 0, 1, 1, 1])
    out = loss(tapped(v, a), Tapped(torch.zeros(6), {}), clips)["pm"]
    out.backward()
    assert v.grad is not None and v.grad.abs().sum() > 0
    assert loss.w.grad is not None and loss.w.grad.item() != 0
    assert loss.b.grad is not None and loss.b.grad.item() == pytest.approx(0.0, abs=1e-6)
    # Perfect alignment (a = v, orthogonal steps) beats a shuffled pairing.
    eye = torch.eye(3)
    aligned = perfect_match_loss(eye, eye, torch.zeros(3), torch.tensor(10.0), torch.tensor(-5.0))
    shuffled = perfect_match_loss(eye, eye[[1, 2, 0]], torch.zeros(3), torch.tensor(10.0), torch.tensor(-5.0))
    assert aligned.item() == pytest.approx(math.log1p(2 * math.exp(-10)), rel=1e-3)  # float32 rounding
    assert shuffled.item() > 9


def test_contrastive_by_hand() -> None:
    # Distances 5, 5, 10, 50 (3-4-5 triangles); in sync, out of sync, out, out; margin 20:
    # 5² + (20−5)² + (20−10)² + 0 (beyond the margin) = 25 + 225 + 100 = 350, over 2N = 8.
    v = torch.tensor([[3.0, 4.0], [3.0, 4.0], [6.0, 8.0], [30.0, 40.0]])
    a = torch.zeros(4, 2)
    y = torch.tensor([1.0, 0.0, 0.0, 0.0])
    terms = build_loss("contrastive")(tapped(v, a), Tapped(torch.zeros(4), {}), y)
    assert list(terms) == ["contrastive"]
    assert terms["contrastive"].item() == pytest.approx(350 / 8, rel=1e-5)
    assert contrastive_loss(v, a, y, margin=6.0).item() == pytest.approx((25 + 1) / 8, rel=1e-5)


def test_bad_labels_and_taps_are_refused() -> None:
    v, a = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"labels must be \(4,\)"):
        build_loss("pm")(tapped(v, a), Tapped(torch.zeros(4), {}), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="needs tap 'video'"):
        build_loss("contrastive")(Tapped(torch.zeros(4), {}), Tapped(torch.zeros(4), {}), torch.ones(4))
    with pytest.raises(UsageError, match="margin"):
        build_loss("contrastive", margin=0)
