"""Weightings of BCE + distillation terms (paper eqs. 3-4, docs/reference/vocalist.md §5.2) against hand arithmetic."""

from __future__ import annotations

import math

import pytest
import torch

from avkd.core.errors import UsageError
from avkd.losses import build_loss, build_weighting, list_weightings

LN = math.log
T = torch.tensor

# Two (block, layer) pairs, CAD and VR each, in the losses' order.
NAMES = ["cad/mem4", "vr/mem4", "cad/av1", "vr/av1"]
VALUES = {"cad/mem4": 0.25, "vr/mem4": 0.5, "cad/av1": 1.0, "vr/av1": 2.0}
BCE = 0.75


def terms(values: dict[str, float] = VALUES) -> dict[str, torch.Tensor]:
    return {k: T(v) for k, v in values.items()}


def test_registry() -> None:
    assert list_weightings() == ["uniform", "manual", "aw13", "aw25", "uw13", "uw25"]
    with pytest.raises(UsageError, match="unknown weighting 'uw26'"):
        build_weighting("uw26", NAMES)
    with pytest.raises(UsageError, match="bad arguments for weighting 'uw13'"):
        build_weighting("uw13", NAMES, alpha=2.0)


def test_uniform() -> None:
    w = build_weighting("uniform", NAMES, alpha=0.5)
    total, logs = w(T(BCE), terms())
    assert total.item() == pytest.approx(0.75 + 0.5 * (0.25 + 0.5 + 1.0 + 2.0))  # = 2.625
    assert logs["total"] == pytest.approx(2.625)
    assert logs["bce"] == 0.75 and logs["w/bce"] == 1.0
    assert logs["vr/av1"] == 2.0 and logs["w/vr/av1"] == 0.5
    assert list(w.parameters()) == []
    # BCE alone (the bce method): no terms.
    total, logs = build_weighting("uniform", [])(T(BCE), {})
    assert total.item() == 0.75 and set(logs) == {"total", "bce", "w/bce"}


def test_manual_exact_patterns_and_errors() -> None:
    # Exact name beats patterns; among patterns the last matching one wins; "bce" sets the BCE weight.
    weights = {"*": 0.0, "cad/*": 2.0, "vr/mem4": 0.5, "bce": 3.0}
    w = build_weighting("manual", NAMES, weights=weights)
    total, logs = w(T(BCE), terms())
    # 3·0.75 + 2·0.25 (cad/mem4) + 0.5·0.5 (vr/mem4) + 2·1.0 (cad/av1) + 0·2.0 (vr/av1)
    assert total.item() == pytest.approx(2.25 + 0.5 + 0.25 + 2.0 + 0.0)
    assert logs["w/cad/av1"] == 2.0 and logs["w/vr/av1"] == 0.0 and logs["w/bce"] == 3.0
    # Single-layer distillation as in paper §4.3: the chosen terms 1, the others 0.
    w = build_weighting("manual", NAMES, weights={"*": 0.0, "*/mem4": 1.0})
    assert w(T(BCE), terms())[0].item() == pytest.approx(0.75 + 0.25 + 0.5)
    with pytest.raises(UsageError, match=r"no weight for term\(s\): vr/mem4, vr/av1"):
        build_weighting("manual", NAMES, weights={"cad/*": 1.0})
    with pytest.raises(UsageError, match=r"match no term: cad/mem5"):
        build_weighting("manual", NAMES, weights={"*": 1.0, "cad/mem5": 1.0})


def test_aw13_softmax_weights() -> None:
    w = build_weighting("aw13", NAMES)
    assert w.param_names() == ["bce", "mem4", "av1"]
    assert w.params.tolist() == [1.0, 1.0, 1.0]  # reference init: ones → uniform softmax
    total, logs = w(T(BCE), terms())
    assert total.item() == pytest.approx((0.75 + (0.25 + 0.5) + (1.0 + 2.0)) / 3)
    # params [0, ln 2, ln 3] → softmax [1, 2, 3]/6: total = (1·BCE + 2·(CAD+VR)_mem4 + 3·(CAD+VR)_av1)/6.
    with torch.no_grad():
        w.params.copy_(T([0.0, LN(2), LN(3)]))
    total, logs = w(T(BCE), terms())
    assert total.item() == pytest.approx((1 * 0.75 + 2 * 0.75 + 3 * 3.0) / 6)
    assert logs["w/bce"] + logs["w/cad/mem4"] + logs["w/cad/av1"] == pytest.approx(1.0)  # a softmax
    assert logs["w/cad/mem4"] == logs["w/vr/mem4"] == pytest.approx(2 / 6)  # shared within the pair
    total.backward()
    assert w.params.grad is not None


def test_aw25_separate_cad_and_vr() -> None:
    w = build_weighting("aw25", NAMES)
    # Reference layout: all CAD, then all VR (CAD_k at k, VR_k at k + #pairs).
    assert w.param_names() == ["bce", "cad/mem4", "cad/av1", "vr/mem4", "vr/av1"]
    with torch.no_grad():
        w.params.copy_(T([0.0, LN(2), LN(3), LN(4), 0.0]))  # softmax [1, 2, 3, 4, 1]/11
    total, logs = w(T(BCE), terms())
    hand = (1 * 0.75 + 2 * 0.25 + 3 * 1.0 + 4 * 0.5 + 1 * 2.0) / 11
    assert total.item() == pytest.approx(hand)
    assert logs["w/vr/mem4"] == pytest.approx(4 / 11)
    assert sum(logs[k] for k in logs if k.startswith("w/")) == pytest.approx(1.0)


def uw_value(loss: float, w: float) -> float:
    return loss / (2 * w * w) + math.log(1 + w * w)


