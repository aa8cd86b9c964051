"""AVSiam's pre-training losses (avkd/losses/avsiam.py) against numbers computed by hand, on the toy model, and
under two gloo processes (the contrastive features gathered with gradient)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from avkd.core.errors import UsageError
from avkd.losses import list_losses
from avkd.losses.avsiam import (
    TEMPERATURE,
    ContrastiveLoss,
    ReconstructionLoss,
    build_pretrain_loss,
    info_nce,
    list_pretrain_losses,
    masked_mse,
    matching_accuracy,
)
from avkd.models import build_model
from avkd.models.avsiam import Reconstruction
from avkd.models.distributed import init_world
from tests.ddp import free_port


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# ------------------------------------------------------------------------------------------- InfoNCE


def test_info_nce_by_hand() -> None:
    """a = (1, 0), (0, 1); v = (1, 0), (1, 1)/√2 after normalisation; S = â·v̂ᵀ/0.05 = [[20, c], [0, c]] with
    c = 20/√2. Rows (audio → video): −log softmax picks the diagonal; columns (video → audio) likewise."""
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[3.0, 0.0], [2.0, 2.0]])  # scales do not matter: the features are L2-normalised
    c = 20 / math.sqrt(2)
    rows = softplus(c - 20) + softplus(0 - c)  # row 0: target 20 against c; row 1: target c against 0
    cols = softplus(0 - 20) + math.log(2)  # column 0: target 20 against 0; column 1: c against c
    expected = (rows / 2 + cols / 2) / 2
    assert TEMPERATURE == 0.05
    got = info_nce(a, v)
    assert math.isclose(float(got), expected, rel_tol=1e-6)
    # The released form: the mean of −diag(log_softmax(S, dim=0)) over S and Sᵀ.
    s = torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(v, dim=-1).t() / 0.05
    released = -(s.log_softmax(0).diag().mean() + s.t().log_softmax(0).diag().mean()) / 2
    torch.testing.assert_close(got, released)
    # Symmetric in its arguments; another temperature gives another number.
    torch.testing.assert_close(info_nce(v, a), got)
    assert not math.isclose(float(info_nce(a, v, temperature=0.5)), expected, rel_tol=1e-3)


def test_matching_accuracy_by_hand() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    v = torch.tensor([[1.0, 0.1], [0.0, 1.0], [0.2, 1.0]])
    # Rows: 0 → 0 ✓, 1 → 1 or 2 (cos 1 vs 0.98): 1 ✓, 2 → 2? cos(a2, v) = (0.77, 0.71, 0.83): 2 ✓ → 3/3.
    # Columns: v0 → a0 (0.995 vs 0.77) ✓, v1 → a1 ✓, v2 → a1 (0.98 vs 0.83) ✗ → 2/3.
    assert math.isclose(float(matching_accuracy(a, v)), (1 + 2 / 3) / 2, rel_tol=1e-6)


def test_contrastive_loss_module_term_and_gradient() -> None:
    loss = build_pretrain_loss("avsiam_contrastive")
    assert isinstance(loss, ContrastiveLoss) and loss.term_names() == ["contrastive"]
    g = torch.Generator().manual_seed(0)
    fa = torch.randn(6, 8, generator=g, requires_grad=True)
    fv = torch.randn(6, 8, generator=g, requires_grad=True)
    terms = loss(fa, fv)
    assert list(terms) == ["contrastive"] and terms["contrastive"].dtype == torch.float32
    torch.testing.assert_close(terms["contrastive"], info_nce(fa, fv))
    terms["contrastive"].backward()
    assert fa.grad is not None and fa.grad.abs().sum() > 0
    # Matched pairs score lower than shuffled ones.
    assert info_nce(fa, fa) < info_nce(fa, fa.roll(1, dims=0))
    with pytest.raises(ValueError, match="temperature"):
        ContrastiveLoss(temperature=0.0)


def test_contrastive_loss_runs_in_float32_under_autocast() -> None:
    fa, fv = torch.randn(4, 8), torch.randn(4, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = ContrastiveLoss()(fa.bfloat16(), fv.bfloat16())
    assert terms["contrastive"].dtype == torch.float32
    torch.testing.assert_close(terms["contrastive"], info_nce(fa.bfloat16().float(), fv.bfloat16().float()))


# -------------------------------------------------------------------------------------- reconstruction


def test_masked_mse_by_hand() -> None:
    pred = torch.tensor([[[1.0, 3.0], [9.0, 9.0], [2.0, 2.0]]])
    target = torch.zeros(1, 3, 2)
    mask = torch.tensor([[1.0, 0.0, 1.0]])  # patch 1 is visible: not counted
    assert float(masked_mse(pred, target, mask)) == pytest.approx((5.0 + 4.0) / 2)
    # norm_pix: target patch (1, 3) → mean 2, unbiased variance 2 → (±1)/√(2 + 1e-6); prediction 0 there.
    t = torch.tensor([[[1.0, 3.0]]])
    z = 1 / math.sqrt(2 + 1e-6)
    assert float(masked_mse(torch.zeros(1, 1, 2), t, torch.ones(1, 1), norm_pix=True)) == pytest.approx(z * z)
    assert float(masked_mse(torch.zeros(1, 1, 2), t, torch.ones(1, 1))) == pytest.approx(5.0)


def test_reconstruction_loss_on_the_toy_model() -> None:
    torch.manual_seed(0)
    model = build_model("avsiam", size="toy", num_classes=3).train()
    g = torch.Generator().manual_seed(1)
    audio, video = torch.randn(2, 1, 32, 64, generator=g), torch.randn(2, 3, 32, 32, generator=g)
    rec = model.reconstruct(audio, video, generator=torch.Generator().manual_seed(2))
    loss = build_pretrain_loss("avsiam_reconstruction")
    assert isinstance(loss, ReconstructionLoss) and loss.term_names() == ["rec/audio", "rec/video"]
    terms = loss(rec)
    assert list(terms) == loss.term_names()
    torch.testing.assert_close(terms["rec/video"], masked_mse(rec.pred_v, rec.target_v, rec.mask_v))
    sum(terms.values()).backward()
    assert (
        model.decoder.pred_v.weight.grad.abs().sum() > 0 and model.blocks[0].attn.qkv.weight.grad is not None
    )
    # Only removed patches count: changing the prediction of a visible patch changes nothing.
    visible = int(torch.nonzero(rec.mask_a[0] == 0)[0])
    pred_a = rec.pred_a.detach().clone()
    pred_a[0, visible] += 100.0
    moved = Reconstruction(pred_a, rec.pred_v.detach(), *rec[2:])
    assert torch.equal(
        loss(moved)["rec/audio"], loss(Reconstruction(rec.pred_a.detach(), *rec[1:]))["rec/audio"]
    )


def test_pretraining_losses_have_their_own_registry() -> None:
    assert list_pretrain_losses() == ["avsiam_contrastive", "avsiam_reconstruction"]
    assert not set(list_pretrain_losses()) & set(list_losses())  # not distillation losses
    with pytest.raises(UsageError, match="bogus"):
        build_pretrain_loss("avsiam_contrastive", bogus=1)
    assert build_pretrain_loss("avsiam_reconstruction", norm_pix=True).norm_pix


# ----------------------------------------------------------------------------------------------- DDP

ROWS = 3  # per rank


def _features() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return torch.randn(2 * ROWS, 8, generator=g), torch.randn(2 * ROWS, 8, generator=g)


def _contrastive_rank(rank: int, size: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(size),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    init_world(torch.device("cpu"))
    fa, fv = _features()
    a = fa[rank * ROWS : (rank + 1) * ROWS].clone().requires_grad_(True)
    v = fv[rank * ROWS : (rank + 1) * ROWS].clone().requires_grad_(True)
    loss = ContrastiveLoss()(a, v)["contrastive"]
    loss.backward()
    torch.save({"loss": loss.detach(), "a_grad": a.grad, "v_grad": v.grad}, Path(out) / f"rank{rank}.pt")


@pytest.mark.slow
def test_contrastive_loss_gathers_the_global_batch_with_gradient(tmp_path: Path) -> None:
    size = 2
    mp.start_processes(
        _contrastive_rank, args=(size, free_port(), str(tmp_path)), nprocs=size, start_method="spawn"
    )
    fa, fv = (t.clone().requires_grad_(True) for t in _features())
    full = info_nce(fa, fv)
    full.backward()
    for r in range(size):
        got = torch.load(tmp_path / f"rank{r}.pt", weights_only=True)
        torch.testing.assert_close(got["loss"], full.detach())  # the negatives are the whole global batch
        # Each rank's rows collect size × the global gradient; DDP's average over ranks gives it back.
        torch.testing.assert_close(got["a_grad"] / size, fa.grad[r * ROWS : (r + 1) * ROWS])
        torch.testing.assert_close(got["v_grad"] / size, fv.grad[r * ROWS : (r + 1) * ROWS])
