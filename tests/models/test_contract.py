"""The contract every registered model keeps, checked for each one at a CPU-sized setting.

A new family registers its entrypoints and adds a case to :data:`CASES` (kwargs that make it small, inputs of
the shapes it documents, the output shape, some tap names); a registered model without a case fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from avkd.core.errors import UsageError
from avkd.models import MODELS, Tapped, TapRequest, build_model, list_models, model_entrypoint

Inputs = tuple[torch.Tensor, ...]
B = 2


def sync_inputs(b: int, seed: int) -> Inputs:
    """``video`` (B, 3·T, 48, 96) and ``mel`` (B, 1, 80, 16·T/5) for T = 5 frames (avkd/models/vocalist.py)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 15, 48, 96, generator=g), torch.rand(b, 1, 80, 16, generator=g) * 8 - 4


def syncnet_inputs(b: int, seed: int) -> Inputs:
    """``video`` (B, 3, 5, 224, 224) BGR 0..255 and ``audio`` MFCC (B, 1, 13, 20) (avkd/models/syncnet.py)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, 5, 224, 224, generator=g) * 255, torch.randn(b, 1, 13, 20, generator=g) * 10


def avsiam_inputs(b: int, seed: int) -> Inputs:
    """``audio`` (B, 1, 32, 64) and ``video`` (B, 3, 32, 32), the toy size's inputs (avkd/models/avsiam.py)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 1, 32, 64, generator=g), torch.randn(b, 3, 32, 32, generator=g)


def mosei_inputs(b: int, seed: int) -> Inputs:
    """``text`` (B, T_l, 300), ``audio`` (B, T_a, 74), ``vision`` (B, T_v, 35) at short lengths; T_l = T_v / 10
    so that the EDAM-S student's text proxy (kernel 10, stride 10) has the teacher's length."""
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, 3, 300, generator=g),
        torch.randn(b, 30, 74, generator=g),
        torch.randn(b, 30, 35, generator=g),
    )


@dataclass(frozen=True)
class Case:
    kwargs: dict[str, Any]
    inputs: Callable[[int, int], Inputs]
    #: The output shape the family documents, for a batch of ``b``.
    out_shape: Callable[[int], tuple[int, ...]]
    #: Exact tap names to request (a front-end tap, attention internals, the head).
    taps: tuple[str, ...]
    id: str = ""


SYNC_TAPS = ("vid_prenet", "av.1.scores", "va.1.probs", "mem.1.v", "mem.emb", "pooled", "hidden")
TINY_SYNC = {"width": 16, "channels": (4, 4, 8, 8, 16), "num_heads": 4, "num_layers": 1}
TINY_MULT = {"d": 10, "num_heads": 2, "layers": 1}


def sync_case(**kwargs: Any) -> Case:
    return Case(kwargs, sync_inputs, lambda b: (b,), SYNC_TAPS)


def student_case(config: int, taps: tuple[str, ...]) -> Case:
    return Case(
        {"config": config, **TINY_MULT},
        mosei_inputs,
        lambda b: (b, 7),
        ("proj_v", *taps, "last_hs", "hidden"),
        id=f"config{config}",
    )


#: Model name -> the cases it is checked with (avkd/models/vocalist.py, avkd/models/mult.py).
CASES: dict[str, list[Case]] = {
    "vocalist": [sync_case(**TINY_SYNC)],
    "mtdvocalist": [sync_case(**TINY_SYNC)],
    "vocalist_lite": [sync_case()],  # its defaults are already CPU-sized
    "syncnet": [  # thin widths; the 224×224 input stays (its strides need it)
        Case(
            {"embed_dim": 16, "audio_channels": (4, 4, 8, 8, 8, 8), "video_channels": (4, 8, 8, 8, 8, 8)},
            syncnet_inputs,
            lambda b: (b,),
            ("audio_cnn", "video"),
        )
    ],
    "mult": [
        Case(
            TINY_MULT,
            mosei_inputs,
            lambda b: (b, 7),
            (
                "proj_l",
                "l_with_a.1.scores",
                "a_with_v.1.probs",
                "v_mem.1.v",
                "l_mem.emb",
                "last_hs",
                "hidden",
            ),
            id="complete",
        ),
        Case(
            {**TINY_MULT, "branch": "video", "output_dim": 1},
            mosei_inputs,
            lambda b: (b, 1),
            ("proj_a", "v_with_a.1.scores", "v_mem.1.probs", "hidden"),
            id="video",
        ),
    ],
    "avsiam": [
        Case(
            {"size": "toy", "num_classes": 5},
            avsiam_inputs,
            lambda b: (b, 5),
            ("patch_a", "a.1.probs", "v.2.scores", "tokens_v", "feat_a", "fusion.1.out", "pooled"),
        )
    ],
    "avsiam_emotion": [  # audio-visual in both modes, so that "*" records every tap and "head" is trained
        Case(
            {"audio_len": 30, "vision_len": 30, "patch_size": 16, "eval_mode": "av", "train_mode": "av"},
            mosei_inputs,
            lambda b: (b, 7),
            ("patch_v", "a.1.scores", "v.6.probs", "feat_v", "fusion.2.out", "pooled", "hidden"),
        )
    ],
    "avsiam_sync": [  # 16-pixel patches: 18 video + 5 audio tokens
        Case({"patch_size": 16}, sync_inputs, lambda b: (b,), ("patch_v", "a.1.probs", "v.2.scores", "video"))
    ],
    "mult_student": [
        student_case(1, ("l_with_a.1.scores", "a_mem.1.probs")),
        student_case(2, ("v_with_v.1.scores", "v_with_a.1.probs", "v_with_l.emb")),
        student_case(3, ("l_with_v.1.scores", "l_with_a.1.v")),
        student_case(4, ("a_with_v.1.scores", "a_with_l.1.out_ln")),
        student_case(5, ("v_with_v.1.scores", "l_with_v.1.probs", "a_with_v.1.k")),
    ],
}

