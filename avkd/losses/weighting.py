"""Combine the student's BCE with named distillation terms into one objective (paper eqs. 3-4, docs/reference/vocalist.md §5.2).

``build_weighting(name, term_names, **kwargs)`` returns a :class:`Weighting` module; calling it with the BCE
and the terms of a :class:`~avkd.losses.base.DistillLoss` gives ``(total, logs)``::

    loss = build_loss("mtd")
    weighting = build_weighting("uw25", loss.term_names())
    optimizer = Adam([*student.parameters(), *weighting.parameters(), *loss.parameters()], lr=5e-5)
    total, logs = weighting(bce, loss(s, t, labels))   # logs: {"total", "bce", "w/bce", "cad/mem4", "w/cad/mem4", ...}

========  =====================================================================================================
name      objective
========  =====================================================================================================
uniform   ``BCE + α·Σ terms`` (α=1; reference "equal-weight all-layers" = BCE + alpha·Σ_12(CAD+VR), §5.2)
manual    ``w_bce·BCE + Σ w_name·term``, weights from config (exact names or fnmatch patterns)
aw13      ``sw_0·BCE + Σ_k sw_k·(CAD_k + VR_k)``, sw = softmax(w), one w per (block, layer) group (§5.2 AW)
aw25      ``sw_0·BCE + Σ sw_j·term_j``, one softmax weight per term (CAD and VR separate)
uw13      ``Σ_τ L_τ/(2w_τ²) + ln(1 + w_τ²)`` (paper eq. 4), τ ∈ {BCE, each (block, layer) group: CAD_k+VR_k}
uw25      same, one w per term (CAD_k uses w_k, VR_k uses w_{k+12})
========  =====================================================================================================

Groups and parameter layout. A term name ``component/group`` (``cad/mem4``) belongs to group ``mem4``; a name
without ``/`` is its own group. Parameters are ``params`` (the reference's name), initialised to ones:
index 0 is the BCE's; **13D** has one more per group, in order of first appearance (for MTD's terms that is
[mem/fus, av, va] × 1..4, i.e. the reference's index k = 4·i + j + 1); **25D** has one per term, ordered by
(component, group), i.e. all CAD terms then all VR terms, so CAD_k uses index k and VR_k index k+12 as in the
reference. The names "13"/"25" describe the full 12-layer MTD; with fewer layers selected the vector is sized
``1 + #groups`` (13D) or ``1 + #terms`` (25D), e.g. 3 / 5 for ``fus4,av1``. :meth:`Weighting.param_names`
labels each index. The learnable weightings' parameters must be given to the optimiser (docs/reference/vocalist.md §3.2: the
same Adam group and schedule as the student).

Logs: ``total``, ``bce``, each term's value, and each **effective** weight: ``w/bce``, ``w/<term>`` (α or the
manual weight; the softmax value for AW; ``1/(2w²)`` for UW, plus ``uw/reg`` = Σ ln(1+w²)). All numbers are
fetched with a single device→host copy per call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any, Literal

import torch
from torch import Tensor, nn

from avkd.core.errors import UsageError
from avkd.core.registry import Registry

__all__ = [
    "WEIGHTINGS",
    "AutoWeighting",
    "ManualWeighting",
    "UncertaintyWeighting",
    "UniformWeighting",
    "Weighting",
    "build_weighting",
    "list_weightings",
    "split_term",
]

_RESERVED = ("total", "bce")


def split_term(name: str) -> tuple[str, str]:
    """``"cad/mem4"`` → ``("cad", "mem4")``; a name without ``/`` is ``(name, name)``."""
    comp, sep, group = name.partition("/")
    return (comp, group) if sep else (name, name)


class Weighting(nn.Module):
    """Base class: checks the terms against ``term_names``, stacks them, and logs.

    Subclasses implement :meth:`combine`, which gets the BCE (0-dim) and the term values (n,) in
    ``term_names`` order and returns the total and the effective weights of the BCE and of each term.
    """

    name: str = "?"

    def __init__(self, term_names: Sequence[str]) -> None:
        super().__init__()
        names = list(term_names)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate term names: {', '.join(dup)}")
        bad = [n for n in names if n in _RESERVED or n.startswith("w/")]
        if bad:
            raise ValueError(f"reserved term names: {', '.join(bad)}")
        self.term_names: list[str] = names

    def param_names(self) -> list[str]:
        """What each entry of ``params`` weighs (learnable weightings only)."""
        return []

    def combine(self, bce: Tensor, values: Tensor) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        """→ (total, weight of BCE (0-dim), weights of the terms (n,), extra logs)."""
        raise NotImplementedError

    def forward(self, bce: Tensor, terms: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """``total`` (0-dim, differentiable) and ``logs`` (plain floats) from the BCE and the named terms."""
        if set(terms) != set(self.term_names):
            missing = [n for n in self.term_names if n not in terms]
            extra = [n for n in terms if n not in self.term_names]
            raise ValueError(
                f"weighting {self.name!r} was built for other terms: missing {missing or 'none'}, "
                f"unexpected {extra or 'none'}"
            )
        bce = bce.float().reshape(())
        parts = []
        for n in self.term_names:
            v = terms[n]
            if v.numel() != 1:
                raise ValueError(f"term {n!r} must be a scalar, got shape {tuple(v.shape)}")
            parts.append(v.float().reshape(()))
        values = torch.stack(parts) if parts else bce.new_zeros(0)
        total, w_bce, w_terms, extra = self.combine(bce, values)
        # One host copy for every logged number (a .item() per number would sync the device each time).
        keys = ["total", "bce", "w/bce", *self.term_names, *(f"w/{n}" for n in self.term_names), *extra]
        flat = torch.cat(
            [
                torch.stack([total, bce, w_bce]).detach().reshape(-1),
                values.detach(),
                w_terms.detach().reshape(-1).expand(len(self.term_names)),
                *(e.detach().reshape(1) for e in extra.values()),
            ]
        )
        return total, dict(zip(keys, flat.cpu().tolist(), strict=True))


class UniformWeighting(Weighting):
    """``total = BCE + α·Σ terms`` (paper eq. 3 with uniform weights; docs/reference/vocalist.md §5.2 "equal-weight all-layers":
    ``alpha·Σ_12(CAD+VR)`` added to BCE, alpha=1). Also the fixed-weight baselines' ``BCE + loss`` (§3.2)."""

    name = "uniform"

    def __init__(self, term_names: Sequence[str], alpha: float = 1.0) -> None:
        super().__init__(term_names)
        self.alpha = float(alpha)

    def combine(self, bce: Tensor, values: Tensor) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        w = bce.new_tensor(self.alpha)
        return bce + self.alpha * values.sum(), bce.new_tensor(1.0), w, {}


