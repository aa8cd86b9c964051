"""Seed-paper (MulT → video-only student, CMU-MOSEI) distillation losses: CRD and EDAM-S / EDAM-T.

Facts come from docs/reference/mult-mosei.md §4.1 (RepDistiller CRD, "RD") and §5 (the seed paper, "the
paper"); the numbered "items" are the ambiguities of §5.5 and the resolution taken here. Registered in the
shared loss registry of :mod:`avkd.losses.sync` (import this module to register them)::

    loss = build_loss("crd", site="penultimate", n_data=len(train_set), config=5)
    loss.setup(student, teacher)                    # builds the embedding heads + memory banks (before the optimiser)
    req = loss.tap_request()
    with torch.no_grad():
        t = teacher(text, audio, vision, taps=req) if req else Tapped(teacher(text, audio, vision), {})
    s = student(vision=vision, taps=req) if req else Tapped(student(vision=vision), {})
    terms = loss(s, t, CRDBatch(labels=y, indices=idx, contrast=neg))   # {"crd": ...}

    loss = build_loss("edam_s", config=5)           # terms "edam/a_with_v.1", ..., "edam/l_with_v.5"
    terms = loss(s, t)                              # labels not needed

**What CRD needs from the dataset, per batch** (:class:`CRDBatch`; RD's ``CIFAR100InstanceSample`` contract):

* ``indices`` (B,) int64: each sample's row in the training set (0 ≤ index < ``n_data``), the positive;
* ``contrast`` (B, K) int64: K negative row indices per sample, drawn from samples of **other classes**
  (:func:`contrast_indices`; RD's ``cls_negative``; K = the loss's ``nce_k``). A (B, K+1) tensor whose
  column 0 is the positive (RD's ``sample_idx`` layout) is accepted too;
* ``labels`` (B,) the 7-class targets (not used by the loss; carried for the stage's cross-entropy).

The stage must put ``loss.parameters()`` (the two embedding heads per distilled site) in the optimiser; the memory
banks are buffers (in the state dict), updated in place under ``no_grad`` after each training-mode forward.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avkd.core.errors import UsageError
from avkd.losses.base import DistillLoss, full_precision, register_loss, teacher_tensor
from avkd.models.attention import Tapped
from avkd.models.distributed import all_reduce_with_grad, gather_with_grad, world
from avkd.models.mult import MOSEI_LENGTHS, STUDENT_CONFIGS

__all__ = [
    "CRDBatch",
    "CRDLoss",
    "ContrastMemory",
    "EDAMLoss",
    "Embed",
    "contrast_indices",
    "nce_loss",
]

#: RD defaults (§4.1): embedding dim, NCE temperature, memory momentum; NCE eps.
FEAT_DIM = 128
NCE_T = 0.07
NCE_M = 0.5
NCE_EPS = 1e-7
#: K: RD's 16384 exceeds MOSEI's 16,326 training samples, so the default is 4096 (item 13).
NCE_K = 4096

Site = Literal["final", "penultimate", "post-attention", "attention"]
SITES: tuple[str, ...] = ("final", "penultimate", "post-attention", "attention")


# ------------------------------------------------------------------------------------------ dataset side


@dataclass(frozen=True)
class CRDBatch:
    """What :class:`CRDLoss` reads from the ``labels`` argument of ``forward`` (see the module docstring)."""

    labels: Tensor | None
    indices: Tensor
    contrast: Tensor


def contrast_indices(
    labels: Sequence[int] | np.ndarray | Tensor,
    k: int,
    rng: np.random.Generator,
    which: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """K negatives per sample, drawn from samples of **other classes** (RD ``cls_negative``, item 13).

    ``labels`` (N,) are the class labels of the whole training set (index i = sample i). Returns an int64
    array (len(which), K) (``which`` = the sample indices to draw for, default all N): row r holds indices j
    with ``labels[j] != labels[which[r]]``, drawn uniformly **without** replacement, or with replacement when
    K exceeds the number of other-class samples (RD's rule). Raises if a class has no other-class sample.
    """
    lab = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels).reshape(-1)
    if k < 1:
        raise UsageError(f"k must be >= 1, got {k}")
    rows = np.arange(lab.size) if which is None else np.asarray(which, dtype=np.int64).reshape(-1)
    pools = {c: np.flatnonzero(lab != c) for c in np.unique(lab[rows])}
    out = np.empty((rows.size, k), dtype=np.int64)
    for r, i in enumerate(rows):
        pool = pools[lab[i]]
        if pool.size == 0:
            raise ValueError(f"sample {i} (class {lab[i]!r}) has no sample of another class to contrast with")
        out[r] = rng.choice(pool, size=k, replace=k > pool.size)
    return out


# --------------------------------------------------------------------------------------------- CRD parts


class Embed(nn.Module):
    """RD ``Embed``: flatten → ``Linear(dim_in, feat_dim)`` → L2 normalise (F.normalize, eps 1e-12, where RD
    divides by the norm without eps: identical unless the norm is < 1e-12, where RD gives NaN)."""

    def __init__(self, dim_in: int, feat_dim: int = FEAT_DIM) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, feat_dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.linear(x.reshape(x.size(0), -1)), p=2, dim=1)


class ContrastMemory(nn.Module):
    """RD ``ContrastMemory`` (§4.1), device-agnostic: two banks (student ``memory_s`` = RD ``memory_v1``,
    teacher ``memory_t`` = ``memory_v2``), each n_data × feat_dim, init U(−s, s) with s = 1/sqrt(feat_dim/3);
    normalisers Z (−1 = unset) fixed once on the first batch as ``mean(out)·n_data``."""

    def __init__(self, feat_dim: int, n_data: int, nce_t: float = NCE_T, momentum: float = NCE_M) -> None:
        super().__init__()
        self.n_data, self.nce_t, self.momentum = int(n_data), float(nce_t), float(momentum)
        stdv = 1.0 / math.sqrt(feat_dim / 3)
        self.register_buffer("memory_s", torch.rand(n_data, feat_dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("memory_t", torch.rand(n_data, feat_dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("z_s", torch.tensor(-1.0))
        self.register_buffer("z_t", torch.tensor(-1.0))
        self._z_known = False  # whether z_s/z_t were checked on the host (they are set once, then constant)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._z_known = False

    def scores(self, v_s: Tensor, v_t: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """``idx`` (B, K+1), column 0 = positive. Returns (out_s, out_t), each (B, K+1):
        out_s = exp(<memory_t[idx], v_s>/T)/Z_s (student anchor vs teacher bank), out_t the converse."""
        b, kp1 = idx.shape
        w_t = self.memory_t.index_select(0, idx.reshape(-1)).view(b, kp1, -1)
        w_s = self.memory_s.index_select(0, idx.reshape(-1)).view(b, kp1, -1)
        out_s = torch.exp(torch.bmm(w_t, v_s.unsqueeze(2)).squeeze(2) / self.nce_t)
        out_t = torch.exp(torch.bmm(w_s, v_t.unsqueeze(2)).squeeze(2) / self.nce_t)
        if not self._z_known:  # one host read, on the first batch (or the first after a resume) only
            with torch.no_grad():
                if float(self.z_s) < 0:
                    # RD: Z set once, from the first batch, then constant. Under data parallelism the mean is that
                    # of the whole global batch, so every rank (and a one-process run) gets the same Z.
                    sums = all_reduce_with_grad(torch.stack([out_s.sum(), out_t.sum()]).detach())
                    count = out_s.numel() * world().size
                    self.z_s.copy_(sums[0] / count * self.n_data)
                    self.z_t.copy_(sums[1] / count * self.n_data)
            self._z_known = True
        return out_s / self.z_s, out_t / self.z_t

    @torch.no_grad()
    def update(self, v_s: Tensor, v_t: Tensor, y: Tensor) -> None:
        """m[y] ← normalise(momentum·m[y] + (1 − momentum)·v) in both banks (RD memory l.63-77).

        Under data parallelism every rank applies the whole global batch's rows (gathered), so the banks stay
        the same on every rank and equal to a one-process run's.
        """
        v_s, v_t, y = gather_with_grad(v_s.detach()), gather_with_grad(v_t.detach()), gather_with_grad(y)
        for bank, v in ((self.memory_s, v_s), (self.memory_t, v_t)):
            pos = bank.index_select(0, y) * self.momentum + v.detach().to(bank.dtype) * (1 - self.momentum)
            bank.index_copy_(0, y, pos / pos.pow(2).sum(1, keepdim=True).pow(0.5))


def nce_loss(x: Tensor, n_data: int, eps: float = NCE_EPS) -> Tensor:
    """RD ``ContrastLoss`` (CRD eq. 18): x (B, K+1) of normalised scores, column 0 the positive; m = K,
    Pn = 1/n_data: ``−[Σ_b log(P₊/(P₊+m·Pn+eps)) + Σ_{b,k} log(m·Pn/(P₋+m·Pn+eps))] / B``."""
    b, m = x.size(0), x.size(1) - 1
    mpn = m / n_data
    log_d1 = torch.log(x[:, 0] / (x[:, 0] + mpn + eps))
    log_d0 = torch.log(mpn / (x[:, 1:] + mpn + eps))
    return -(log_d1.sum() + log_d0.sum()) / b


# -------------------------------------------------------------------------------------------- helpers


def _key_modality(block: str) -> str:
    """Modality of a block's keys/values: ``X_with_Y`` → Y, ``X_mem`` → X (self-attention)."""
    return block[0] if block.endswith("_mem") else block[-1]


def _blocks_of(config: int | None, blocks: str | Iterable[str] | None) -> list[str]:
    if blocks is not None:
        out = [blocks] if isinstance(blocks, str) else list(blocks)
    elif config is not None:
        if config not in STUDENT_CONFIGS:
            raise UsageError(f"config must be one of {sorted(STUDENT_CONFIGS)}, got {config!r}")
        out = list(STUDENT_CONFIGS[config].distilled)
    else:
        raise UsageError("give config (1-5) or blocks")
    if not out or "v_with_v" in out:
        raise UsageError(f"bad distilled blocks {out!r} (non-empty; v_with_v is never distilled)")
    return out


def _layers_of(block: str, num_layers: int) -> int:
    return max(num_layers, 3) if block.endswith("_mem") else num_layers  # MulT mem quirk (§1.2)


def _seq_len(conv: nn.Module | None, length: int) -> int:
    if conv is None:
        return length
    (k,), (s,), (p,) = conv.kernel_size, conv.stride, conv.padding  # type: ignore[misc]
    return (length + 2 * p - k) // s + 1


# -------------------------------------------------------------------------------------------------- CRD


class CRDLoss(DistillLoss):
    """CRD (RD §4.1) at one of the paper's four sites (§5.3 eqs. 2, 7, 9); one term ``crd``.

    ``site``:

    * ``final``: the logits (7-d) — no taps; ``penultimate``: tap ``hidden``, the input of ``out_layer``
      (item 12; teacher 180/60, student 3·d);
    * ``post-attention`` (eq. 7): per distilled block and layer, the attention context ``probs @ v`` with heads
      concatenated (D = d or 2d), mean-pooled over queries (item 11). The model's ``out_proj`` is not tapped;
      since the Embed head is linear and mean pooling commutes with it, Embed∘out_proj is absorbed into Embed;
    * ``attention`` (eq. 9): per distilled block and layer, the map ``probs`` averaged over heads and query rows
      (the key marginal, Tk-dim, item 10: one CRD per row would need ≈ 83 GB of banks).

    Every (block, layer) of a per-layer site gets its own Embed heads and memory banks; the term is the mean of
    their CRD losses over layers and blocks (eqs. 7/9 "1/l Σ", "mean over pairs"). Each CRD loss is RD's
    ``ContrastLoss(out_s) + ContrastLoss(out_t)`` with ``nce_k`` negatives of other classes (the dataset's
    ``contrast``), T = ``nce_t`` = 0.07, momentum 0.5, feat_dim 128. Memory banks are updated only in training
    mode (``loss.train()``). Call :meth:`setup` (sizes from the models and ``seq_lengths``) before use.
    """

    def __init__(
        self,
        site: Site = "penultimate",
        n_data: int = 16326,
        nce_k: int = NCE_K,
        nce_t: float = NCE_T,
        nce_m: float = NCE_M,
        feat_dim: int = FEAT_DIM,
        config: int | None = 5,
        blocks: str | Iterable[str] | None = None,
        num_layers: int = 5,
        seq_lengths: tuple[int, int, int] = MOSEI_LENGTHS,
    ) -> None:
        super().__init__()
        if site not in SITES:
            raise UsageError(f"site must be one of {SITES}, got {site!r}")
        if n_data < 2 or nce_k < 1 or nce_t <= 0 or not 0 <= nce_m <= 1 or feat_dim < 1:
            raise UsageError("crd: need n_data >= 2, nce_k >= 1, nce_t > 0, 0 <= nce_m <= 1, feat_dim >= 1")
        self.site, self.n_data, self.nce_k = site, int(n_data), int(nce_k)
        self.nce_t, self.nce_m, self.feat_dim = float(nce_t), float(nce_m), int(feat_dim)
        self.seq_lengths = dict(zip("lav", seq_lengths, strict=True))
        if site in ("final", "penultimate"):
            self.units: list[tuple[str, int]] = [(site, 0)]
        else:
            self.units = [
                (b, i) for b in _blocks_of(config, blocks) for i in range(1, _layers_of(b, num_layers) + 1)
            ]
        self.embed_s = nn.ModuleDict()
        self.embed_t = nn.ModuleDict()
        self.memory = nn.ModuleDict()

    @staticmethod
    def _key(unit: tuple[str, int]) -> str:
        return unit[0].replace("-", "_") if unit[1] == 0 else f"{unit[0]}_{unit[1]}"

    def taps(self) -> list[str]:
        if self.site == "final":
            return []
        if self.site == "penultimate":
            return ["hidden"]
        kinds = ("probs", "v") if self.site == "post-attention" else ("probs",)
        return [f"{b}.{i}.{k}" for b, i in self.units for k in kinds]

    def term_names(self) -> list[str]:
        return ["crd"]

    def _dims(self, model: nn.Module, unit: tuple[str, int], student: bool) -> int:
        blk = unit[0]
        if self.site == "final":
            return int(model.out_layer.out_features)  # type: ignore[union-attr]
        if self.site == "penultimate":
            return int(model.out_layer.in_features)  # type: ignore[union-attr]
        if self.site == "post-attention":
            return int(getattr(model, f"trans_{blk}").embed_dim)
        mod = _key_modality(blk)  # attention: Tk = the key/value stream's length (mem blocks: own stream)
        if student:  # the proxy conv of that modality applied to the vision length
            return _seq_len(getattr(model, f"proj_{mod}"), self.seq_lengths["v"])
        return self.seq_lengths[mod]  # the teacher's input convs keep the length

    def setup(self, student: nn.Module, teacher: nn.Module) -> None:
        """Build the Embed heads (student dim → feat_dim, teacher dim → feat_dim) and the memory banks per
        unit, on the student's device. No-op for units that already exist (e.g. loaded from a state dict)."""
        ref = next(iter(student.parameters()), None)
        for unit in self.units:
            key = self._key(unit)
            if key in self.memory:
                continue
            if self.site not in ("final", "penultimate"):
                for who, m in (("student", student), ("teacher", teacher)):
                    if not hasattr(m, f"trans_{unit[0]}"):
                        raise UsageError(f"crd: the {who} has no block {unit[0]!r}")
            self.embed_s[key] = Embed(self._dims(student, unit, True), self.feat_dim)
            self.embed_t[key] = Embed(self._dims(teacher, unit, False), self.feat_dim)
            self.memory[key] = ContrastMemory(self.feat_dim, self.n_data, self.nce_t, self.nce_m)
        if ref is not None:
            self.to(ref.device)

    def _feature(self, out: Tapped, unit: tuple[str, int], teacher: bool) -> Tensor:
        get = self.teacher_tap if teacher else self.student_tap
        if self.site == "final":
            return (teacher_tensor(out.logits) if teacher else out.logits).float()
        if self.site == "penultimate":
            return get(out, "hidden").float()  # type: ignore[arg-type]
        blk, i = unit
        probs = get(out, f"{blk}.{i}.probs").float()  # type: ignore[arg-type]
        if self.site == "attention":
            return probs.mean(dim=(1, 2))  # (B, Tk): heads and query rows averaged
        v = get(out, f"{blk}.{i}.v").float()  # type: ignore[arg-type]
        ctx = torch.matmul(probs, v)  # (B, H, Tq, d_h)
        return ctx.mean(dim=2).flatten(1)  # (B, H·d_h), query-mean-pooled, heads concatenated

    def _index(self, batch: CRDBatch, device: torch.device) -> tuple[Tensor, Tensor]:
        y = batch.indices.to(device=device, dtype=torch.long).reshape(-1)
        c = batch.contrast.to(device=device, dtype=torch.long)
        if c.dim() != 2 or c.size(0) != y.numel():
            raise ValueError(f"crd: contrast must be (B, K) with B = {y.numel()}, got {tuple(c.shape)}")
        if c.size(1) == self.nce_k:
            idx = torch.cat([y.unsqueeze(1), c], dim=1)
        elif c.size(1) == self.nce_k + 1:
            idx = c
        else:
            raise ValueError(f"crd: contrast has {c.size(1)} columns, expected nce_k={self.nce_k} (or K+1)")
        return y, idx

    @full_precision
    def forward(self, student: Tapped, teacher: Tapped, labels: CRDBatch | None = None) -> dict[str, Tensor]:  # type: ignore[override]
        if not isinstance(labels, CRDBatch):
            raise ValueError("crd: pass a CRDBatch(labels, indices, contrast) as the labels argument")
        if not len(self.memory):
            raise ValueError("crd: no embedding heads yet; call loss.setup(student, teacher) first")
        y, idx = self._index(labels, student.logits.device)
        losses = []
        for unit in self.units:
            key = self._key(unit)
            v_s = self.embed_s[key](self._feature(student, unit, False))
            v_t = self.embed_t[key](self._feature(teacher, unit, True))
            mem: ContrastMemory = self.memory[key]  # type: ignore[assignment]
            out_s, out_t = mem.scores(v_s, v_t, idx)
            losses.append(nce_loss(out_s, self.n_data) + nce_loss(out_t, self.n_data))
            if self.training:
                mem.update(v_s, v_t, y)
        return {"crd": torch.stack(losses).mean()}


# ------------------------------------------------------------------------------------------------- EDAM


def _fill_masked(scores: Tensor) -> Tensor:
    """Replace −inf logits by their row's smallest finite logit (so they can be interpolated)."""
    finite = torch.isfinite(scores)
    row_min = scores.masked_fill(~finite, float("inf")).amin(dim=-1, keepdim=True)
    return torch.where(finite, scores, row_min)


class EDAMLoss(DistillLoss):
    """EDAM (paper eqs. 10-13): cross-entropy between student and teacher attention maps, per head.

    For each distilled block (``config`` → :data:`~avkd.models.mult.STUDENT_CONFIGS`, or ``blocks``) and each
    layer i (student layer i ↔ teacher layer i, head h ↔ head h, item 5), from the per-head pre-softmax
    ``scores`` taps (B, H, Tq, Tk), with temperature t (eq. 11, default 1, item 7):

    * ``log p_S = log_softmax(S_s / t)``, ``p_T = softmax(S_t / t)``; ``direction="teacher"`` (default, item 6):
      ``F = −Σ_k p_T,k · log p_S,k`` (teacher as target); ``"paper_literal"``: eq. 13 as written,
      ``F = −Σ_k p_S,k · log p_T,k``. Entries masked (−inf) in either map contribute exactly 0 (no ``0·log 0``,
      item 8; masks are identical in S and T when the shapes match).
    * F is summed over keys, averaged over query rows, heads and batch → the per-layer value.
    * ``variant="s"`` (EDAM-S↓): shapes must already be equal (the student's proxies are downsampled to the
      teacher's lengths, ``proxy="edam_s"``). ``variant="t"`` (EDAM-T↑): the teacher logits are linearly
      interpolated (bilinear over (Tq, Tk), ``align_corners=False``; masked logits first set to their row's
      minimum finite logit) to the student's (Tq, Tk), then the student's mask is applied before the softmax
      (item 9: a fixed interpolation, not a learned upsampler, so the target cannot collapse toward the student).

    Terms ``edam/{block}.{layer}`` (1-based), in block then layer order. With ``mean=True`` (default) each term
    is divided by the number of terms so that their **sum** (``uniform`` weighting) is the paper's L_KD, the
    mean over layers and pairs (eq. 12); ``mean=False`` gives the per-layer values themselves.
    """

    def __init__(
        self,
        variant: Literal["s", "t"] = "s",
        config: int | None = 5,
        blocks: str | Iterable[str] | None = None,
        num_layers: int = 5,
        temperature: float = 1.0,
        direction: Literal["teacher", "paper_literal"] = "teacher",
        mean: bool = True,
    ) -> None:
        super().__init__()
        if variant not in ("s", "t"):
            raise UsageError(f"variant must be 's' or 't', got {variant!r}")
        if direction not in ("teacher", "paper_literal"):
            raise UsageError(f"direction must be 'teacher' or 'paper_literal', got {direction!r}")
        if temperature <= 0:
            raise UsageError(f"temperature must be > 0, got {temperature}")
        self.variant, self.direction, self.temperature, self.mean = (
            variant,
            direction,
            float(temperature),
            mean,
        )
        self.pairs = [
            (b, i) for b in _blocks_of(config, blocks) for i in range(1, _layers_of(b, num_layers) + 1)
        ]

    def taps(self) -> list[str]:
        return [f"{b}.{i}.scores" for b, i in self.pairs]

    def term_names(self) -> list[str]:
        return [f"edam/{b}.{i}" for b, i in self.pairs]

    def map_loss(self, s_scores: Tensor, t_scores: Tensor) -> Tensor:
        """The per-layer EDAM value from student and teacher scores (B, H, Tq, Tk) (see the class doc)."""
        s, t = s_scores.float(), t_scores.float()
        if s.shape[:2] != t.shape[:2] or s.dim() != 4:
            raise ValueError(f"edam: student {tuple(s.shape)} vs teacher {tuple(t.shape)}: need same (B, H)")
        if s.shape != t.shape:
            if self.variant == "s":
                raise ValueError(
                    f"edam_s: student map {tuple(s.shape[2:])} != teacher {tuple(t.shape[2:])}; EDAM-S needs "
                    "the student's proxy='edam_s' and features with audio_len = vision_len = 10 * text_len "
                    "(else use edam_t)"
                )
            b, h, tq, tk = t.shape
            t = F.interpolate(
                _fill_masked(t).reshape(b * h, 1, tq, tk),
                size=s.shape[2:],
                mode="bilinear",
                align_corners=False,
            ).reshape(b, h, *s.shape[2:])
            t = t.masked_fill(~torch.isfinite(s), float("-inf"))  # the student's mask, in its geometry
        valid = torch.isfinite(s) & torch.isfinite(t)
        tau = self.temperature
        if tau != 1.0:
            s, t = s / tau, t / tau
        if self.direction == "teacher":
            # −Σ_valid p_T,k log p_S,k = lse(S)·Σ_valid p_T,k − Σ_valid p_T,k S_k: no (B, H, Tq, Tk) log-softmax is
            # formed and the target needs no graph; 2x faster forward + backward on MOSEI's 500×500 maps
            # (benchmarks/emotion.py), equal to the direct form up to float32 rounding (tested).
            with torch.no_grad():
                target = torch.softmax(t, dim=-1).masked_fill_(~valid, 0.0)
            ce = torch.logsumexp(s, dim=-1) * target.sum(dim=-1) - torch.linalg.vecdot(
                target, s.masked_fill(~valid, 0.0), dim=-1
            )
            return ce.mean()
        target, log_pred = F.log_softmax(s, dim=-1).exp(), F.log_softmax(t, dim=-1)
        # Masked entries: target is 0 there and log_pred −inf; zero the log first so no 0·(−inf) is formed.
        ce = -(target * torch.where(valid, log_pred, torch.zeros_like(log_pred))).sum(dim=-1)
        return ce.mean()

    @full_precision
    def forward(self, student: Tapped, teacher: Tapped, labels: Tensor | None = None) -> dict[str, Tensor]:
        scale = 1.0 / len(self.pairs) if self.mean else 1.0
        out: dict[str, Tensor] = {}
        for b, i in self.pairs:
            name = f"{b}.{i}.scores"
            out[f"edam/{b}.{i}"] = scale * self.map_loss(
                self.student_tap(student, name), self.teacher_tap(teacher, name)
            )
        return out


# ------------------------------------------------------------------------------------------ registrations


# CRD takes CRDLoss's own arguments (RD §4.1, paper eqs. 2/7/9; term ``crd``, labels = CRDBatch, call
# ``setup(student, teacher)``; paper/RD weight β = 0.8, α = 1): the class is the entrypoint.
register_loss(CRDLoss, name="crd")


# EDAM-S↓ (paper eqs. 12-13: equal-shaped maps, student ``proxy="edam_s"``) and EDAM-T↑ (teacher logits
# interpolated to the student's map size) are EDAMLoss with its variant fixed; terms ``edam/{block}.{l}``.
register_loss(functools.partial(EDAMLoss, "s"), name="edam-s", aliases=("edam_s",))
register_loss(functools.partial(EDAMLoss, "t"), name="edam-t", aliases=("edam_t",))
