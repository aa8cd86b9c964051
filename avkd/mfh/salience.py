"""Algorithm 1's permutation salience on trained models over a whole data split (``avkd mfh diagnose``).

This is variant (B) of docs/reference/avsiam-mfh-syncnet.md (§2.6, the RAVDESS code): the two
models are given; for each channel k at a tap of one model (the input features, or a layer) and each of M
permutations, channel k is permuted across the samples of a batch inside that model's forward, and the score is
the MSE between its logits and the *other* model's unpermuted logits. A high score means that breaking the
channel breaks the agreement of teacher and student: the channel carries decisive information that both
models use, the modality-general part (§2.6 (A) step 3). The scores are averaged over the M permutations and
min-max normalised to [0, 1] (:func:`avkd.mfh.linear.min_max`: a constant vector becomes zeros).

What avkd does differently from the official helper, and why:

- **The statistics cover the whole split.** The official ``cal_overlap_tag`` assigns each batch's score to the
  same entry, so only the last batch counts (§2.5). Here the squared differences are summed over every batch
  and divided by their number once, so every sample weighs the same. ``last_batch_only=True`` puts the
  official behaviour back, for comparison only.
- **Both sides.** The official student-side loop is commented out (it stays zero, and min-max of zeros is NaN,
  §2.5); here the student's channels are scored the same way against the teacher's unpermuted logits.
- **M permutations in one forward.** For a chunk of channels, the batch is repeated once per (channel,
  permutation) with that channel permuted in that copy, and the copies go through the model together
  (``max_batch`` bounds the samples of one forward). A permutation is drawn for every batch, channel and
  repeat from ``numpy.random.default_rng([seed, side, batch])`` (:func:`avkd.mfh.linear.draw_permutations`),
  so the result does not depend on the chunking.
- **The other model's logits are aligned first** (``align``, on by default). Variant (B) scores models trained
  *jointly* with an MSE between their logits, so their logits are on one scale. avkd's teacher and student are
  trained apart: the demo's MulT teacher (64 % acc7) and its video-only student (33 %) differ by an MSE of 18.7
  per logit, mostly scale and offset, and permuting a channel the teacher relies on shrinks its logits towards
  their mean, hence towards the student's, which *lowers* the score. So each side is scored against the other
  model's logits mapped onto its own by the least-squares affine map ``[z, 1] @ A`` (fitted once over the
  split): the part of the other model's prediction that agrees with this one, on this one's scale; the
  baseline is then what the other model cannot explain (8.7 on the demo). ``align=False`` scores the raw
  logits. Alignment removes the scale and offset, not the effect of correlated channels (next paragraph): on the
  demo's fusion layer the score still correlated −0.75 with the teacher's reliance on the channel (−0.90
  unaligned), and the freeze check's "keep-general" teacher kept channels it barely used either way (test acc7
  13.2 % against random 16.8 % and keep-specific 30.5 %; 29.9 % unaligned).
- **Two more numbers per channel, from the same forwards**: the *reliance* ``MSE(own logits with k permuted,
  own unpermuted logits)`` (how much the model's own prediction moves: permutation importance) and the
  *baseline* ``MSE(own, other)`` without any permutation; ``gain = raw − baseline`` is how much disagreement
  breaking k adds.

For a linear model with independent channels (``t = Σ_k t_k``, ``t_k`` the contribution of channel k; the
permuted copy of x_k is independent of the rest) the expectations are ``reliance_k = 2·Var(t_k)`` and
``gain_k = 2·Cov(t_k, s)``, s the other model's (aligned) logits: a channel the other model has no information
about has gain 0 whatever its reliance, and a channel whose contribution the other model reproduces has
gain = reliance.
With correlated channels (a layer's, usually) gain_k gains a term ``−2·w_k·(Cov(x_k, t) − w_k·Var(x_k))``: the
gains then say which channels matter but do not add up to a share of anything (on the emotion demo's fusion
layer Σ gain / Σ reliance came out at −14.9, unaligned), which is why :mod:`avkd.mfh.diagnose` estimates γ another way.

A batch of one sample cannot be permuted and is skipped. Samples are axis 0 of every tensor at the tap and
channels its last axis; an input tap's tensors are (B, T, F) sequences, and a channel is then a feature's whole
sequence, moved to another sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from avkd.core.config import bounded
from avkd.mfh.linear import draw_permutations, min_max

__all__ = [
    "Probe",
    "SalienceConfig",
    "SalienceResult",
    "SideSalience",
    "permutation_salience",
    "permuted_copies",
]

#: Seed-sequence tags that keep the two sides' permutations apart.
_SIDES = {"teacher": 1, "student": 2}


class Probe(Protocol):
    """One model cut at a tap: ``features(batch)`` gives the tensors at the tap (samples on axis 0, channels on
    the last axis), ``logits(features)`` finishes the forward from them to (B, classes) logits. The channels of
    the tensors listed in ``permuted`` are scored, in order; the other tensors ride along unchanged."""

    names: list[str]
    permuted: tuple[int, ...]

    def features(self, batch: Any) -> tuple[Tensor, ...]: ...

    def logits(self, features: tuple[Tensor, ...]) -> Tensor: ...


@dataclass
class SalienceConfig:
    """How the permutation salience is computed (module docstring)."""

    #: M, the permutations per channel (avkd's default for the diagnostic: 10,
    #: docs/reference/avsiam-mfh-syncnet.md §2.7; RAVDESS 10).
    permutations: int = bounded(10, ge=1)
    seed: int = bounded(0, ge=0)
    #: Samples in one permuted forward (bounds the memory: chunks of channels × M copies of a batch).
    max_batch: int = bounded(4096, ge=1)
    #: The official helper's behaviour: only the last batch counts (§2.5), for comparison only.
    last_batch_only: bool = False
    #: Compare each model with the other's logits mapped onto its own by the best affine map over the split
    #: (module docstring); False = the raw logits, as variant (B) does with jointly trained models.
    align: bool = True


@dataclass
class SideSalience:
    """One model's channels: the sums behind each statistic, and the statistics as properties."""

    names: list[str]
    agree_sum: np.ndarray  # Σ (own logits, k permuted − other's logits)², per channel
    reliance_sum: np.ndarray  # Σ (own logits, k permuted − own logits)², per channel
    terms: int = 0  # squared terms per channel in each sum (M · samples · classes)
    baseline_sum: float = 0.0  # Σ (own − other)², unpermuted
    baseline_terms: int = 0
    mean_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))  # Σ of each channel's values
    mean_terms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    samples: int = 0

    @classmethod
    def empty(cls, names: Sequence[str]) -> SideSalience:
        n = len(names)
        return cls(list(names), np.zeros(n), np.zeros(n), mean_sum=np.zeros(n), mean_terms=np.zeros(n))

    @property
    def raw(self) -> np.ndarray:
        """Algorithm 1's score before normalisation: mean MSE(own permuted, other), per channel."""
        return self.agree_sum / max(self.terms, 1)

    @property
    def baseline(self) -> float:
        return self.baseline_sum / max(self.baseline_terms, 1)

    @property
    def gain(self) -> np.ndarray:
        """How much disagreement breaking the channel adds: raw − baseline."""
        return self.raw - self.baseline

    @property
    def reliance(self) -> np.ndarray:
        """How much the model's own logits move when the channel is permuted (permutation importance)."""
        return self.reliance_sum / max(self.terms, 1)

    @property
    def salience(self) -> np.ndarray:
        """The min-max normalised score in [0, 1] (Algorithm 1 step 3)."""
        return min_max(torch.from_numpy(self.raw)).numpy()

    @property
    def means(self) -> np.ndarray:
        """Each channel's mean over the split (over samples and every other axis): what the freeze check puts in
        its place."""
        return self.mean_sum / np.maximum(self.mean_terms, 1)

    def reset(self) -> None:
        self.agree_sum[:] = 0
        self.reliance_sum[:] = 0
        self.terms, self.baseline_sum, self.baseline_terms, self.samples = 0, 0.0, 0, 0
        self.mean_sum[:] = 0
        self.mean_terms[:] = 0