class ManualWeighting(Weighting):
    """``total = w_bce·BCE + Σ w_name·term`` with fixed weights (paper eq. 3, "manual tuning"; paper §4.3 single-layer
    runs set the chosen terms to 1 and the others to 0).

    ``weights`` maps term names or fnmatch patterns to floats; the key ``"bce"`` (exact only) sets the BCE
    weight (default ``bce_weight``, 1). Resolution per term: an exact key wins; otherwise the **last** matching
    pattern in the mapping's order (later entries override earlier ones, so ``{"*": 0, "*/mem4": 1}`` keeps
    only fusion layer 4). Terms no key matches, and keys that match no term (typos), raise ``UsageError``
    listing them.
    """

    name = "manual"

    def __init__(
        self, term_names: Sequence[str], weights: Mapping[str, float], bce_weight: float = 1.0
    ) -> None:
        super().__init__(term_names)
        weights = dict(weights)
        w_bce = float(weights.pop("bce", bce_weight))
        resolved: list[float] = []
        used: set[str] = set()
        missing: list[str] = []
        for n in self.term_names:
            if n in weights:
                resolved.append(float(weights[n]))
                used.add(n)
                continue
            hits = [k for k in weights if fnmatchcase(n, k)]
            if not hits:
                missing.append(n)
                continue
            used.update(hits)
            resolved.append(float(weights[hits[-1]]))
        if missing:
            raise UsageError(f"manual weighting has no weight for term(s): {', '.join(missing)}")
        unused = [k for k in weights if k not in used]
        if unused:
            raise UsageError(
                f"manual weighting key(s) match no term: {', '.join(unused)} (terms: {', '.join(self.term_names)})"
            )
        self.bce_weight = w_bce
        self.register_buffer("weights", torch.tensor(resolved, dtype=torch.float32), persistent=False)

    def combine(self, bce: Tensor, values: Tensor) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        w = self.weights.to(values.device)
        return self.bce_weight * bce + (w * values).sum(), bce.new_tensor(self.bce_weight), w, {}


