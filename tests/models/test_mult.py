"""MulT (MOSEI, unaligned) and the video-only EDAM student: shapes, parameter counts, state-dict names, taps,
NaN-free masking, student configurations, one training step.

Numbers come from docs/reference/mult-mosei.md §1.5 (parameter counts, measured on the reference code), §1.7
(attention-map shapes and masked fractions) and §5.2/§5.5/§5.6 (student).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from avkd.core.errors import UsageError
from avkd.models import Tapped, TapRequest, build_model, list_models
from avkd.models.attention import future_mask
from avkd.models.mult import MOSEI_LENGTHS, STUDENT_CONFIGS, MulT, MulTStudent

B = 2


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def teacher() -> MulT:
    torch.manual_seed(0)
    return build_model("mult").eval()


def mosei(
    b: int = B, seed: int = 0, lengths: tuple[int, int, int] = MOSEI_LENGTHS
) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    t_l, t_a, t_v = lengths
    return (
        torch.randn(b, t_l, 300, generator=g),
        torch.randn(b, t_a, 74, generator=g),
        torch.randn(b, t_v, 35, generator=g),
    )


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------------------ registry


def test_registry() -> None:
    assert {"mult", "mult_student"} <= set(list_models("mult*"))
    with pytest.raises(UsageError, match="bad arguments for model 'mult'"):
        build_model("mult", brnach="video")
    with pytest.raises(ValueError, match="branch must be one of"):
        build_model("mult", branch="lonly")
    with pytest.raises(ValueError, match="config must be one of"):
        build_model("mult_student", config=6)


# ----------------------------------------------------------------------------------- parameter counts


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"output_dim": 1}, 1_073_731),  # §1.5: full MulT as in the repo (regression)
        ({}, 1_074_817),  # output_dim 7 (seed paper)
        ({"kernel_size": 3}, 1_099_357),  # Conv1d k=3 pad=1 (seed text)
        ({"branch": "language", "output_dim": 1}, 791_731),  # lonly, all 3 mem encoders instantiated
        ({"branch": "language"}, 792_097),
        ({"branch": "audio"}, 792_097),
        ({"branch": "video"}, 792_097),
    ],
)
def test_teacher_param_counts(kwargs: dict, expected: int) -> None:
    assert n_params(build_model("mult", **kwargs)) == expected


def test_component_param_counts(teacher: MulT) -> None:
    # §1.5 breakdown: crossmodal encoder 56,010; mem encoder 220,020; convs 9,000 / 2,220 / 1,050; head.
    assert n_params(teacher.trans_l_with_a) == 56_010
    assert n_params(teacher.trans_l_with_a.layers[0]) == 11_190
    assert n_params(teacher.trans_v_mem) == 220_020
    assert n_params(teacher.trans_v_mem.layers[0]) == 43_980
    assert [n_params(c) for c in (teacher.proj_l, teacher.proj_a, teacher.proj_v)] == [9_000, 2_220, 1_050]
    assert [n_params(teacher.proj1), n_params(teacher.proj2), n_params(teacher.out_layer)] == [
        32_580,
        32_580,
        1_267,
    ]
    # lonly minus the two unused mem encoders = 352,057 (§1.5).
    lonly = build_model("mult", branch="language")
    assert n_params(lonly) - n_params(lonly.trans_a_mem) - n_params(lonly.trans_v_mem) == 352_057


def test_student_prototype_param_count() -> None:
    assert n_params(build_model("mult_student", config=5)) == 199_747  # §5.6


# ------------------------------------------------------------------------------------------- structure


def test_state_dict_names(teacher: MulT) -> None:
    keys = set(teacher.state_dict())
    for k in [
        "proj_l.weight",
        "proj_a.weight",
        "proj_v.weight",
        "trans_l_with_a.layers.0.self_attn.in_proj_weight",
        "trans_l_with_a.embed_positions._float_tensor",
        "trans_l_with_a.version",
        "trans_v_with_a.layers.4.layer_norms.1.weight",
        "trans_a_mem.layers.4.fc2.bias",  # max(layers, 3) quirk: 5 mem layers (index 4 exists)
        "trans_l_mem.layer_norm.weight",
        "proj1.weight",
        "proj2.bias",
        "out_layer.weight",
    ]:
        assert k in keys, k
    assert "trans_l_mem.layers.5.fc1.weight" not in keys
    assert teacher.state_dict()["trans_l_mem.layers.0.fc1.weight"].shape == (240, 60)
    assert teacher.state_dict()["proj_l.weight"].shape == (30, 300, 1)
    # A partial model has only its own crossmodal blocks but all three mem encoders (reference l.58-60).
    lonly = set(build_model("mult", branch="language").state_dict())
    assert "trans_l_with_v.layer_norm.bias" in lonly
    assert not any(k.startswith(("trans_a_with", "trans_v_with")) for k in lonly)
    assert {"trans_a_mem.layer_norm.bias", "trans_v_mem.layer_norm.bias"} <= lonly


def test_state_dict_round_trip(teacher: MulT) -> None:
    other = build_model("mult")
    other.load_state_dict(teacher.state_dict(), strict=True)
    x = mosei(1, seed=3)
    torch.testing.assert_close(other.eval()(*x), teacher(*x))


def test_attention_dropout_by_source(teacher: MulT) -> None:
    # §1.2 "Meas": l_with_a 0.0, l_with_v 0.0, a_with_l 0.1, a_with_v 0.0, v_with_l 0.1, v_with_a 0.0; mem 0.1.
    expected = {"l_with_a": 0.0, "l_with_v": 0.0, "a_with_l": 0.1, "a_with_v": 0.0, "v_with_l": 0.1}
    expected |= {"v_with_a": 0.0, "l_mem": 0.1, "a_mem": 0.1, "v_mem": 0.1}
    for name, p in expected.items():
        enc = getattr(teacher, f"trans_{name}")
        assert {layer.self_attn.attn_dropout for layer in enc.layers} == {p}, name


# ---------------------------------------------------------------------------------------------- shapes


def test_teacher_shapes(teacher: MulT) -> None:
    x = mosei()
    assert teacher(*x).shape == (B, 7)
    for branch in ("language", "audio", "video"):
        assert build_model("mult", branch=branch, output_dim=1).eval()(*x).shape == (B, 1)
    with pytest.raises(ValueError, match="audio must be"):
        teacher(x[0], x[2], x[2])


# ------------------------------------------------------------------------------------------------ taps

# §1.7: (Tq, Tk) and masked fraction per block at MOSEI lengths (L=50, A=V=500).
MAPS = {
    "l_with_a": ((50, 500), 0.049),
    "a_with_l": ((500, 50), 0.0),
    "a_with_v": ((500, 500), 0.499),
    "l_mem": ((50, 50), 0.49),
}


def test_taps_match_forward(teacher: MulT) -> None:
    x = mosei(seed=1)
    plain = teacher(*x)
    req = TapRequest(
        [f"{b}.*.{n}" for b in MAPS for n in ("scores", "probs")], "l_with_a.*.q", "l_with_a.*.k"
    )
    out = teacher(*x, taps=TapRequest(*req.patterns, "last_hs", "hidden", "proj_l"))
    assert isinstance(out, Tapped)
    # The explicit (tapped) path gives the same logits as the SDPA path.
    torch.testing.assert_close(out.logits, plain, atol=1e-5, rtol=1e-5)
    taps = out.taps
    assert taps["last_hs"].shape == taps["hidden"].shape == (B, 180)
    assert taps["proj_l"].shape == (50, B, 30)
    for block, ((tq, tk), frac) in MAPS.items():
        heads = 5
        for layer in range(1, 6):
            s, p = taps[f"{block}.{layer}.scores"], taps[f"{block}.{layer}.probs"]
            assert p.shape == s.shape == (B, heads, tq, tk)
            assert not p.isnan().any() and not s.isnan().any()
            torch.testing.assert_close(p.sum(-1), torch.ones(B, heads, tq))
            torch.testing.assert_close(p, torch.softmax(s, dim=-1))
            masked = torch.isneginf(s)
            assert masked.float().mean().item() == pytest.approx(frac, abs=1e-3)
            assert (p[masked] == 0).all()
    # Scores are the per-head logits the forward used: (Q·d_h^-½)Kᵀ + the MulT mask.
    q, k = taps["l_with_a.3.q"], taps["l_with_a.3.k"]
    assert q.shape == (B, 5, 50, 6)
    torch.testing.assert_close(taps["l_with_a.3.scores"], q @ k.transpose(-1, -2) + future_mask(50, 500))


def test_unknown_tap_is_usage_error(teacher: MulT) -> None:
    with pytest.raises(UsageError, match="match nothing"):
        teacher(*mosei(1), taps="l_with_l.1.probs")
    lonly = build_model("mult", branch="language")
    with pytest.raises(UsageError):  # unused mem encoders are not run, so they have no taps
        lonly(*mosei(1), taps="a_mem.1.probs")


def test_no_nan_with_padding_and_zero_inputs() -> None:
    torch.manual_seed(0)
    model = build_model("mult").train()  # dropout on: the training path must be NaN-free too
    t, a, v = mosei(seed=2)
    t[0], a[0], v[0] = 0.0, 0.0, 0.0  # sample 0: all padding
    t[1, :30], a[1, :400], v[1, :250] = 0.0, 0.0, 0.0  # sample 1: MOSEI-style left padding (§2.1)
    out = model(t, a, v, taps="*.1.probs")
    assert torch.isfinite(out.logits).all()
    for name, p in out.taps.items():
        assert torch.isfinite(p).all(), name
        torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1]))
    out.logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # §5.5 item 8: a map loss built from log_softmax(scores) with masked terms zeroed stays finite.
    s = model(t, a, v, taps="l_mem.1.scores").taps["l_mem.1.scores"]
    logq = F.log_softmax(s, dim=-1)
    ce = -torch.where(logq.exp() > 0, logq.exp().detach() * logq, torch.zeros_like(logq)).sum(-1).mean()
    ce.backward()
    assert torch.isfinite(ce)


# --------------------------------------------------------------------------------------------- student


def _map_shape(block: str, lengths: dict[str, int]) -> tuple[int, int]:
    if block.endswith("_mem"):
        t = lengths[block[0]]
        return (t, t)
    return (lengths[block[0]], lengths[block[-1]])


@pytest.mark.parametrize("config", [1, 2, 3, 4, 5])
def test_student_configs(config: int) -> None:
    torch.manual_seed(config)
    student = build_model("mult_student", config=config).eval()
    assert isinstance(student, MulTStudent)
    t, a, v = mosei(seed=4)
    distilled = STUDENT_CONFIGS[config].distilled
    out = student(t, a, v, taps=TapRequest([f"{b}.1.probs" for b in distilled], "proj_*", "hidden"))
    assert out.logits.shape == (B, 7)
    # Text and audio are ignored; keyword-only vision gives the same logits.
    torch.testing.assert_close(student(vision=v), out.logits, atol=1e-5, rtol=1e-5)
    assert out.taps["hidden"].shape == (B, 180 if config == 1 else 90)
    # EDAM-S proxies have the teacher's lengths (§5.5 item 4) ...
    lengths = {"l": 50, "a": 500, "v": 500}
    for m, n in lengths.items():
        assert out.taps[f"proj_{m}"].shape == (n, B, 30)
    # ... so every distilled student map has the teacher map's shape (§1.7 / §5.2).
    for block in distilled:
        p = out.taps[f"{block}.1.probs"]
        assert p.shape == (B, 5, *_map_shape(block, lengths)), block
        torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1]))
    # The distilled blocks exist under the same name in the configuration's teacher branch.
    teacher_blocks = {
        n.split(".")[0]
        for n in build_model("mult", branch=STUDENT_CONFIGS[config].teacher_branch).tap_names()
    }
    assert set(distilled) <= teacher_blocks


def test_student_same_proxy_and_zero_input() -> None:
    student = build_model("mult_student", config=5, proxy="same").eval()
    v = torch.zeros(B, 500, 35)
    out = student(vision=v, taps=["proj_l", "l_with_v.*.probs"])
    assert out.taps["proj_l"].shape == (500, B, 30)
    assert out.taps["l_with_v.5.probs"].shape == (B, 5, 500, 500)
    assert torch.isfinite(out.logits).all()
    assert all(torch.isfinite(p).all() for p in out.taps.values())
    with pytest.raises(ValueError, match="vision must be"):
        student(torch.zeros(B, 50, 300))


# -------------------------------------------------------------------------------------------- training


@pytest.mark.parametrize(("name", "kwargs"), [("mult", {}), ("mult_student", {"config": 5})])
def test_adam_step_lowers_cross_entropy(name: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    model = build_model(name, **kwargs).eval()  # eval: dropout off, so the two losses are comparable
    x = mosei(4, seed=5, lengths=(10, 40, 40))  # shorter sequences keep the test fast; any length works
    y = torch.tensor([0, 3, 6, 2])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss0 = F.cross_entropy(model(*x), y)
    opt.zero_grad()
    loss0.backward()
    opt.step()
    with torch.no_grad():
        loss1 = F.cross_entropy(model(*x), y)
    assert loss1 < loss0