def uw_grad(loss: float, w: float) -> float:
    # d/dw [L/(2w²) + ln(1+w²)] = −L/w³ + 2w/(1+w²)
    return -loss / w**3 + 2 * w / (1 + w * w)


@pytest.mark.parametrize("w0", [1.0, 2.0])
def test_uw13_value_and_gradient(w0: float) -> None:
    w = build_weighting("uw13", NAMES)
    assert w.param_names() == ["bce", "mem4", "av1"]
    ws = [w0, 2.0, 1.0]
    with torch.no_grad():
        w.params.copy_(T(ws))
    total, logs = w(T(BCE), terms())
    groups = [0.75, 0.25 + 0.5, 1.0 + 2.0]  # BCE, CAD+VR of mem4, CAD+VR of av1
    assert total.item() == pytest.approx(sum(uw_value(L, x) for L, x in zip(groups, ws, strict=True)))
    # Written out: the BCE's L/(2w0²) + ln(1 + w0²), then mem4 at w = 2 (L/8 + ln 5), av1 at w = 1 (L/2 + ln 2).
    bce_part = 0.75 / (2 * w0 * w0) + LN(1 + w0 * w0)
    assert total.item() == pytest.approx(bce_part + 0.75 / 8 + LN(5) + 3.0 / 2 + LN(2))
    total.backward()
    assert w.params.grad.tolist() == pytest.approx([uw_grad(L, x) for L, x in zip(groups, ws, strict=True)])
    # d/dw at w = 2: −L/8 + 4/5; at w = 1: −L + 1.
    assert w.params.grad[1:].tolist() == pytest.approx([-0.75 / 8 + 0.8, -3.0 + 1])
    assert logs["w/bce"] == pytest.approx(1 / (2 * w0 * w0))
    assert logs["w/cad/mem4"] == logs["w/vr/mem4"] == pytest.approx(1 / 8)
    assert logs["uw/reg"] == pytest.approx(sum(LN(1 + x * x) for x in ws))


def test_uw25_value_and_gradient() -> None:
    w = build_weighting("uw25", NAMES)
    assert w.param_names() == ["bce", "cad/mem4", "cad/av1", "vr/mem4", "vr/av1"]
    ws = [1.0, 2.0, 1.0, 1.0, 2.0]
    with torch.no_grad():
        w.params.copy_(T(ws))
    losses = [0.75, 0.25, 1.0, 0.5, 2.0]  # in param order
    total, logs = w(T(BCE), terms())
    assert total.item() == pytest.approx(sum(uw_value(L, x) for L, x in zip(losses, ws, strict=True)))
    total.backward()
    assert w.params.grad.tolist() == pytest.approx([uw_grad(L, x) for L, x in zip(losses, ws, strict=True)])
    assert logs["w/vr/av1"] == pytest.approx(1 / 8) and logs["w/cad/av1"] == pytest.approx(1 / 2)


def test_full_mtd_parameter_layout() -> None:
    names = build_loss("mtd").term_names()
    w13 = build_weighting("uw13", names)
    w25 = build_weighting("uw25", names)
    assert w13.params.numel() == 13 and w25.params.numel() == 25
    blocks = [f"{b}{layer}" for b in ("mem", "av", "va") for layer in range(1, 5)]
    # Reference index k = 4·i + j + 1 over [fus, av, va] × layers; 25D: CAD_k at k, VR_k at k + 12.
    assert w13.param_names() == ["bce", *blocks]
    assert w25.param_names() == ["bce", *(f"cad/{b}" for b in blocks), *(f"vr/{b}" for b in blocks)]
    # At init (all ones): every task L/2 + ln 2.
    vals = {n: T(0.1) for n in names}
    total, _ = w25(T(BCE), vals)
    assert total.item() == pytest.approx(BCE / 2 + 24 * 0.05 + 25 * LN(2), rel=1e-6)
    # Fewer layers: 1 + pairs (13D) / 1 + terms (25D).
    few = build_loss("mtd", layers="fus4,av1").term_names()
    assert build_weighting("uw13", few).params.numel() == 3
    assert build_weighting("aw25", few).params.numel() == 5


def test_uw_min_abs_guard() -> None:
    w = build_weighting("uw13", ["cad/mem4"], min_abs=1e-3)
    with torch.no_grad():
        w.params.copy_(T([1.0, 1e-4]))
    total, logs = w(T(BCE), {"cad/mem4": T(2.0)})
    # w² → max(w², 1e-6): weight 1/(2e-6) = 5e5 instead of 1/(2e-8) = 5e7.
    assert logs["w/cad/mem4"] == pytest.approx(5e5)
    assert total.item() == pytest.approx(uw_value(BCE, 1.0) + 2.0 * 5e5 + LN(1 + 1e-6), rel=1e-6)
    total.backward()
    assert w.params.grad[1].item() == 0.0  # inside the guard the objective does not depend on w
    unguarded = build_weighting("uw13", ["cad/mem4"])
    with torch.no_grad():
        unguarded.params.copy_(T([1.0, 1e-4]))
    assert unguarded(T(BCE), {"cad/mem4": T(2.0)})[1]["w/cad/mem4"] == pytest.approx(5e7)


def test_term_mismatch_and_shape_errors() -> None:
    w = build_weighting("uniform", NAMES)
    with pytest.raises(ValueError, match=r"missing \['vr/av1'\], unexpected \['vr/av2'\]"):
        w(T(BCE), {**{k: T(1.0) for k in NAMES[:3]}, "vr/av2": T(1.0)})
    with pytest.raises(ValueError, match="scalar"):
        w(T(BCE), {**terms(), "vr/av1": torch.ones(2)})
    with pytest.raises(ValueError, match="duplicate"):
        build_weighting("uniform", ["a", "a"])
