"""The contract of every registered loss, every weighting and every method of every task's method table.

Each loss is run on a tiny real teacher/student pair (VocaLiST for the sync losses, MulT and the video-only
student for the emotion losses); a registered loss, weighting or method table entry without a case fails here.
The contract: avkd/losses/base.py (losses), avkd/losses/weighting.py, avkd/losses/methods.py.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from avkd.core.errors import UsageError
from avkd.losses import LOSSES, WEIGHTINGS, build_loss, build_weighting, list_losses, list_weightings
from avkd.losses.emotion import CRDBatch, contrast_indices
from avkd.losses.layers import parse_layers
from avkd.losses.methods import Method
from avkd.models import Tapped, build_model
from avkd.tasks import TASKS

B = 4
#: MulT lengths (text, audio, vision): text = vision / 10, so EDAM-S student maps have the teacher's shape.
LENGTHS = (2, 20, 20)
MULT = {"d": 10, "num_heads": 2, "layers": 2}
N_DATA, NCE_K = 12, 3


# ---------------------------------------------------------------------------------------------- pairs


@dataclass
class Pair:
    teacher: nn.Module
    student: nn.Module
    inputs: tuple[torch.Tensor, ...]
    labels: Any


def sync_pair() -> Pair:
    """VocaLiST-lite teacher (width 16) and student (width 8): 8 heads each, same layers and token counts."""
    torch.manual_seed(0)
    teacher = build_model("vocalist_lite", width=16, channels=(4, 4, 8, 8, 16))
    student = build_model("vocalist_lite", width=8, channels=(4, 4, 8, 8, 8))
    g = torch.Generator().manual_seed(1)
    video, mel = torch.rand(B, 15, 48, 96, generator=g), torch.rand(B, 1, 80, 16, generator=g) * 8 - 4
    return Pair(teacher.eval(), student.train(), (video, mel), torch.tensor([1.0, 0.0, 1.0, 0.0]))


def syncnet_pair(labels: list[float]) -> Pair:
    """Thin SyncNet teacher and student (avkd/models/syncnet.py), for the embedding objectives, which read the
    student's ``video``/``audio`` taps and the ``labels`` (clip index per window, or the in-sync flag)."""
    torch.manual_seed(0)
    thin = {"embed_dim": 8, "audio_channels": (4,) * 6, "video_channels": (4,) * 6}
    teacher, student = build_model("syncnet", **thin), build_model("syncnet", **thin)
    g = torch.Generator().manual_seed(1)
    video, mfcc = torch.rand(B, 3, 5, 224, 224, generator=g) * 255, torch.randn(B, 1, 13, 20, generator=g)
    return Pair(teacher.eval(), student.train(), (video, mfcc), torch.tensor(labels))


def emotion_pair(proxy: str = "edam_s") -> Pair:
    """MulT (complete, the branch of student configuration 5) and the configuration-5 student."""
    torch.manual_seed(0)
    teacher = build_model("mult", branch="complete", **MULT)
    student = build_model("mult_student", config=5, proxy=proxy, **MULT)
    g = torch.Generator().manual_seed(1)
    t_l, t_a, t_v = LENGTHS
    inputs = (
        torch.randn(B, t_l, 300, generator=g),
        torch.randn(B, t_a, 74, generator=g),
        torch.randn(B, t_v, 35, generator=g),
    )
    return Pair(teacher.eval(), student.train(), inputs, torch.tensor([0, 3, 6, 2]))


def crd_pair() -> Pair:
    """The emotion pair with CRD's targets: each sample's row and NCE_K negatives of other classes."""
    pair = emotion_pair()
    labels_all = np.arange(N_DATA) % 7
    rows = np.array([0, 5, 9, 2])
    negatives = contrast_indices(labels_all, NCE_K, np.random.default_rng(1), which=rows)
    pair.labels = CRDBatch(torch.tensor(labels_all[rows]), torch.tensor(rows), torch.tensor(negatives))
    return pair


@dataclass(frozen=True)
class Case:
    kwargs: dict[str, Any]
    pair: Callable[[], Pair]
    id: str = ""


def crd(site: str) -> Case:
    kwargs = {"site": site, "n_data": N_DATA, "nce_k": NCE_K, "config": 5, "num_layers": 2}
    return Case({**kwargs, "seq_lengths": LENGTHS}, crd_pair, id=site)


