"""CRD and EDAM-S / EDAM-T (avkd.losses.emotion): hand-computed cases and tiny MulT end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from avkd.core.errors import UsageError
from avkd.losses.base import build_loss, list_losses
from avkd.losses.emotion import CRDBatch, CRDLoss, EDAMLoss, contrast_indices, nce_loss
from avkd.models.attention import Tapped
from avkd.models.mult import MulT, MulTStudent

NEG = float("-inf")


class _Head(nn.Module):
    """Stand-in model: only ``out_layer`` (what site='final' sizes its Embed from) and one parameter."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_layer = nn.Linear(3, dim)


def _hand_crd() -> CRDLoss:
    """CRD at site 'final' with identity Embed heads, n_data=4, K=2, dim 2, T=1, fixed banks."""
    loss = CRDLoss(site="final", n_data=4, nce_k=2, nce_t=1.0, feat_dim=2)
    loss.setup(_Head(2), _Head(2))
    with torch.no_grad():
        for emb in (loss.embed_s["final"], loss.embed_t["final"]):
            emb.linear.weight.copy_(torch.eye(2))
            emb.linear.bias.zero_()
        bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
        loss.memory["final"].memory_s.copy_(bank)
        loss.memory["final"].memory_t.copy_(bank)
    return loss


def test_registered() -> None:
    assert {"crd", "edam-s", "edam-t"} <= set(list_losses())  # the methods' spelling
    assert build_loss("edam_s").name == "edam-s"  # the old spelling still builds
    assert build_loss("edam_t", config=2).term_names() == [
        f"edam/{b}.{i}" for b in ("v_with_a", "v_with_l") for i in range(1, 6)
    ]
    with pytest.raises(UsageError):
        build_loss("crd", site="logits")