class _Learned(Weighting):
    """Shared parameter layout of AW and UW (see the module docstring)."""

    def __init__(self, term_names: Sequence[str], dims: Literal[13, 25], init: float = 1.0) -> None:
        super().__init__(term_names)
        if dims not in (13, 25):
            raise ValueError(f"dims must be 13 or 25, got {dims}")
        self.dims = dims
        splits = [split_term(n) for n in self.term_names]
        comps = list(dict.fromkeys(c for c, _ in splits))
        groups = list(dict.fromkeys(g for _, g in splits))
        if dims == 13:
            slots = [1 + groups.index(g) for _, g in splits]
            labels = ["bce", *groups]
        else:
            order = sorted(
                range(len(splits)), key=lambda i: (comps.index(splits[i][0]), groups.index(splits[i][1]))
            )
            slots = [0] * len(splits)
            for rank, i in enumerate(order):
                slots[i] = 1 + rank
            labels = ["bce", *(self.term_names[i] for i in order)]
        self._labels = labels
        self.register_buffer("slots", torch.tensor(slots, dtype=torch.long), persistent=False)
        # The reference's name and init: nn.Parameter(torch.ones(n)) (§5.2).
        self.params = nn.Parameter(torch.full((len(labels),), float(init)))

    def param_names(self) -> list[str]:
        return list(self._labels)

    def _slot_losses(self, bce: Tensor, values: Tensor) -> Tensor:
        """(n_params,) losses per parameter: [BCE, Σ terms sharing slot 1, ...]; 13D sums CAD_k+VR_k first,
        as the reference does (``w·(qk + vv)``)."""
        grouped = values.new_zeros(self.params.numel() - 1).index_add(0, self.slots - 1, values)
        return torch.cat([bce.reshape(1), grouped])


class AutoWeighting(_Learned):
    """AW, automatic (softmax) weighting, docs/reference/vocalist.md §5.2 (paper §4.3 "AW-13D/25D"): ``sw = softmax(params)``,
    ``total = sw_0·BCE + Σ_k sw_k·L_k`` with L_k = CAD_k+VR_k (13D) or each term (25D). No regulariser, as in the
    reference; the paper notes it "may lead to weight vanishing and requires gradient clipping" (a trainer
    setting; the reference's clipping call was commented out, §3.2). Logged weight: the softmax value."""

    name = "aw"

    def combine(self, bce: Tensor, values: Tensor) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        sw = torch.softmax(self.params.float(), dim=0)
        total = (sw * self._slot_losses(bce, values)).sum()
        return total, sw[0], sw[self.slots], {}