@dataclass
class SalienceResult:
    teacher: SideSalience
    student: SideSalience
    #: Batches that counted (a batch of one sample cannot be permuted).
    batches: int


def permuted_copies(
    features: tuple[Tensor, ...], which: int, channels: Tensor, perms: Tensor
) -> tuple[Tensor, ...]:
    """The tensors repeated ``J = len(channels) · M`` times along a new leading axis, flattened to (J·B, ...),
    with, in copy ``c·M + m``, channel ``channels[c]`` of tensor ``which`` taken from sample ``perms[c, m, b]``
    for sample b. ``perms`` is (len(channels), M, B)."""
    n_ch, m, b = perms.shape
    j = n_ch * m
    out = []
    for index, tensor in enumerate(features):
        big = tensor.unsqueeze(0).expand(j, *tensor.shape)
        if index == which:
            big = big.clone()
            cols = channels.repeat_interleave(m)  # (J,)
            values = tensor.movedim(-1, 0)[cols]  # (J, B, *rest): each copy's channel, unpermuted
            moved = values[torch.arange(j).unsqueeze(1), perms.reshape(j, b)]  # samples reordered per copy
            big.movedim(-1, 1)[torch.arange(j), cols] = moved
        out.append(big.reshape(j * b, *tensor.shape[1:]))
    return tuple(out)


