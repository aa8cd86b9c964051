"""The sync track's distillation losses (MTDVocaLiST and its baselines), registered by name.

Facts come from docs/reference/vocalist.md §5 and the MTDVocaLiST paper (ICASSP 2024, equations 1-4, "the paper").
The contract every loss follows is :mod:`avkd.losses.base`.

Term naming: ``cad/{block}{layer}`` and ``vr/{block}{layer}`` (blocks ``mem``/``av``/``va``, "mem" is the paper's
"fus"/fusion block, layers 1-based: ``cad/mem4``); ``kd``; ``rkd/distance``, ``rkd/angle``;
``fitnets/{tap}`` (``fitnets/mem.emb``). A weighting reads the part before the first ``/`` as the component
and the part after it as the group (13D weights share one parameter per group).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avkd.core.errors import UsageError
from avkd.losses.base import DistillLoss, full_precision, register_loss, teacher_tensor
from avkd.losses.layers import Pair, parse_layers
from avkd.models.attention import Tapped
from avkd.models.distributed import gather_with_grad

__all__ = [
    "BceLoss",
    "CadVrLoss",
    "FitNetsLoss",
    "KDLoss",
    "RKDLoss",
    "attention_map",
    "kl_div_mean",
    "value_relation",
]

#: The va logits are clamped to this minimum before the softmax (§5.2, official ``clamp(min=1e-5)``).
VA_CLAMP_MIN = 1e-5


# ------------------------------------------------------------------------------------- map functions


def attention_map(scores: Tensor, temperature: float = 1.0, clamp_min: float | None = None) -> Tensor:
    """CAD (paper eq. 1) from pre-softmax scores S (…, Tq, Tk): ``softmax(S/τ, dim=-1)`` in float32.

    ``clamp_min`` (the reference's va quirk, §5.2) first replaces S by ``S.clamp(min=clamp_min)``: that removes
    the −inf mask entries and flattens every logit below it. The reference clamps *before* dividing by τ.
    """
    s = scores.float()
    if clamp_min is not None:
        s = s.clamp(min=clamp_min)
    return F.softmax(s / temperature, dim=-1)


def value_relation(v: Tensor, temperature: float = 1.0) -> Tensor:
    """VR (paper eq. 1) from the values V (B, H, Tk, d_h): ``softmax((V·d_h^-½)Vᵀ/τ, dim=-1)`` (B, H, Tk, Tk).

    The scale is computed here from V's own d_h (each model uses its own, §5.2), with the same Python-float
    factor as the attention module's ``v_scaled`` tap, so only the ``.v`` tap is needed.
    """
    v = v.float()
    rel = torch.matmul(v * (v.size(-1) ** -0.5), v.transpose(-1, -2))
    return F.softmax(rel / temperature, dim=-1)


def kl_div_mean(p_s: Tensor, p_t: Tensor) -> Tensor:
    """KL(teacher ‖ student) with the reference's reduction: ``Σ p_t·(log p_t − log p_s) / numel``.

    This equals ``nn.KLDivLoss(reduction="mean")(log(p_s), p_t)`` of torch ≤ 2.11 (§5.2): an **elementwise** mean over every entry
    (B·H·Tq·Tk), not ``batchmean``, and the log is taken of the softmax *output* (not ``log_softmax``) as the
    reference does. The paper writes D_KL(CAD_s‖CAD_t) (eq. 2), but the code, which produced its numbers,
    computes KL(p_t‖p_s) = Σ p_t log(p_t/p_s); we follow the code.

    Numeric guard (the only deviation): ``log p_s`` is computed as ``log(p_s.clamp_min(tiny))`` with ``tiny``
    the smallest normal float32 (≈1.18e-38). Where ``p_s ≥ tiny`` this is bit-identical to ``log(p_s)``; where
    ``p_s == 0`` (a masked −inf logit, or an underflow) it gives ≈ −87.3 instead of −inf, so an entry with
    ``p_t == 0`` contributes exactly 0 (instead of 0·(−inf) = NaN) and one with ``p_t > 0`` a large but finite
    value. The clamp passes no gradient, which is also what the exact softmax gradient is at such an entry.
    ``p_t·log p_t`` uses ``xlogy`` (0·log 0 = 0), as ``KLDivLoss`` does.
    """
    p_s = p_s.float()
    p_t = p_t.float()
    log_s = torch.log(p_s.clamp_min(torch.finfo(torch.float32).tiny))
    # Written out rather than F.kl_div(..., reduction="mean"): the formula KLDivLoss uses, without its
    # deprecation warning, and safe from the announced change of "mean" to mean "batchmean".
    return (torch.xlogy(p_t, p_t) - p_t * log_s).mean()


# ---------------------------------------------------------------------------------------------- losses


class BceLoss(DistillLoss):
    """The student alone (plain BCE, docs/reference/vocalist.md §5.4 "Plain BCE"): no taps and no terms.

    An empty loss, so that the BCE baseline goes through the same path as every distillation method; the
    BCE itself is computed by the stage and weighted by :mod:`avkd.losses.weighting`.
    """

    uses_teacher = False

    @full_precision
    def forward(self, student: Tapped, teacher: Tapped, labels: Tensor | None = None) -> dict[str, Tensor]:
        return {}


class KDLoss(DistillLoss):
    """Soft-target KD (Hinton et al.; docs/reference/vocalist.md §5.4 ``KD.py``, ``[KD] T=5``): one term ``kd``, already × T².

    ``mode="batch"`` (default, what the paper's KD number used): the scalar logits z (B,) are turned into one
    distribution **over the batch**: ``p_t = softmax(z_t/T, dim=0)``, ``log p_s = log_softmax(z_s/T, dim=0)``,
    and ``kd = T²·KLDivLoss(batchmean)(log p_s, p_t) = T²·Σ_b p_t,b (log p_t,b − log p_s,b) / B``. It transfers
    how the teacher *ranks* the samples of a batch, so it depends on the batch composition and size.

    ``mode="binary"``: the standard per-sample alternative for a sigmoid classifier: ``p = σ(z/T)`` is a
    Bernoulli per sample and ``kd = T²·mean_b [p_t log(p_t/p_s) + (1−p_t) log((1−p_t)/(1−p_s))]`` (computed
    with ``logsigmoid`` for stability). Each sample is matched to its own teacher probability.
    """

    def __init__(self, temperature: float = 5.0, mode: Literal["batch", "binary"] = "batch") -> None:
        super().__init__()
        if mode not in ("batch", "binary"):
            raise UsageError(f"kd mode must be 'batch' or 'binary', got {mode!r}")
        if temperature <= 0:
            raise UsageError(f"kd temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.mode = mode

    def term_names(self) -> list[str]:
        return ["kd"]

    @full_precision
    def forward(self, student: Tapped, teacher: Tapped, labels: Tensor | None = None) -> dict[str, Tensor]:
        t = self.temperature
        z_s = student.logits.float().reshape(-1) / t
        z_t = teacher_tensor(teacher.logits).float().reshape(-1) / t
        if self.mode == "batch":
            kd = F.kl_div(F.log_softmax(z_s, dim=0), F.softmax(z_t, dim=0), reduction="batchmean")
        else:
            ls_s, ls_t = F.logsigmoid(z_s), F.logsigmoid(z_t)  # log p
            ln_s, ln_t = F.logsigmoid(-z_s), F.logsigmoid(-z_t)  # log (1 − p)
            kd = (ls_t.exp() * (ls_t - ls_s) + ln_t.exp() * (ln_t - ln_s)).mean()
        return {"kd": kd * t * t}


class RKDLoss(DistillLoss):
    """Relational KD (Park et al., CVPR 2019; docs/reference/vocalist.md §5.4 ``RKD.py``): distance and angle potentials.

    On features f (B, ·) flattened per sample, teacher side without grad:

    * distance: ``d_ij = ‖f_i − f_j‖`` (diagonal 0), divided by the mean of its positive entries;
      ``rkd/distance = w_d · smooth_l1(d_s, d_t)`` (mean over all B² entries, diagonal included).
    * angle: ``e_ij = (f_j − f_i)/‖f_j − f_i‖`` (0 for j = i), ``a_ijk = e_ij·e_ik``;
      ``rkd/angle = w_a · smooth_l1(a_s, a_t)`` (mean over all B³ entries).

    Resolutions: the reference does not say which features RKD used (its forward ``(f_s, f_t)`` fits neither
    trainer); we use ``pooled`` (the max-pooled fusion output (B, D), the last representation before the
    head), configurable with ``feature=``. The reference module multiplies w_d=25 and w_a=50 internally
    and returns their sum; we return the two terms **already multiplied** by w_d and w_a (so ``uniform``
    weighting reproduces ``BCE + RKD``), named ``rkd/distance`` and ``rkd/angle``; pass ``w_d=1, w_a=1`` to
    weight them elsewhere. Relational, so no projection between widths. Meaningful for B ≥ 3; a batch of 1
    (e.g. an epoch's last partial batch) gives terms of exactly 0 instead of the reference's NaN.
    """

    def __init__(
        self, w_d: float = 25.0, w_a: float = 50.0, feature: str = "pooled", eps: float = 1e-12
    ) -> None:
        super().__init__()
        self.w_d = float(w_d)
        self.w_a = float(w_a)
        self.feature = feature
        self.eps = eps

    def taps(self) -> list[str]:
        return [self.feature]

    def term_names(self) -> list[str]:
        return ["rkd/distance", "rkd/angle"]

    def _pdist(self, e: Tensor) -> Tensor:
        # The reference's pdist: the Gram-matrix expansion, clamped before the sqrt (a zero distance would
        # give an infinite gradient), diagonal forced to 0.
        sq = e.pow(2).sum(dim=1)
        d = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * (e @ e.t())).clamp(min=self.eps).sqrt()
        eye = torch.eye(e.size(0), dtype=torch.bool, device=e.device)
        return d.masked_fill(eye, 0.0)

    def _normalise(self, d: Tensor) -> Tensor:
        # The reference's d / d[d > 0].mean(), written as sum / count: the same number whenever some distance is
        # positive (zeros add nothing to the sum), no boolean indexing (a device sync on CUDA), and 0 instead
        # of NaN when there is none (a batch of 1, or identical features): the terms are then 0, not NaN.
        count = (d > 0).sum().clamp_min(1)
        return d / (d.sum() / count).clamp_min(self.eps)

    @staticmethod
    def _angles(e: Tensor) -> Tensor:
        diff = e.unsqueeze(0) - e.unsqueeze(1)  # diff[i, j] = e_j − e_i
        unit = F.normalize(diff, p=2, dim=2)
        return torch.bmm(unit, unit.transpose(1, 2)).reshape(-1)

    @full_precision
    def forward(self, student: Tapped, teacher: Tapped, labels: Tensor | None = None) -> dict[str, Tensor]:
        s = self.student_tap(student, self.feature)
        t = self.teacher_tap(teacher, self.feature)
        if s.dim() == 3:  # (T, B, D) taps: samples are on dim 1
            s, t = s.transpose(0, 1), t.transpose(0, 1)
        # Relations over the global batch under data parallelism (identity in one process): every pair of samples,
        # not only the pairs that happen to share a process; the gather keeps the student's gradient.
        s = gather_with_grad(s.float().reshape(s.size(0), -1))
        t = gather_with_grad(t.float().reshape(t.size(0), -1))
        with torch.no_grad():
            d_t = self._normalise(self._pdist(t))
            a_t = self._angles(t)
        d_s = self._normalise(self._pdist(s))
        a_s = self._angles(s)
        return {
            "rkd/distance": self.w_d * F.smooth_l1_loss(d_s, d_t),
            "rkd/angle": self.w_a * F.smooth_l1_loss(a_s, a_t),
        }


class FitNetsLoss(DistillLoss):
    """FitNets hints (Romero et al.; docs/reference/vocalist.md §5.4 ``FitNet.py``): ``beta · MSE(f_s, proj(f_t))`` per feature.

    ``proj = Linear(teacher_dim → student_dim)``: the **teacher is projected down** to the student width, as in
    the reference (Linear(512→200)), with PyTorch's default Linear init. One term per feature tap,
    ``fitnets/{tap}``, already × beta (default 100, the reference's Beta). The default feature is ``mem.emb``,
    the final fusion output (16, B, D) = the reference's ``emb='last'`` and the paper's "last layer
    representation" (the reference's default ``'both'`` would be ``features=("mem.emb", "av.emb", "va.emb")``
    with one shared projection; their terms are then separate rather than summed). MSE is the elementwise mean,
    so the reference's (T,B)→(B,T) transpose does not change it.

    ``trainable_projection``: in the reference the Linear was never given to an optimiser, so it stayed a
    frozen random projection. Here it is a trainable parameter of the loss by default (the FitNets paper
    trains its regressor; the stage must put ``loss.parameters()`` in the optimiser);
    ``trainable_projection=False`` reproduces the reference (``requires_grad=False``, still in the state dict).

    Widths: pass ``student_dim`` / ``teacher_dim``, or leave them None and call :meth:`setup` with the two models
    (their ``width``) before building the optimiser; :meth:`forward` raises if the projection does not exist.
    """

    def __init__(
        self,
        student_dim: int | None = None,
        teacher_dim: int | None = None,
        beta: float = 100.0,
        features: str | Sequence[str] = ("mem.emb",),
        trainable_projection: bool = True,
    ) -> None:
        super().__init__()
        self.features = [features] if isinstance(features, str) else list(features)
        if not self.features:
            raise UsageError("fitnets needs at least one feature tap")
        self.beta = float(beta)
        self.trainable_projection = trainable_projection
        self.proj: nn.Linear | None = None
        if student_dim is not None and teacher_dim is not None:
            self._build(int(student_dim), int(teacher_dim))
        elif student_dim is not None or teacher_dim is not None:
            raise UsageError("fitnets: give both student_dim and teacher_dim, or neither (then call setup())")

    def _build(self, student_dim: int, teacher_dim: int) -> None:
        self.proj = nn.Linear(teacher_dim, student_dim)
        self.proj.requires_grad_(self.trainable_projection)

    def setup(self, student: nn.Module, teacher: nn.Module) -> None:
        """Create the projection from the models' ``width`` (no-op if it already exists with those sizes)."""
        try:
            d_s, d_t = int(student.width), int(teacher.width)  # type: ignore[arg-type]
        except AttributeError:
            raise UsageError(
                "fitnets: the models have no 'width'; pass student_dim and teacher_dim"
            ) from None
        if self.proj is not None:
            if (self.proj.out_features, self.proj.in_features) != (d_s, d_t):
                raise ValueError(
                    f"fitnets projection is {self.proj.in_features}→{self.proj.out_features} but the models "
                    f"are teacher {d_t} → student {d_s}"
                )
            return
        ref = next(iter(student.parameters()), None)
        self._build(d_s, d_t)
        if ref is not None:
            self.proj.to(ref.device)  # type: ignore[union-attr]

    def taps(self) -> list[str]:
        return list(self.features)

    def term_names(self) -> list[str]:
        return [f"fitnets/{f}" for f in self.features]

    @full_precision
    def forward(self, student: Tapped, teacher: Tapped, labels: Tensor | None = None) -> dict[str, Tensor]:
        if self.proj is None:
            raise ValueError("fitnets: no projection yet; pass student_dim/teacher_dim or call loss.setup()")
        out: dict[str, Tensor] = {}
        for f in self.features:
            s = self.student_tap(student, f).float()
            t = self.teacher_tap(teacher, f).float()
            out[f"fitnets/{f}"] = self.beta * F.mse_loss(s, self.proj(t))
        return out


class CadVrLoss(DistillLoss):
    """The MTD building block (paper eqs. 1-2, docs/reference/vocalist.md §5.2): KL of CAD and VR maps per (block, layer).

    For each selected (block, layer), teacher layer l ↔ student layer l, head h ↔ head h (same number of heads;
    the maps do not depend on the width, so no projection):

    * ``cad/{blk}{l}`` = τ²·KL(CAD_t ‖ CAD_s), CAD = softmax(S/τ) of the pre-softmax scores (tap
      ``{blk}.{l}.scores``). For the **va block only** and with ``clamp_va=True`` (default, = reference), S is
      first clamped to min 1e-5 for both models: this removes va's 10 −inf mask entries (which would give
      0·(−inf) = NaN in the reference KL) but also flattens every negative logit to 1e-5 — kept for parity.
      With ``clamp_va=False`` the masked entries are 0 in both maps and contribute exactly 0 (see
      :func:`kl_div_mean`; the reference's unclamped variant gave NaN there).
    * ``vr/{blk}{l}`` = τ²·KL(VR_t ‖ VR_s), VR = softmax((V·d_h^-½)Vᵀ/τ) per head, (B, H, Tk, Tk) from the tap
      ``{blk}.{l}.v`` (5×5 for mem and av, 16×16 for va).
    * KL = :func:`kl_div_mean`: elementwise mean (not batchmean), log of the softmax output, as the reference.

    Terms are ordered pair by pair in the canonical [mem (fus), av, va] × 1..4 order, CAD before VR:
    ``cad/mem1, vr/mem1, cad/mem2, ...`` (a weighting maps them onto the reference's parameter indices).
    ``components`` selects ``("cad", "vr")`` (default), ``("vr",)`` (the reference's ``_wo_CAD``, paper Table 2
    "w/o L_CAD") or ``("cad",)`` (``_wo_CAVR``, "w/o L_VR"). Taps requested: ``{blk}.{l}.scores`` for CAD and
    ``{blk}.{l}.v`` for VR, for exactly the selected pairs.
    """

    def __init__(
        self,
        layers: str | Iterable[str | Pair] = "all",
        components: str | Sequence[str] = ("cad", "vr"),
        temperature: float = 1.0,
        clamp_va: bool = True,
        num_layers: int = 4,
    ) -> None:
        super().__init__()
        self.pairs: list[Pair] = parse_layers(layers, num_layers)
        comps = [components] if isinstance(components, str) else list(components)
        bad = [c for c in comps if c not in ("cad", "vr")]
        if bad or not comps:
            raise UsageError(f"components must be a non-empty subset of ('cad', 'vr'), got {components!r}")
        self.components: tuple[str, ...] = tuple(c for c in ("cad", "vr") if c in comps)
        if temperature <= 0:
            raise UsageError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.clamp_va = clamp_va

    def taps(self) -> list[str]:
        names: list[str] = []
        for blk, layer in self.pairs:
            if "cad" in self.components:
                names.append(f"{blk}.{layer}.scores")
            if "vr" in self.components:
                names.append(f"{blk}.{layer}.v")
        return names

    def term_names(self) -> list[str]:
        return [f"{c}/{blk}{layer}" for blk, layer in self.pairs for c in self.components]

    @full_precision
    def forward(self, student: Tapped, teacher: Tapped, labels: Tensor | None = None) -> dict[str, Tensor]:
        tau = self.temperature
        scale = tau * tau
        out: dict[str, Tensor] = {}
        for blk, layer in self.pairs:
            if "cad" in self.components:
                name = f"{blk}.{layer}.scores"
                s, t = self.student_tap(student, name), self.teacher_tap(teacher, name)
                _check_same(s, t, name, dims=4)
                clamp = VA_CLAMP_MIN if (blk == "va" and self.clamp_va) else None
                p_s, p_t = attention_map(s, tau, clamp), attention_map(t, tau, clamp)
                out[f"cad/{blk}{layer}"] = scale * kl_div_mean(p_s, p_t)
            if "vr" in self.components:
                name = f"{blk}.{layer}.v"
                s, t = self.student_tap(student, name), self.teacher_tap(teacher, name)
                _check_same(s, t, name, dims=3)  # d_h may differ
                out[f"vr/{blk}{layer}"] = scale * kl_div_mean(value_relation(s, tau), value_relation(t, tau))
        return out


def _check_same(s: Tensor, t: Tensor, name: str, dims: int) -> None:
    if s.dim() != 4 or t.dim() != 4 or s.shape[:dims] != t.shape[:dims]:
        raise ValueError(
            f"tap {name!r}: student {tuple(s.shape)} and teacher {tuple(t.shape)} do not match on "
            f"(B, H, T{', T' if dims == 4 else ''}); CAD/VR need the same heads and token counts"
        )


# ------------------------------------------------------------------------------------ registrations


@register_loss
def bce() -> DistillLoss:
    """Plain BCE (the student alone, docs/reference/vocalist.md §5.4): no taps, no terms. Weighting: ``uniform``."""
    return BceLoss()


@register_loss
def kd(temperature: float = 5.0, mode: Literal["batch", "binary"] = "batch") -> DistillLoss:
    """Hinton KD (docs/reference/vocalist.md §5.4, T=5): term ``kd`` (× T²); ``mode`` batch (reference) or binary. Weighting:
    ``uniform`` (total = BCE + kd). Taps: none (logits only)."""
    return KDLoss(temperature=temperature, mode=mode)


@register_loss
def rkd(w_d: float = 25.0, w_a: float = 50.0, feature: str = "pooled") -> DistillLoss:
    """RKD (docs/reference/vocalist.md §5.4): terms ``rkd/distance`` (× w_d), ``rkd/angle`` (× w_a) on ``pooled``. Weighting:
    ``uniform``. Taps: ``pooled``."""
    return RKDLoss(w_d=w_d, w_a=w_a, feature=feature)


@register_loss
def fitnets(
    student_dim: int | None = None,
    teacher_dim: int | None = None,
    beta: float = 100.0,
    features: str | Sequence[str] = ("mem.emb",),
    trainable_projection: bool = True,
) -> DistillLoss:
    """FitNets (docs/reference/vocalist.md §5.4): ``fitnets/mem.emb`` = beta·MSE(f_s, Linear(D_t→D_s)(f_t)). Needs the two
    widths (``student_dim=``, ``teacher_dim=``) or a ``loss.setup(student=, teacher=)`` call. Weighting: ``uniform``. Taps: ``mem.emb``."""
    return FitNetsLoss(
        student_dim=student_dim,
        teacher_dim=teacher_dim,
        beta=beta,
        features=features,
        trainable_projection=trainable_projection,
    )


# CAD+VR, MTD and NMTD take CadVrLoss's own arguments: the classes are the entrypoints (build_loss checks
# arguments against their signatures), so the three do not repeat one parameter list.
register_loss(CadVrLoss, name="cad_vr")


@register_loss(name="mtd")
class MTDLoss(CadVrLoss):
    """MTD (paper §3 eq. 4, docs/reference/vocalist.md §5.2): CAD+VR on all 12 layers; the paper's best MTDVocaLiST pairs it
    with **uncertainty weighting, 25D** (``uw25``; ``uw13`` is the run script's default, §3.2). The terms are
    identical to ``nmtd``: MTD and NMTD differ only in the weighting, which the method chooses
    (:data:`avkd.tasks.sync.methods.METHODS`)."""


@register_loss(name="nmtd")
class NMTDLoss(CadVrLoss):
    """NMTD (paper eq. 3): the same CAD+VR terms as ``mtd``, weighted ``uniform`` (reference "equal-weight
    all-layers", total = BCE + Σ_12 (CAD+VR)), or ``manual`` / ``aw13`` / ``aw25`` (paper §4.3, Fig. 3)."""


@register_loss
def minilm(
    components: str | Sequence[str] = ("cad", "vr"),
    temperature: float = 1.0,
    layers: str | Iterable[str | Pair] | None = None,
    num_layers: int = 4,
) -> DistillLoss:
    """MiniLM* (paper §4.2, docs/reference/vocalist.md §5.4 ``transdistill.py``): CAD+VR of the **last fusion layer** only
    (``cad/mem4``, ``vr/mem4``), τ=1, added to BCE with weight 1 (``uniform``). ``components=("vr",)`` /
    ``("cad",)`` are the paper's Table 2 ablations "NMTD w/o L_CAD" / "w/o L_VR" (reference ``_wo_CAD`` /
    ``_wo_CAVR``, also on fusion layer 4, uniform). ``layers`` (default None = the last fusion layer) exists so
    a stage can pass its ``--layers``; anything else than the last fusion layer is no longer MiniLM*.
    Taps: ``mem.4.scores``, ``mem.4.v``."""
    sel = [("mem", num_layers)] if layers is None else layers
    return CadVrLoss(sel, components, temperature, True, num_layers)