class UncertaintyWeighting(_Learned):
    """UW, uncertainty weighting: paper eq. 4, docs/reference/vocalist.md §5.2 (Kendall et al. with Liebel & Körner's
    regulariser): ``total = Σ_τ L_τ/(2w_τ²) + ln(1 + w_τ²)`` over τ ∈ {BCE, L_1, ...}, w initialised to ones.
    13D: L_k = CAD_k + VR_k per (block, layer); 25D: CAD_k uses w_k, VR_k uses w_{k+12}, each with its own
    regulariser. d/dw [L/(2w²) + ln(1+w²)] = −L/w³ + 2w/(1+w²). Logged weight: ``1/(2w²)``; ``uw/reg``.

    ``min_abs`` (default None = off, to match the reference, which has no constraint): the reference's w can
    approach 0, where 1/(2w²) explodes (pain point §7.10). With ``min_abs=m``, w² is replaced by ``max(w², m²)``
    in both the weight and the regulariser, capping each effective weight at 1/(2m²) (e.g. m=1e-3 → 5e5).
    While |w| < m the objective does not depend on that w, so it gets no gradient (only optimiser momentum can
    move it out) and the student keeps training with the capped weight. Recommended when runs blow up.
    """

    name = "uw"

    def __init__(
        self,
        term_names: Sequence[str],
        dims: Literal[13, 25],
        init: float = 1.0,
        min_abs: float | None = None,
    ) -> None:
        super().__init__(term_names, dims, init)
        if min_abs is not None and min_abs <= 0:
            raise UsageError(f"min_abs must be > 0 or None, got {min_abs}")
        self.min_abs = min_abs

    def combine(self, bce: Tensor, values: Tensor) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        w2 = self.params.float().pow(2)
        if self.min_abs is not None:
            w2 = w2.clamp_min(self.min_abs**2)
        reg = torch.log1p(w2)
        total = (self._slot_losses(bce, values) / (2 * w2) + reg).sum()
        eff = 1.0 / (2 * w2)
        return total, eff[0], eff[self.slots], {"uw/reg": reg.sum()}


# --------------------------------------------------------------------------------------------- registry

WEIGHTINGS: Registry[Callable[..., Weighting]] = Registry("weighting")


@WEIGHTINGS.register(name="uniform")
def _uniform(term_names: Sequence[str], alpha: float = 1.0) -> Weighting:
    return UniformWeighting(term_names, alpha=alpha)


@WEIGHTINGS.register(name="manual")
def _manual(term_names: Sequence[str], weights: Mapping[str, float], bce_weight: float = 1.0) -> Weighting:
    return ManualWeighting(term_names, weights=weights, bce_weight=bce_weight)


def _aw(dims: Literal[13, 25]) -> Callable[..., Weighting]:
    def make(term_names: Sequence[str], init: float = 1.0) -> Weighting:
        return AutoWeighting(term_names, dims=dims, init=init)

    make.__qualname__ = f"aw{dims}"  # one entrypoint per dimension, each its own registry entry
    return make


def _uw(dims: Literal[13, 25]) -> Callable[..., Weighting]:
    def make(term_names: Sequence[str], init: float = 1.0, min_abs: float | None = None) -> Weighting:
        return UncertaintyWeighting(term_names, dims=dims, init=init, min_abs=min_abs)

    make.__qualname__ = f"uw{dims}"
    return make


WEIGHTINGS.register(_aw(13), name="aw13")
WEIGHTINGS.register(_aw(25), name="aw25")
WEIGHTINGS.register(_uw(13), name="uw13")
WEIGHTINGS.register(_uw(25), name="uw25")


def list_weightings() -> list[str]:
    """Names accepted by :func:`build_weighting`."""
    return WEIGHTINGS.names()


def build_weighting(name: str, term_names: Sequence[str], **kwargs: Any) -> Weighting:
    """Build weighting ``name`` for the terms ``term_names`` (a loss's :meth:`term_names`).

    Unknown names and arguments raise :class:`~avkd.core.errors.UsageError`. Keyword arguments: ``alpha``
    (uniform), ``weights`` and ``bce_weight`` (manual), ``init`` (aw*, uw*), ``min_abs`` (uw*).
    """
    w = WEIGHTINGS.build(name, term_names, **kwargs)
    w.name = WEIGHTINGS.canonical(name)
    return w