#: The package's models; entries the test suite registers for itself (tests/oracle.py) are not part of it.
PACKAGE_MODELS = [n for n in list_models() if not model_entrypoint(n).__module__.startswith("tests.")]


def _params() -> list:
    params = []
    for name in PACKAGE_MODELS:
        for i, case in enumerate(CASES.get(name) or [None]):
            case_id = (case.id or str(i)) if case is not None else "no-case"
            params.append(pytest.param(name, case, id=f"{name}-{case_id}"))
    return params


def build(name: str, case: Case | None, seed: int = 0) -> torch.nn.Module:
    if case is None:
        pytest.fail(f"model {name!r} is registered but has no contract case: add one to CASES in {__file__}")
    torch.manual_seed(seed)
    return build_model(name, **case.kwargs)


def test_every_case_is_a_registered_model() -> None:
    assert PACKAGE_MODELS, "no model registered"
    assert set(CASES) == set(PACKAGE_MODELS), set(CASES) ^ set(PACKAGE_MODELS)


@pytest.mark.parametrize(("name", "case"), _params())
def test_builds_through_the_registry_and_refuses_bogus_arguments(name: str, case: Case | None) -> None:
    model = build(name, case)
    assert isinstance(model, torch.nn.Module) and name in MODELS
    assert sum(p.numel() for p in model.parameters()) > 0
    with pytest.raises(UsageError, match=rf"bad arguments for model '{name}'.*bogus"):
        build_model(name, bogus=1)


@pytest.mark.parametrize(("name", "case"), _params())
def test_state_dict_round_trips_strictly(name: str, case: Case | None) -> None:
    src, dst = build(name, case, seed=0).eval(), build(name, case, seed=1).eval()
    x = case.inputs(B, 0)
    with torch.no_grad():
        # Two seeds give different weights (else the equality below would prove nothing).
        assert not torch.equal(src(*x), dst(*x))
        dst.load_state_dict(src.state_dict(), strict=True)
        assert list(dst.state_dict()) == list(src.state_dict())
        assert torch.equal(src(*x), dst(*x))


@pytest.mark.parametrize(("name", "case"), _params())
def test_eval_forward_is_deterministic_finite_and_shaped(name: str, case: Case | None) -> None:
    model = build(name, case).eval()
    x = case.inputs(B, 1)
    with torch.no_grad():
        first, second = model(*x), model(*x)
        other = model(*case.inputs(B, 2))
    assert first.shape == case.out_shape(B) and first.dtype == torch.float32
    assert torch.isfinite(first).all()
    assert torch.equal(first, second)
    assert not torch.equal(first, other)  # the output depends on the input
    with torch.no_grad():  # a batch of one gives that sample's output
        torch.testing.assert_close(model(*(t[:1] for t in x)), first[:1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "case"), _params())
def test_taps_are_exactly_the_requested_ones(name: str, case: Case | None) -> None:
    model = build(name, case).eval()
    x = case.inputs(B, 3)
    with torch.no_grad():
        plain = model(*x)
        out = model(*x, taps=TapRequest(*case.taps))
        everything = model(*x, taps="*")
    assert isinstance(out, Tapped)
    assert sorted(out.taps) == sorted(case.taps)
    assert set(case.taps) <= set(model.tap_names())
    assert sorted(everything.taps) == sorted(model.tap_names())
    # The tapped forward (explicit attention where internals are requested) gives the plain forward's logits.
    torch.testing.assert_close(out.logits, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(everything.logits, plain, atol=1e-5, rtol=1e-5)
    for tap in case.taps:  # the same values whichever other taps are requested
        torch.testing.assert_close(out.taps[tap], everything.taps[tap], atol=1e-5, rtol=1e-5, msg=tap)
    with pytest.raises(UsageError, match="match nothing"):
        model(*x, taps="no_such_tap")


@pytest.mark.parametrize(("name", "case"), _params())
def test_one_adam_step_changes_the_parameters(name: str, case: Case | None) -> None:
    model = build(name, case).train()
    x = case.inputs(4, 4)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    logits = model(*x)
    loss = F.mse_loss(logits, torch.ones_like(logits))
    opt.zero_grad()
    loss.backward()
    with_grad = {k for k, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    opt.step()
    changed = {k for k, p in model.named_parameters() if not torch.equal(p.detach(), before[k])}
    assert with_grad, "no parameter received a gradient"
    assert with_grad <= changed
    # The head is trained (AVSiam's AV head is timm's ``head``).
    assert {"out_layer.weight", "classifier.weight", "netfcaud.3.weight", "head.weight"} & changed