def _offsets(probe: Probe, features: tuple[Tensor, ...]) -> list[tuple[int, int, int]]:
    """(tensor index, first global channel, channels) of each scored tensor."""
    spans, start = [], 0
    for index in probe.permuted:
        width = features[index].shape[-1]
        spans.append((index, start, width))
        start += width
    if start != len(probe.names):
        raise ValueError(f"the probe names {len(probe.names)} channels, its tensors have {start}")
    return spans


def _side(
    probe: Probe,
    features: tuple[Tensor, ...],
    own: Tensor,
    other: Tensor,
    perms: Tensor,
    acc: SideSalience,
    max_batch: int,
) -> None:
    """Add one batch's permuted statistics of one model to ``acc``; ``perms`` (channels, M, B)."""
    _, m, b = perms.shape
    chunk = max(1, max_batch // (m * b))
    for index, first, width in _offsets(probe, features):
        tensor = features[index].double()
        acc.mean_sum[first : first + width] += tensor.reshape(-1, width).sum(dim=0).numpy()
        acc.mean_terms[first : first + width] += tensor.numel() // width
        for lo in range(0, width, chunk):
            channels = torch.arange(lo, min(lo + chunk, width))
            copies = permuted_copies(
                features, index, channels, perms[first + lo : first + lo + len(channels)]
            )
            z = probe.logits(copies).double().reshape(len(channels), m, b, -1)
            acc.agree_sum[first + lo : first + lo + len(channels)] += (
                (z - other).square().sum(dim=(1, 2, 3)).numpy()
            )
            acc.reliance_sum[first + lo : first + lo + len(channels)] += (
                (z - own).square().sum(dim=(1, 2, 3)).numpy()
            )
    acc.terms += m * own.numel()
    acc.baseline_sum += float((own - other).square().sum())
    acc.baseline_terms += own.numel()
    acc.samples += b


def _affine(source: Tensor, target: Tensor) -> Tensor:
    """Least-squares ``[source, 1] @ map ≈ target`` over the split: (K + 1, K) float64."""
    design = torch.cat([source, torch.ones(len(source), 1, dtype=source.dtype)], dim=1)
    return torch.linalg.lstsq(design, target, driver="gelsd").solution


def _apply(z: Tensor, mapping: Tensor | None) -> Tensor:
    return z if mapping is None else z @ mapping[:-1] + mapping[-1]


def _logits(
    teacher: Probe, student: Probe, batch: Any
) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...], Tensor, Tensor]:
    ft, fs = teacher.features(batch), student.features(batch)
    zt, zs = teacher.logits(ft).double(), student.logits(fs).double()
    if zt.shape != zs.shape:
        raise ValueError(f"teacher logits {tuple(zt.shape)} and student logits {tuple(zs.shape)} differ")
    return ft, fs, zt, zs


def permutation_salience(
    teacher: Probe, student: Probe, batches: Iterable[Any], config: SalienceConfig | None = None
) -> SalienceResult:
    """Score every channel of both probes over ``batches`` (module docstring). The models must be in eval mode;
    everything runs under ``torch.inference_mode``. With ``config.align`` the batches are read twice (the first
    time to fit the two affine maps), so they must be an iterable that can be read again (a DataLoader, a list)."""
    config = config or SalienceConfig()
    sides = {"teacher": SideSalience.empty(teacher.names), "student": SideSalience.empty(student.names)}
    used = 0
    with torch.inference_mode():
        to_teacher = to_student = None
        if config.align:
            pairs = [_logits(teacher, student, batch)[2:] for batch in batches]
            if pairs:
                zt_all, zs_all = torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
                to_teacher, to_student = _affine(zs_all, zt_all), _affine(zt_all, zs_all)
        for number, batch in enumerate(batches):
            ft, fs, zt, zs = _logits(teacher, student, batch)
            b = zt.shape[0]
            if b < 2:
                continue  # one sample cannot be permuted
            if config.last_batch_only:
                for acc in sides.values():
                    acc.reset()
            used += 1
            for name, probe, feats, own, other in (
                ("teacher", teacher, ft, zt, _apply(zs, to_teacher)),
                ("student", student, fs, zs, _apply(zt, to_student)),
            ):
                perms = draw_permutations(
                    [config.seed, _SIDES[name], number], config.permutations, len(probe.names), b
                ).transpose(0, 1)  # (channels, M, B)
                _side(probe, feats, own, other, perms, sides[name], config.max_batch)
    if not used:
        raise ValueError("no batch of two or more samples to permute")
    return SalienceResult(teacher=sides["teacher"], student=sides["student"], batches=used)