def test_crd_nce_and_memory_update_by_hand() -> None:
    loss = _hand_crd()
    # Student feature v_s = (0.6, 0.8), teacher v_t = (0, 1) (both unit norm, so Embed = identity).
    s = Tapped(torch.tensor([[0.6, 0.8]], requires_grad=True), {})
    t = Tapped(torch.tensor([[0.0, 1.0]]), {})
    batch = CRDBatch(labels=None, indices=torch.tensor([0]), contrast=torch.tensor([[2, 3]]))
    got = loss(s, t, batch)["crd"]

    # idx = [0 (positive), 2, 3]. Student anchor vs teacher bank rows (1,0), (-1,0), (0,-1):
    #   <m, v_s> = 0.6, -0.6, -0.8  → out_s = exp(.)/T=1; Z_s = mean(out_s)·n_data = mean·4.
    out_s = [math.exp(0.6), math.exp(-0.6), math.exp(-0.8)]
    z_s = sum(out_s) / 3 * 4  # = (1.8221 + 0.5488 + 0.4493)/3·4 = 3.7603
    # Teacher anchor vs student bank (same rows): <m, v_t> = 0, 0, -1.
    out_t = [1.0, 1.0, math.exp(-1.0)]
    z_t = sum(out_t) / 3 * 4  # = 2.3679/3·4 = 3.1572
    m_pn, eps = 2 / 4, 1e-7  # m = K = 2, Pn = 1/n_data

    def nce(out: list[float], z: float) -> float:
        p = [o / z for o in out]
        return -(
            math.log(p[0] / (p[0] + m_pn + eps))
            + math.log(m_pn / (p[1] + m_pn + eps))
            + math.log(m_pn / (p[2] + m_pn + eps))
        )

    want = nce(out_s, z_s) + nce(out_t, z_t)  # B = 1
    assert got.item() == pytest.approx(want, rel=1e-5)
    # Student side: p_s = out_s/Z_s = 0.4846, 0.1459, 0.1195 → −log(0.4846/0.9846) = 0.7090,
    #   −log(0.5/0.6459) = 0.2561, −log(0.5/0.6195) = 0.2143: 1.1794.
    # Teacher side: p_t = 0.3167, 0.3167, 0.1165 → 0.9472 + 0.4907 + 0.2095 = 1.6474. Total 2.8268.
    assert got.item() == pytest.approx(1.1794 + 1.6474, abs=2e-4)

    mem = loss.memory["final"]
    # Momentum 0.5 at the sample index 0: normalise(0.5·(1,0) + 0.5·(0.6,0.8)) = (0.8, 0.4)/√0.8 = (2,1)/√5.
    torch.testing.assert_close(mem.memory_s[0], torch.tensor([2.0, 1.0]) / math.sqrt(5))
    # normalise(0.5·(1,0) + 0.5·(0,1)) = (1,1)/√2; other rows untouched.
    torch.testing.assert_close(mem.memory_t[0], torch.tensor([1.0, 1.0]) / math.sqrt(2))
    torch.testing.assert_close(mem.memory_s[1:], torch.tensor([[0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
    assert mem.z_s.item() == pytest.approx(z_s, rel=1e-6) and mem.z_t.item() == pytest.approx(z_t, rel=1e-6)

    got.backward()
    assert s.logits.grad is not None and torch.isfinite(s.logits.grad).all()
    assert loss.embed_s["final"].linear.weight.grad is not None
    assert loss.embed_t["final"].linear.weight.grad is not None

    # Z is set once: a second batch keeps it; eval mode does not touch the banks.
    loss.eval()
    before = mem.memory_s.clone()
    loss(s, t, CRDBatch(None, torch.tensor([1]), torch.tensor([[0, 1, 2]])))  # (B, K+1) layout accepted
    assert mem.z_s.item() == pytest.approx(z_s, rel=1e-6)
    torch.testing.assert_close(mem.memory_s, before)


def test_nce_loss_matches_formula() -> None:
    x = torch.tensor([[0.5, 0.1, 0.2], [0.3, 0.4, 0.05]])
    mpn = 2 / 10
    want = (
        -sum(
            math.log(r[0] / (r[0] + mpn + 1e-7)) + sum(math.log(mpn / (v + mpn + 1e-7)) for v in r[1:])
            for r in x.tolist()
        )
        / 2
    )
    assert nce_loss(x, n_data=10).item() == pytest.approx(want, rel=1e-6)


def test_contrast_indices_other_classes_only() -> None:
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 0, 1, 2])
    rng = np.random.default_rng(0)
    neg = contrast_indices(labels, 4, rng)
    assert neg.shape == (10, 4) and neg.dtype == np.int64
    for i, row in enumerate(neg):
        assert (labels[row] != labels[i]).all()
        assert len(set(row.tolist())) == 4  # without replacement when K <= #negatives
    # K larger than the other-class pool (6 for class 0): drawn with replacement, still other classes only.
    big = contrast_indices(torch.tensor(labels), 20, rng, which=[0, 1])
    assert big.shape == (2, 20) and (labels[big] != 0).all()
    with pytest.raises(ValueError):
        contrast_indices([3, 3], 1, rng)


def test_edam_s_hand_maps_with_mask() -> None:
    # Causal 2×2 maps (entry (0,1) masked). Student rows: [1, 0], [1/2, 1/2]; teacher: [1, 0], [3/4, 1/4].
    s = torch.tensor([[[[0.0, NEG], [0.0, 0.0]]]], requires_grad=True)
    t = torch.tensor([[[[1.0, NEG], [math.log(3), 0.0]]]])
    loss = EDAMLoss("s", blocks=["a_with_v"], num_layers=1)
    got = loss.map_loss(s, t)
    # Row 0: −(1·log 1 + masked 0) = 0; row 1: −(3/4·log ½ + 1/4·log ½) = log 2. Mean over rows: log 2 / 2.
    assert got.item() == pytest.approx(math.log(2) / 2, rel=1e-6)
    got.backward()
    assert torch.isfinite(s.grad).all() and s.grad[0, 0, 0, 1] == 0
    # Paper-literal eq. 13 (−Σ p_S log p_T): row 1 = −(½·log ¾ + ½·log ¼).
    lit = EDAMLoss("s", blocks=["a_with_v"], num_layers=1, direction="paper_literal").map_loss(s, t)
    assert lit.item() == pytest.approx(-(0.5 * math.log(0.75) + 0.5 * math.log(0.25)) / 2, rel=1e-6)
    # Masked terms contribute 0: whatever is under the mask, the loss is the same.
    t2 = t.clone()
    t2[0, 0, 0, 0] = 5.0  # row 0 still [1, 0]
    assert loss.map_loss(s, t2).item() == pytest.approx(got.item())
    with pytest.raises(ValueError):
        loss.map_loss(s, torch.zeros(1, 1, 1, 2))  # EDAM-S needs equal shapes


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_edam_fast_form_equals_the_direct_form(tau: float) -> None:
    """The loss as computed (lse(S)·Σp_T − Σp_T·S) against −Σ p_T log p_S written out, with masks in both
    maps and one entry masked in the teacher only (its term is left out, as in the direct form)."""
    gen = torch.Generator().manual_seed(0)
    s = torch.randn(2, 3, 6, 7, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 3, 6, 7, generator=gen, dtype=torch.float64)
    mask = torch.triu(torch.ones(6, 7, dtype=torch.bool), diagonal=2)
    s, t = s.masked_fill(mask, NEG), t.masked_fill(mask, NEG)
    t[0, 1, 4, 0] = NEG
    s.requires_grad_(True)
    got = EDAMLoss("s", blocks=["a_with_v"], num_layers=1, temperature=tau).map_loss(s, t)
    (grad,) = torch.autograd.grad(got, s)
    s_ref = s.detach().clone().requires_grad_(True)
    valid = torch.isfinite(s_ref) & torch.isfinite(t)
    log_s = torch.log_softmax(s_ref / tau, dim=-1)
    p_t = torch.softmax(t / tau, dim=-1)
    direct = -(p_t * torch.where(valid, log_s, torch.zeros_like(log_s))).sum(-1).mean()
    (grad_ref,) = torch.autograd.grad(direct, s_ref)
    # map_loss works in float32 (the taps' dtype under AMP is cast up), hence float32 tolerances.
    assert got.item() == pytest.approx(direct.item(), rel=1e-6)
    assert (
        torch.allclose(grad.double(), grad_ref, rtol=0, atol=1e-7)
        and grad[mask.expand_as(grad)].abs().max() == 0
    )


def test_edam_t_upsamples_teacher_query_axis() -> None:
    # Teacher 1×2 row softmax → [3/4, 1/4]; upsampled (bilinear, 1 → 2 rows) to both student rows, then the
    # student's mask makes teacher row 0 = [1, 0]. Same numbers as the EDAM-S case: log 2 / 2.
    s = torch.tensor([[[[0.0, NEG], [0.0, 0.0]]]], requires_grad=True)
    t = torch.tensor([[[[math.log(3), 0.0]]]])
    got = EDAMLoss("t", blocks=["l_with_v"], num_layers=1).map_loss(s, t)
    assert got.item() == pytest.approx(math.log(2) / 2, rel=1e-6)
    # A masked teacher entry (−inf) being interpolated gives no NaN.
    t_masked = torch.tensor([[[[0.0, NEG, NEG], [0.0, 0.0, 1.0]]]])
    s3 = torch.zeros(1, 1, 4, 3, requires_grad=True)
    val = EDAMLoss("t", blocks=["l_with_v"], num_layers=1).map_loss(s3, t_masked)
    val.backward()
    assert torch.isfinite(val) and torch.isfinite(s3.grad).all()


# ------------------------------------------------------------------------------------------ end to end

T_L, T_A, T_V = 3, 20, 20
DIMS = {"orig_d_l": 6, "orig_d_a": 5, "orig_d_v": 4}
SMALL = {"d": 10, "num_heads": 2, "layers": 2}


def _models(config: int, proxy: str = "edam_s") -> tuple[MulT, MulTStudent]:
    # EDAM-S proxy L_S: kernel 10 stride 10 → 20 // 10 = 2 query steps; the teacher's text has T_L = 3 (EDAM-T
    # must bridge it), so EDAM-S runs below use T_L = 2.
    from avkd.models.mult import STUDENT_CONFIGS

    teacher = MulT(**DIMS, **SMALL, branch=STUDENT_CONFIGS[config].teacher_branch).eval()
    student = MulTStudent(config, DIMS["orig_d_v"], proxy=proxy, **SMALL)
    return teacher, student


def _inputs(t_l: int = T_L, b: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.randn(b, t_l, 6), torch.randn(b, T_A, 5), torch.randn(b, T_V, 4)


def _check_grads(student: nn.Module, teacher: nn.Module, extra: nn.Module | None = None) -> None:
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.grad is None for p in teacher.parameters())
    if extra is not None:
        params = list(extra.parameters())
        assert params and all(p.grad is not None for p in params)


@pytest.mark.parametrize("site", ["final", "penultimate", "post-attention", "attention"])
def test_crd_end_to_end(site: str) -> None:
    teacher, student = _models(5)
    n_data, k = 12, 3
    loss = build_loss(
        "crd", site=site, n_data=n_data, nce_k=k, config=5, num_layers=2, seq_lengths=(2, T_A, T_V)
    )
    loss.setup(student, teacher)
    labels_all = np.arange(n_data) % 7
    idx = np.array([0, 5, 9])
    neg = contrast_indices(labels_all, k, np.random.default_rng(1), which=idx)
    batch = CRDBatch(torch.tensor(labels_all[idx]), torch.tensor(idx), torch.tensor(neg))
    text, audio, vision = _inputs(t_l=2)
    req = loss.tap_request()
    # Teacher run WITH autograd on, to show the loss itself keeps gradients away from it.
    t = teacher(text, audio, vision, taps=req) if req else Tapped(teacher(text, audio, vision), {})
    s = student(vision=vision, taps=req) if req else Tapped(student(vision=vision), {})
    out = loss(s, t, batch)
    assert list(out) == ["crd"] and torch.isfinite(out["crd"]) and out["crd"].item() > 0
    out["crd"].backward()
    _check_grads(student, teacher, loss)
    n_units = 1 if site in ("final", "penultimate") else 4  # 2 blocks × 2 layers
    assert len(loss.memory) == n_units
    with pytest.raises(ValueError):
        loss(s, t, torch.tensor([0, 1, 2]))  # plain labels are not enough


@pytest.mark.parametrize("config", [2, 5])
def test_edam_s_end_to_end(config: int) -> None:
    teacher, student = _models(config)
    loss = build_loss("edam_s", config=config, num_layers=2)
    req = loss.tap_request()
    text, audio, vision = _inputs(t_l=2)
    t = teacher(text, audio, vision, taps=req)
    s = student(vision=vision, taps=req)
    out = loss(s, t)
    assert list(out) == loss.term_names() and len(out) == 4
    assert all(torch.isfinite(v) for v in out.values())
    # Causal masks are present in the self-length maps (a_with_v / v_with_a, 20×20), yet no NaN.
    blk = "a_with_v" if config == 5 else "v_with_a"
    assert torch.isinf(s.taps[f"{blk}.1.scores"]).any()
    sum(out.values()).backward()
    _check_grads(student, teacher)


def test_edam_t_end_to_end_mismatched_maps() -> None:
    teacher, student = _models(5, proxy="same")  # student L_S has 20 steps, teacher text 3
    loss = build_loss("edam_t", config=5, num_layers=2)
    req = loss.tap_request()
    text, audio, vision = _inputs()
    with torch.no_grad():
        t = teacher(text, audio, vision, taps=req)
    s = student(vision=vision, taps=req)
    assert t.taps["l_with_v.1.scores"].shape[2:] == (T_L, T_V)
    assert s.taps["l_with_v.1.scores"].shape[2:] == (T_V, T_V)
    out = loss(s, t)
    assert all(torch.isfinite(v) for v in out.values())
    sum(out.values()).backward()
    _check_grads(student, teacher)
    with pytest.raises(ValueError):
        build_loss("edam_s", config=5, num_layers=2)(s, t)