#: Loss name -> the cases it is checked with.
CASES: dict[str, list[Case]] = {
    "bce": [Case({}, sync_pair)],
    "kd": [Case({}, sync_pair), Case({"mode": "binary"}, sync_pair, id="binary")],
    "rkd": [Case({}, sync_pair)],
    "fitnets": [Case({}, sync_pair), Case({"trainable_projection": False}, sync_pair, id="frozen")],
    "cad_vr": [Case({"layers": "av1,va2", "components": "vr"}, sync_pair)],
    "mtd": [Case({}, sync_pair)],
    "nmtd": [Case({"layers": "fusion1-4", "clamp_va": False}, sync_pair)],
    "minilm": [Case({}, sync_pair)],
    "crd": [crd("final"), crd("penultimate"), crd("post-attention"), crd("attention")],
    "edam-s": [Case({"config": 5, "num_layers": 2}, emotion_pair)],
    "edam-t": [Case({"config": 5, "num_layers": 2}, lambda: emotion_pair(proxy="same"))],
    "pm": [Case({}, lambda: syncnet_pair([0, 0, 1, 1]))],
    "contrastive": [Case({}, lambda: syncnet_pair([1.0, 0.0, 1.0, 0.0]))],
}
#: Training objectives of the student alone (avkd/losses/embedding.py): terms, but no teacher.
STUDENT_ONLY = {"pm", "contrastive"}


def _params() -> list:
    params = []
    for name in list_losses():
        for i, case in enumerate(CASES.get(name) or [None]):
            case_id = (case.id or str(i)) if case is not None else "no-case"
            params.append(pytest.param(name, case, id=f"{name}-{case_id}"))
    return params


def _require(name: str, case: Case | None) -> Case:
    if case is None:
        pytest.fail(f"loss {name!r} is registered but has no contract case: add one to CASES in {__file__}")
    return case


def run(loss: nn.Module, pair: Pair, teacher_mode: str) -> tuple[Tapped, Tapped]:
    """Teacher and student forwards requesting exactly ``loss.taps()``, the teacher under ``teacher_mode``."""
    req = loss.tap_request()
    ctx = torch.inference_mode() if teacher_mode == "inference_mode" else nullcontext()
    with ctx:
        t = pair.teacher(*pair.inputs, taps=req) if req else Tapped(pair.teacher(*pair.inputs), {})
    s = pair.student(*pair.inputs, taps=req) if req else Tapped(pair.student(*pair.inputs), {})
    return t, s


# --------------------------------------------------------------------------------------------- losses


def test_every_case_is_a_registered_loss() -> None:
    assert set(CASES) == set(list_losses()), set(CASES) ^ set(list_losses())


@pytest.mark.parametrize(("name", "case"), _params())
def test_name_is_the_canonical_name_and_bogus_arguments_are_refused(name: str, case: Case | None) -> None:
    case = _require(name, case)
    assert build_loss(name, **case.kwargs).name == name
    with pytest.raises(UsageError, match=rf"bad arguments for loss '{name}'.*bogus"):
        build_loss(name, bogus=1)


def test_aliases_build_the_canonical_loss() -> None:
    aliases = LOSSES.aliases()
    assert aliases, "no loss alias registered: the check below would be empty"
    for alias, canonical in aliases.items():
        kwargs = CASES[canonical][0].kwargs
        via_alias, direct = build_loss(alias, **kwargs), build_loss(canonical, **kwargs)
        assert via_alias.name == canonical and alias not in list_losses()
        assert type(via_alias) is type(direct) and via_alias.term_names() == direct.term_names()


