"""Distillation losses against numbers computed by hand on tiny tensors, and on a real tiny teacher/student pair.

Formulas: docs/reference/vocalist.md §5 and the MTDVocaLiST paper, eqs. 1-2.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from avkd.core.errors import UsageError
from avkd.losses import build_loss, build_weighting, list_losses
from avkd.losses.sync import attention_map, kl_div_mean, value_relation
from avkd.models import Tapped, TapRequest, build_model, flat_heads
from avkd.tasks.sync.methods import METHODS

LN = math.log


def tapped(logits: list[float] | None = None, **taps: torch.Tensor) -> Tapped:
    """A fake model output: ``tapped(mem_4_scores=x)`` has the tap ``"mem.4.scores"``."""
    z = torch.tensor(logits if logits is not None else [0.0])
    return Tapped(z, {k.replace("_", "."): v for k, v in taps.items()})


def maps(rows: list[list[float]]) -> torch.Tensor:
    """(Tq, Tk) rows → (B=1, H=1, Tq, Tk)."""
    return torch.tensor(rows, dtype=torch.float32)[None, None]


# ------------------------------------------------------------------------------------------------- KL


def test_kl_direction_and_elementwise_mean() -> None:
    p_t = torch.tensor([[0.5, 0.5], [0.9, 0.1]])
    p_s = torch.tensor([[0.25, 0.75], [0.5, 0.5]])
    # Σ p_t (log p_t − log p_s), then / numel = 4 (elementwise mean), not / 2 rows (batchmean).
    row1 = 0.5 * LN(0.5 / 0.25) + 0.5 * LN(0.5 / 0.75)
    row2 = 0.9 * LN(0.9 / 0.5) + 0.1 * LN(0.1 / 0.5)
    expected = (row1 + row2) / 4
    assert kl_div_mean(p_s, p_t).item() == pytest.approx(expected, rel=1e-6)
    reverse = (0.25 * LN(0.25 / 0.5) + 0.75 * LN(0.75 / 0.5) + 0.5 * LN(0.5 / 0.9) + 0.5 * LN(0.5 / 0.1)) / 4
    assert kl_div_mean(p_s, p_t).item() != pytest.approx(reverse, rel=1e-3)  # KL(t‖s), not KL(s‖t)
    assert kl_div_mean(p_s, p_t).item() != pytest.approx((row1 + row2) / 2, rel=1e-3)  # not batchmean
    # The same number as the reference's nn.KLDivLoss(reduction="mean")(log p_s, p_t).
    with pytest.warns(UserWarning):
        ref = torch.nn.KLDivLoss(reduction="mean")(p_s.log(), p_t)
    assert kl_div_mean(p_s, p_t).item() == pytest.approx(ref.item(), rel=1e-6)


def test_kl_zero_probabilities_are_finite() -> None:
    # A masked entry (p_s = p_t = 0) contributes exactly 0 instead of 0·(−inf) = NaN.
    p_t = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    p_s = torch.tensor([[1.0, 0.0], [0.25, 0.75]], requires_grad=True)
    kl = kl_div_mean(p_s, p_t)
    expected = (0.0 + 0.5 * LN(0.5 / 0.25) + 0.5 * LN(0.5 / 0.75)) / 4
    assert kl.item() == pytest.approx(expected, rel=1e-6)
    kl.backward()
    assert torch.isfinite(p_s.grad).all()


# ------------------------------------------------------------------------------------------- CAD / VR


def test_cad_by_hand_with_temperature() -> None:
    # Scores chosen as logs so the softmax is exact: student rows [1/4, 3/4], [1/2, 1/2]; teacher [1/2, 1/2],
    # [9/10, 1/10]. With τ = 2 the scores are doubled so S/τ gives the same maps, and the term is × τ² = 4.
    s = maps([[0.0, LN(3)], [0.0, 0.0]])
    t = maps([[0.0, 0.0], [LN(9), 0.0]])
    row1 = 0.5 * LN(0.5 / 0.25) + 0.5 * LN(0.5 / 0.75)
    row2 = 0.9 * LN(0.9 / 0.5) + 0.1 * LN(0.1 / 0.5)
    kl = (row1 + row2) / 4
    loss = build_loss("cad_vr", layers="av1", components="cad")
    assert loss.taps() == ["av.1.scores"]
    terms = loss(tapped(av_1_scores=s), tapped(av_1_scores=t))
    assert list(terms) == ["cad/av1"]
    assert terms["cad/av1"].item() == pytest.approx(kl, rel=1e-6)
    loss2 = build_loss("cad_vr", layers="av1", components="cad", temperature=2.0)
    terms2 = loss2(tapped(av_1_scores=2 * s), tapped(av_1_scores=2 * t))
    assert terms2["cad/av1"].item() == pytest.approx(4 * kl, rel=1e-6)
    assert terms2["cad/av1"].dim() == 0


def test_vr_by_hand_with_different_head_dims() -> None:
    # Student V (Tk=2, d_h=4): V·Vᵀ = 4·I, ×d_h^-½ = ½ → [[2, 0], [0, 2]] → rows [e²/(e²+1), 1/(e²+1)] and mirror.
    v_s = maps([[2.0, 0, 0, 0], [0, 2.0, 0, 0]])
    # Teacher V (d_h=1): V·Vᵀ = [[1, 1], [1, 1]] → uniform rows. The head dims differ: VR does not care.
    v_t = maps([[1.0], [1.0]])
    a, b = math.exp(2) / (math.exp(2) + 1), 1 / (math.exp(2) + 1)
    row = 0.5 * LN(0.5 / a) + 0.5 * LN(0.5 / b)
    loss = build_loss("cad_vr", layers="fus2", components="vr")
    assert loss.taps() == ["mem.2.v"]
    terms = loss(tapped(mem_2_v=v_s), tapped(mem_2_v=v_t))
    assert terms["vr/mem2"].item() == pytest.approx(2 * row / 4, rel=1e-6)
    assert value_relation(v_s)[0, 0].flatten().tolist() == pytest.approx([a, b, b, a], rel=1e-6)


def test_va_clamp_removes_minus_inf_and_matches_hand() -> None:
    s = maps([[0.5, -math.inf], [-2.0, 1.0]])
    t = maps([[1.0, -math.inf], [0.0, 0.0]])
    # clamp(min=1e-5) for both models: s → [[0.5, 1e-5], [1e-5, 1.0]], t → [[1.0, 1e-5], [1e-5, 1e-5]].
    c = 1e-5

    def sm(x: float, y: float) -> tuple[float, float]:
        return math.exp(x) / (math.exp(x) + math.exp(y)), math.exp(y) / (math.exp(x) + math.exp(y))

    ps1, ps2 = sm(0.5, c), sm(c, 1.0)
    pt1, pt2 = sm(1.0, c), (0.5, 0.5)
    kl = sum(
        pt * LN(pt / ps) for pts, pss in ((pt1, ps1), (pt2, ps2)) for pt, ps in zip(pts, pss, strict=True)
    )
    terms = build_loss("cad_vr", layers="va1", components="cad")(tapped(va_1_scores=s), tapped(va_1_scores=t))
    assert torch.isfinite(terms["cad/va1"])
    assert terms["cad/va1"].item() == pytest.approx(kl / 4, rel=1e-5)
    assert attention_map(s, clamp_min=c)[0, 0, 0].tolist() == pytest.approx(list(ps1), rel=1e-6)
    # Without the clamp the masked entries are 0 in both maps and add nothing: row 1 is [1, 0] vs [1, 0].
    off = build_loss("cad_vr", layers="va1", components="cad", clamp_va=False)
    terms = off(tapped(va_1_scores=s), tapped(va_1_scores=t))
    ps2 = sm(-2.0, 1.0)
    kl_off = sum(pt * LN(pt / ps) for pt, ps in zip((0.5, 0.5), ps2, strict=True))
    assert terms["cad/va1"].item() == pytest.approx(kl_off / 4, rel=1e-5)
    # The clamp is va-only: the same scores in an av layer keep their −inf (exact zeros, no NaN).
    av = build_loss("cad_vr", layers="av1", components="cad")(tapped(av_1_scores=s), tapped(av_1_scores=t))
    assert av["cad/av1"].item() == pytest.approx(kl_off / 4, rel=1e-5)


def test_maps_rows_sum_to_one_on_a_real_model() -> None:
    m = build_model("vocalist_lite", width=16, channels=(4, 4, 8, 8, 16)).eval()
    out = m(*inputs(3), taps=TapRequest("*.scores", "*.v"))
    for blk in ("av", "va", "mem"):
        for layer in (1, 4):
            s = out.taps[f"{blk}.{layer}.scores"]
            cad = attention_map(s, clamp_min=1e-5 if blk == "va" else None)
            vr = value_relation(out.taps[f"{blk}.{layer}.v"])
            assert torch.allclose(cad.sum(-1), torch.ones(()), atol=1e-6)
            assert torch.allclose(vr.sum(-1), torch.ones(()), atol=1e-6)
            assert vr.shape[-2:] == ((16, 16) if blk == "va" else (5, 5))
    assert int(torch.isinf(out.taps["va.1.scores"][0, 0]).sum()) == 10
    assert torch.isfinite(attention_map(out.taps["va.1.scores"], clamp_min=1e-5)).all()


# ------------------------------------------------------------------------------------------------ KD


def test_kd_batch_softmax_by_hand() -> None:
    # T = 2: z_s/T = [0, ln 3] → softmax over the batch [1/4, 3/4]; z_t/T = [0, 0] → [1/2, 1/2].
    s, t = tapped([0.0, 2 * LN(3)]), tapped([0.0, 0.0])
    kl = (0.5 * LN(0.5 / 0.25) + 0.5 * LN(0.5 / 0.75)) / 2  # batchmean: / B = 2
    out = build_loss("kd", temperature=2.0)(s, t)
    assert list(out) == ["kd"]
    assert out["kd"].item() == pytest.approx(4 * kl, rel=1e-6)  # × T²


def test_kd_binary_by_hand() -> None:
    # Sample 1: σ(0) = σ(0) → 0. Sample 2: p_s = σ(ln 3) = 3/4, p_t = σ(0) = 1/2.
    s, t = tapped([0.0, 2 * LN(3)]), tapped([0.0, 0.0])
    kl2 = 0.5 * LN(0.5 / 0.75) + 0.5 * LN(0.5 / 0.25)
    out = build_loss("kd", temperature=2.0, mode="binary")(s, t)
    assert out["kd"].item() == pytest.approx(4 * (0 + kl2) / 2, rel=1e-6)
    with pytest.raises(UsageError, match="mode"):
        build_loss("kd", mode="sigmoid")


# ----------------------------------------------------------------------------------------------- RKD


def sl1(x: float) -> float:
    return 0.5 * x * x if abs(x) < 1 else abs(x) - 0.5


def test_rkd_distance_and_angle_by_hand() -> None:
    # Student: a right angle (0,0), (1,0), (0,1); teacher: three collinear points (0,0), (1,0), (2,0).
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    # Distances / mean of the 6 off-diagonal ones: student 1, 1, √2 over (2+√2)/3; teacher 1, 2, 1 over 4/3.
    m_s = (2 + math.sqrt(2)) / 3
    ds = {(0, 1): 1 / m_s, (0, 2): 1 / m_s, (1, 2): math.sqrt(2) / m_s}
    dt = {(0, 1): 0.75, (0, 2): 1.5, (1, 2): 0.75}
    loss_d = 2 * sum(sl1(ds[k] - dt[k]) for k in ds) / 9  # each pair twice, diagonal 0 − 0, mean over 3×3
    # Angles: a[i, j, k] = e_ij·e_ik with e_ij the unit vector from point i to j (0 for j = i).
    r = 1 / math.sqrt(2)
    a_s = [
        [[0, 0, 0], [0, 1, 0], [0, 0, 1]],  # anchor 0: e01 = (1,0), e02 = (0,1)
        [[1, 0, r], [0, 0, 0], [r, 0, 1]],  # anchor 1: e10 = (−1,0), e12 = (−1,1)/√2
        [[1, r, 0], [r, 1, 0], [0, 0, 0]],  # anchor 2: e20 = (0,−1), e21 = (1,−1)/√2
    ]
    a_t = [
        [[0, 0, 0], [0, 1, 1], [0, 1, 1]],  # anchor 0: e01 = e02 = (1,0)
        [[1, 0, -1], [0, 0, 0], [-1, 0, 1]],  # anchor 1: e10 = (−1,0), e12 = (1,0)
        [[1, 1, 0], [1, 1, 0], [0, 0, 0]],  # anchor 2: e20 = e21 = (−1,0)
    ]
    loss_a = sum(sl1(a_s[i][j][k] - a_t[i][j][k]) for i in range(3) for j in range(3) for k in range(3)) / 27
    loss = build_loss("rkd")
    assert loss.taps() == ["pooled"]
    out = loss(tapped(pooled=s), tapped(pooled=t))
    assert list(out) == ["rkd/distance", "rkd/angle"]
    assert out["rkd/distance"].item() == pytest.approx(25 * loss_d, rel=1e-5)  # × w_d (reference: internal)
    assert out["rkd/angle"].item() == pytest.approx(50 * loss_a, rel=1e-5)  # × w_a
    unit = build_loss("rkd", w_d=1, w_a=1)(tapped(pooled=s), tapped(pooled=t))
    assert unit["rkd/angle"].item() == pytest.approx(loss_a, rel=1e-5)
    # A batch of one (an epoch's last partial batch): 0, not the reference's NaN (mean of no distances).
    one = torch.ones(1, 2, requires_grad=True)
    out = loss(tapped(pooled=one), tapped(pooled=torch.ones(1, 2)))
    assert out["rkd/distance"].item() == 0.0 and out["rkd/angle"].item() == 0.0
    sum(out.values()).backward()
    assert torch.isfinite(one.grad).all()


# ------------------------------------------------------------------------------------------- FitNets


def test_fitnets_mse_with_fixed_projection() -> None:
    loss = build_loss("fitnets", student_dim=2, teacher_dim=2, trainable_projection=False)
    with torch.no_grad():
        loss.proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        loss.proj.bias.copy_(torch.tensor([0.0, 1.0]))
    # f_t (T=1, B=1, 2) = [1, 1] → proj [1, 3]; f_s = [0, 1] → MSE = ((0−1)² + (1−3)²)/2 = 2.5; × beta 100.
    f_s = torch.tensor([[[0.0, 1.0]]], requires_grad=True)
    out = loss(tapped(mem_emb=f_s), tapped(mem_emb=torch.tensor([[[1.0, 1.0]]])))
    assert list(out) == ["fitnets/mem.emb"]
    assert out["fitnets/mem.emb"].item() == pytest.approx(250.0)
    assert not any(p.requires_grad for p in loss.parameters())  # the reference's frozen projection
    out["fitnets/mem.emb"].backward()
    assert f_s.grad.flatten().tolist() == pytest.approx([100 * 2 * (0 - 1) / 2, 100 * 2 * (1 - 3) / 2])


def test_fitnets_trainable_projection_and_setup() -> None:
    loss = build_loss("fitnets")
    with pytest.raises(ValueError, match="setup"):
        loss(tapped(mem_emb=torch.zeros(1, 1, 8)), tapped(mem_emb=torch.zeros(1, 1, 16)))
    teacher, student = pair()
    loss.setup(student=student, teacher=teacher)
    assert (loss.proj.in_features, loss.proj.out_features) == (16, 8)
    assert all(p.requires_grad for p in loss.parameters())
    with pytest.raises(UsageError, match="both"):
        build_loss("fitnets", student_dim=8)


# ------------------------------------------------------------------------------------- layer selection


def test_layer_selection_requests_exactly_its_taps() -> None:
    loss = build_loss("mtd", layers="av1-2")
    assert loss.taps() == ["av.1.scores", "av.1.v", "av.2.scores", "av.2.v"]
    assert loss.term_names() == ["cad/av1", "vr/av1", "cad/av2", "vr/av2"]
    _, student = pair()
    out = student(*inputs(2), taps=loss.tap_request())
    assert sorted(out.taps) == sorted(loss.taps())
    assert build_loss("minilm").taps() == ["mem.4.scores", "mem.4.v"]
    assert build_loss("minilm", components=("vr",)).term_names() == ["vr/mem4"]
    assert build_loss("minilm", components="cad").taps() == ["mem.4.scores"]
    assert build_loss("bce").tap_request() is None
    full = build_loss("mtd")
    assert full.term_names()[:4] == ["cad/mem1", "vr/mem1", "cad/mem2", "vr/mem2"]
    assert len(full.term_names()) == 24 and full.term_names()[-1] == "vr/va4"


def test_registry() -> None:
    assert {"bce", "kd", "rkd", "fitnets", "cad_vr", "mtd", "nmtd", "minilm"} <= set(list_losses())
    with pytest.raises(UsageError, match="unknown loss 'mdt'"):
        build_loss("mdt")
    with pytest.raises(UsageError, match="bad arguments for loss 'kd'"):
        build_loss("kd", temprature=3)


# --------------------------------------------------------------------------------- real tiny models


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


_PAIR: dict[str, torch.nn.Module] = {}


def pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    """A tiny teacher (width 16) and student (width 8): same heads (8), layers and token counts."""
    if not _PAIR:
        torch.manual_seed(0)
        _PAIR["t"] = build_model("vocalist_lite", width=16, channels=(4, 4, 8, 8, 16)).eval()
        _PAIR["s"] = build_model("vocalist_lite", width=8, channels=(4, 4, 8, 8, 8))
    return _PAIR["t"], _PAIR["s"]


def inputs(b: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 15, 48, 96, generator=g), torch.rand(b, 1, 80, 16, generator=g) * 8 - 4


LOSS_CASES = [
    ("bce", {}),
    ("kd", {}),
    ("kd", {"mode": "binary"}),
    ("rkd", {}),
    ("fitnets", {}),
    ("fitnets", {"trainable_projection": False}),
    ("minilm", {}),
    ("nmtd", {"layers": "av1-4,fusion1-4"}),
    ("mtd", {}),
    ("mtd", {"clamp_va": False, "temperature": 2.0}),
]


#: Each loss under the weighting its method uses (every other loss: uniform).
DEFAULT_WEIGHTING = {m: METHODS.get(m).weighting for m in METHODS.names()}


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
@pytest.mark.parametrize(("name", "kwargs"), LOSS_CASES, ids=[f"{n}-{k}" for n, k in LOSS_CASES])
def test_every_loss_on_a_real_pair(name: str, kwargs: dict, mode: str) -> None:
    teacher, student = pair()
    student.train().zero_grad(set_to_none=True)
    loss = build_loss(name, **kwargs)
    loss.setup(student=student, teacher=teacher)
    video, mel = inputs(4, seed=1)
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
    req = loss.tap_request()
    ctx = torch.no_grad() if mode == "no_grad" else torch.inference_mode()
    with ctx:
        t = teacher(video, mel, taps=req) if req else Tapped(teacher(video, mel), {})
    assert t.logits.is_inference() == (mode == "inference_mode")
    s = student(video, mel, taps=req) if req else Tapped(student(video, mel), {})
    terms = loss(s, t, labels)
    assert list(terms) == loss.term_names()
    for k, v in terms.items():
        assert v.dim() == 0 and torch.isfinite(v), k
        assert v.item() >= 0, k
    bce = F.binary_cross_entropy_with_logits(s.logits, labels)
    weighting = build_weighting(DEFAULT_WEIGHTING.get(name, "uniform"), loss.term_names())
    total, logs = weighting(bce, terms)
    assert math.isfinite(logs["total"])
    total.backward(retain_graph=True)
    grads = [p.grad for p in student.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    if terms:  # the distillation terms alone reach the student's transformers
        student.zero_grad(set_to_none=True)
        sum(terms.values()).backward()
        g = student.mem_transformer.layers[3].self_attn.in_proj_weight.grad
        assert g is not None and g.abs().sum() > 0
        assert all(p.grad is None for p in teacher.parameters())
    if name == "fitnets" and kwargs.get("trainable_projection", True):
        assert loss.proj.weight.grad is not None


def test_mtd_uw13_matches_reference_formula() -> None:
    """Parity with a transcription of the reference's 13D loss (§5.2) on the (B·H, T, ·) layout."""
    teacher, student = pair()
    student.eval()
    video, mel = inputs(3, seed=2)
    loss = build_loss("mtd")
    with torch.no_grad():
        t = teacher(video, mel, taps=loss.tap_request())
        s = student(video, mel, taps=loss.tap_request())
    bce = torch.tensor(0.7)
    weighting = build_weighting("uw13", loss.term_names())
    with torch.no_grad():
        weighting.params.copy_(torch.linspace(0.5, 1.5, 13))
    ours, _ = weighting(bce, loss(s, t))

    def ref_sm(m: torch.Tensor) -> torch.Tensor:
        return F.softmax(m.float() / 1, dim=-1).type_as(m)

    kl = torch.nn.KLDivLoss(reduction="mean")
    w = weighting.params.detach()
    total = 0.5 / w[0] ** 2 * bce + torch.log(1 + w[0] ** 2)
    for i, blk in enumerate(("mem", "av", "va")):
        for j in range(4):
            qk_s, qk_t = (
                flat_heads(s.taps[f"{blk}.{j + 1}.scores"]),
                flat_heads(t.taps[f"{blk}.{j + 1}.scores"]),
            )
            if blk == "va":
                qk_s, qk_t = qk_s.clamp(min=1e-5), qk_t.clamp(min=1e-5)
            v_s, v_t = flat_heads(s.taps[f"{blk}.{j + 1}.v"]), flat_heads(t.taps[f"{blk}.{j + 1}.v"])
            vv_s = torch.bmm(v_s * v_s.size(-1) ** -0.5, v_s.transpose(1, 2))
            vv_t = torch.bmm(v_t * v_t.size(-1) ** -0.5, v_t.transpose(1, 2))
            with pytest.warns(UserWarning):
                pair_loss = kl(ref_sm(qk_s).log(), ref_sm(qk_t)) + kl(ref_sm(vv_s).log(), ref_sm(vv_t))
            k = i * 4 + j + 1
            total = total + 0.5 / w[k] ** 2 * pair_loss + torch.log(1 + w[k] ** 2)
    assert ours.item() == pytest.approx(total.item(), rel=1e-5)


@pytest.mark.parametrize("name", ["mtd", "rkd", "fitnets"])
def test_losses_ignore_autocast(name: str) -> None:
    # Under AMP the matmuls of VR / RKD / FitNets would run in bf16; the losses disable autocast (float32 math).
    teacher, student = pair()
    student.eval()
    loss = build_loss(name)
    loss.setup(student=student, teacher=teacher)
    video, mel = inputs(3, seed=3)
    with torch.no_grad():
        t = teacher(video, mel, taps=loss.tap_request())
        s = student(video, mel, taps=loss.tap_request())
    plain = loss(s, t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp = loss(s, t)
    assert {k: v.dtype for k, v in amp.items()} == {k: torch.float32 for k in plain}
    assert {k: v.item() for k, v in amp.items()} == {k: v.item() for k, v in plain.items()}


def test_missing_tap_names_the_fix() -> None:
    loss = build_loss("minilm")
    with pytest.raises(ValueError, match=r"needs tap 'mem.4.scores' from the student.*tap_request"):
        loss(tapped(), tapped())