@pytest.mark.parametrize("teacher_mode", ["inference_mode", "autograd"])
@pytest.mark.parametrize(("name", "case"), _params())
def test_terms_taps_and_gradients(name: str, case: Case | None, teacher_mode: str) -> None:
    case = _require(name, case)
    pair = case.pair()
    loss = build_loss(name, **case.kwargs)
    loss.setup(student=pair.student, teacher=pair.teacher)
    names = loss.term_names()  # known before any forward (a weighting sizes its parameters from it)
    # Requesting exactly loss.taps() works, and gives exactly those taps from both models.
    assert (loss.tap_request() is None) == (loss.taps() == [])
    t, s = run(loss, pair, teacher_mode)
    assert sorted(t.taps) == sorted(s.taps) == sorted(loss.taps())
    assert t.logits.is_inference() == (teacher_mode == "inference_mode")
    terms = loss(s, t, pair.labels)
    assert list(terms) == names
    for term, value in terms.items():
        assert value.dim() == 0 and value.dtype == torch.float32, term
        assert torch.isfinite(value), term
    if not terms:  # the student alone: nothing to distil, so the stage may skip the teacher pass
        assert not loss.uses_teacher
        return
    assert loss.uses_teacher == (name not in STUDENT_ONLY)
    sum(terms.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in pair.student.parameters())
    assert all(p.grad is None for p in pair.teacher.parameters())  # detached, even with autograd on
    trainable = [p for p in loss.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in trainable)  # FitNets' projection, CRD's embedding heads


# ----------------------------------------------------------------------------------------- weightings

TERMS = ["cad/mem4", "vr/mem4", "cad/av1", "vr/av1"]
WEIGHTING_CASES: dict[str, dict[str, Any]] = {
    "uniform": {"alpha": 0.5},
    "manual": {"weights": {"*": 0.5, "vr/*": 2.0}},
    "aw13": {},
    "aw25": {},
    "uw13": {},
    "uw25": {"min_abs": 1e-3},
}


def test_every_weighting_has_a_case() -> None:
    assert set(WEIGHTING_CASES) == set(list_weightings())


@pytest.mark.parametrize("name", list_weightings())
def test_weighting_contract(name: str) -> None:
    if name not in WEIGHTING_CASES:
        pytest.fail(f"weighting {name!r} has no case in WEIGHTING_CASES ({__file__})")
    w = build_weighting(name, TERMS, **WEIGHTING_CASES[name])
    assert w.name == name and name in WEIGHTINGS
    bce = torch.tensor(0.7, requires_grad=True)
    values = {n: torch.tensor(0.1 * (i + 1), requires_grad=True) for i, n in enumerate(TERMS)}
    total, logs = w(bce, values)
    assert total.dim() == 0 and torch.isfinite(total)
    assert logs["total"] == pytest.approx(total.item()) and logs["bce"] == pytest.approx(0.7)
    expected = {"total", "bce", "w/bce", *TERMS, *(f"w/{n}" for n in TERMS)}
    assert expected <= set(logs) and set(logs) - expected <= {"uw/reg"}
    total.backward()
    # Every term and the BCE reach the objective with a positive effective weight.
    for n, v in values.items():
        assert v.grad is not None and v.grad.item() > 0, n
        assert logs[f"w/{n}"] == pytest.approx(v.grad.item(), rel=1e-5), n
    assert bce.grad.item() == pytest.approx(logs["w/bce"], rel=1e-5)
    assert all(p.grad is not None for p in w.parameters())  # the learnable weights learn
    with pytest.raises(UsageError, match=rf"bad arguments for weighting '{name}'.*bogus"):
        build_weighting(name, TERMS, **WEIGHTING_CASES[name], bogus=1)
    with pytest.raises(ValueError, match="missing"):
        w(bce, dict(list(values.items())[:-1]))


# -------------------------------------------------------------------------------------------- methods

#: Every task's method table (a new task's methods are checked too).
TABLES = {name: TASKS.get(name).methods for name in TASKS}


def _methods() -> list:
    return [pytest.param(task, name, id=f"{task}-{name}") for task, table in TABLES.items() for name in table]


@pytest.mark.parametrize(("task", "name"), _methods())
def test_method_names_registered_parts(task: str, name: str) -> None:
    method = TABLES[task].get(name)
    assert isinstance(method, Method) and method.description
    assert method.loss is None or method.loss in LOSSES, method.loss
    assert method.weighting is None or method.weighting in WEIGHTINGS, method.weighting
    if method.loss is None:
        assert method.options == {} and method.layers is None
        return
    options = dict(method.options)
    if method.layers is not None:  # the CAD/VR methods: the stage passes the layer selection
        parse_layers(method.layers)
        options["layers"] = method.layers
    loss = build_loss(method.loss, **options)
    assert loss.name == LOSSES.canonical(method.loss)
    if method.weighting is not None:
        weighting = build_weighting(method.weighting, loss.term_names())
        assert weighting.term_names == loss.term_names()
