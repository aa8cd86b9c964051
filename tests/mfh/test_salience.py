"""Permutation salience (avkd.mfh.salience) and the probes (avkd.mfh.probes) on cases whose answer is known by
construction: ignored channels score 0, linear models give the shares of the modality Venn diagram, the whole
split counts (not only the last batch, as in the official helper), and batching changes nothing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from avkd.core.errors import UsageError
from avkd.mfh.linear import draw_permutations
from avkd.mfh.probes import build_probe, frozen_model
from avkd.mfh.salience import SalienceConfig, permutation_salience, permuted_copies
from avkd.models.mult import MulT, MulTStudent
from avkd.models.vocalist import vocalist_lite
from avkd.tasks.emotion.config import EMOTION_INPUTS


class Linear:
    """A probe of a linear model ``logits = x[:, cols] @ w`` over the batch item ``item``."""

    permuted = (0,)

    def __init__(self, w: Tensor, item: int = 0, mlp: bool = False) -> None:
        self.w, self.item, self.mlp = w.double(), item, mlp
        self.names = [f"c{k}" for k in range(w.shape[0])]

    def features(self, batch: Any) -> tuple[Tensor, ...]:
        return (batch[self.item].double(),)

    def logits(self, features: tuple[Tensor, ...]) -> Tensor:
        x = features[0]
        if x.dim() == 3:  # (B, T, C) sequences: the last step's features
            x = x[:, -1]
        z = x @ self.w
        return torch.tanh(z) * 2 if self.mlp else z


def batches_of(x: Tensor, size: int, *others: Tensor) -> list[tuple[Tensor, ...]]:
    return [tuple(t[i : i + size] for t in (x, *others)) for i in range(0, len(x), size)]


def test_channels_a_model_ignores_score_exactly_zero() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 6, generator=g)
    w = torch.randn(6, 3, generator=g)
    w[[2, 5]] = 0  # the model never reads channels 2 and 5
    probe = Linear(w)
    result = permutation_salience(probe, Linear(w), batches_of(x, 32), SalienceConfig(permutations=4))
    side = result.teacher
    # Teacher and student are the same model: the baseline disagreement is 0, every gain is the reliance.
    assert side.baseline == pytest.approx(0, abs=1e-20) and np.allclose(side.gain, side.reliance)
    assert side.reliance[[2, 5]].tolist() == [0.0, 0.0] and side.salience[[2, 5]].tolist() == [0.0, 0.0]
    assert (side.reliance[[0, 1, 3, 4]] > 0).all() and side.salience.max() == 1.0


def test_linear_models_gain_where_the_student_shares() -> None:
    """x^a = (z0, z1, z2, z3), x^b = (z0, z1, noise, noise); the teacher reads all four latents, the student is the
    best prediction of the teacher from x^b (its shared part). Then a teacher channel's gain is its reliance when
    the student has it and 0 when not (the module docstring's linear case), and Algorithm 1 ranks the shared
    channels first."""
    g = torch.Generator().manual_seed(1)
    n = 4096
    z = torch.randn(n, 4, generator=g)
    xa, xb = z, torch.cat([z[:, :2], torch.randn(n, 2, generator=g)], dim=1)
    wt = torch.tensor([[1.0, -1.0], [0.5, 0.2], [0.4, 0.3], [-0.3, 0.2]])
    ws = wt.clone()
    ws[2:] = 0  # E[t | x^b]: the shared part of the teacher
    result = permutation_salience(
        Linear(wt, item=0), Linear(ws, item=1), batches_of(xa, 512, xb), SalienceConfig(permutations=8)
    )
    t = result.teacher
    assert t.gain[:2] == pytest.approx(t.reliance[:2], rel=0.08)
    assert np.abs(t.gain[2:]).max() < 0.08 * t.reliance[2:].min()
    # reliance = 2·Var(t_k) per class, averaged over the two classes: Σ_c w_kc² (Var z = 1).
    assert t.reliance == pytest.approx((wt**2).sum(dim=1).numpy(), rel=0.08)
    assert np.argsort(-t.salience)[:2].tolist() == [0, 1]
    # The student's own noise channels: it does not read them, they score 0.
    assert result.student.reliance[2:].tolist() == [0.0, 0.0]


def _drifting_split() -> list[tuple[Tensor, ...]]:
    """Channel 0 varies in the first three batches and is constant in the last; channel 1 the other way round."""
    g = torch.Generator().manual_seed(2)
    parts = []
    for index in range(4):
        x = torch.randn(32, 2, generator=g)
        x[:, 0 if index == 3 else 1] = 0.5
        parts.append((x,))
    return parts


def test_the_whole_split_counts_not_only_the_last_batch() -> None:
    w = torch.tensor([[1.0], [1.0]])
    model = Linear(w)  # the teacher is its own student: every score is the teacher's reliance
    split = _drifting_split()
    whole = permutation_salience(model, model, split, SalienceConfig(permutations=6))
    official = permutation_salience(model, model, split, SalienceConfig(permutations=6, last_batch_only=True))
    # Over the split, channel 0 moves the teacher in three batches of four: it is the salient one. The official
    # helper's statistics are the last batch's, where only channel 1 varies.
    assert whole.teacher.salience.tolist() == [1.0, 0.0]
    assert official.teacher.salience.tolist() == [0.0, 1.0]
    assert whole.teacher.samples == 128 and official.teacher.samples == 32
    # Channel 1 varies in the last batch only, whose permutations are the same in both runs (they are seeded by
    # the batch's number): over the whole split its score is that batch's, weighted by its 32 of 128 samples.
    assert whole.teacher.raw[1] == pytest.approx(official.teacher.raw[1] * 32 / 128, rel=1e-12)
    assert whole.teacher.raw[0] > 0.1 and official.teacher.raw[0] == pytest.approx(0, abs=1e-20)


def test_batched_permutations_equal_one_copy_at_a_time() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(10, 3, 4, generator=g)  # (B, T, C)
    perms = draw_permutations([5], 3, 4, 10).transpose(0, 1)  # (C, M, B)
    copies = permuted_copies((x, x + 1), 0, torch.tensor([1, 3]), perms[[1, 3]])
    assert copies[0].shape == (2 * 3 * 10, 3, 4) and torch.equal(copies[1], (x + 1).repeat(6, 1, 1))
    for c_index, channel in enumerate((1, 3)):
        for m in range(3):
            expected = x.clone()
            expected[:, :, channel] = x[perms[channel, m], :, channel]
            j = c_index * 3 + m
            assert torch.equal(copies[0][j * 10 : (j + 1) * 10], expected)
    # The chunking (max_batch) does not change the result: the draws depend on batch and channel only.
    w = torch.randn(4, 2, generator=g)
    split = batches_of(torch.randn(40, 3, 4, generator=g), 16)
    one = permutation_salience(Linear(w, mlp=True), Linear(w * 0.5), split, SalienceConfig(max_batch=1))
    many = permutation_salience(Linear(w, mlp=True), Linear(w * 0.5), split, SalienceConfig(max_batch=10_000))
    assert np.allclose(one.teacher.raw, many.teacher.raw) and np.allclose(one.student.raw, many.student.raw)


def test_a_batch_of_one_is_skipped_and_an_empty_split_is_an_error() -> None:
    w = torch.ones(2, 1)
    with pytest.raises(ValueError, match="no batch of two or more"):
        permutation_salience(Linear(w), Linear(w), [(torch.ones(1, 2),)])
    result = permutation_salience(Linear(w), Linear(w), [(torch.randn(4, 2),), (torch.ones(1, 2),)])
    assert result.batches == 1 and result.teacher.samples == 4


def _mosei_batch(b: int = 6, t: int = 20) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(4)
    return (
        torch.randn(b, t // 10, 300, generator=g),
        torch.randn(b, t, 74, generator=g),
        torch.randn(b, t, 35, generator=g),
        torch.zeros(b),
        torch.arange(b),
    )


def _mult_pair() -> tuple[MulT, MulTStudent]:
    torch.manual_seed(0)
    return MulT(d=10, num_heads=2, layers=1).eval(), MulTStudent(5, d=10, num_heads=2, layers=1).eval()


def test_probes_finish_the_forward_exactly() -> None:
    teacher, student = _mult_pair()
    batch = _mosei_batch()
    with torch.no_grad():
        for model in (teacher, student):
            full = model(*batch[:3])
            for tap in ("input", "fusion", "last_hs", "hidden"):
                probe = build_probe(model, EMOTION_INPUTS, tap)
                assert torch.allclose(probe.logits(probe.features(batch)), full, atol=1e-6), tap
        sync = vocalist_lite(width=8, channels=[4, 4, 8, 8, 8], num_layers=1).eval()
        video, mel = torch.rand(3, 15, 48, 96), torch.randn(3, 1, 80, 16)
        for tap in ("fusion", "pooled", "hidden"):
            probe = build_probe(sync, ("video", "mel"), tap)
            assert len(probe.names) == 8
            out = probe.logits(probe.features((video, mel)))
            assert out.shape == (3, 1) and torch.allclose(out[:, 0], sync(video, mel), atol=1e-6)
    # The student reads only vision: its input channels are the 35 FACET features.
    assert build_probe(student, EMOTION_INPUTS, "input").names[-1] == "vision[34]"
    assert len(build_probe(teacher, EMOTION_INPUTS, "input").names) == 300 + 74 + 35
    with pytest.raises(UsageError, match="sync models' inputs"):
        build_probe(sync, ("video", "mel"), "input")
    with pytest.raises(UsageError, match="has taps input, fusion, last_hs, hidden"):
        build_probe(teacher, EMOTION_INPUTS, "pooled")


def test_facet_channels_the_student_ignores_score_zero() -> None:
    """A real student with the weights of FACET features 3 and 7 zeroed in its three proxy convolutions never
    reads them: their reliance and gain are exactly 0, every other channel's reliance is positive."""
    teacher, student = _mult_pair()
    with torch.no_grad():
        for name in ("proj_l", "proj_a", "proj_v"):
            getattr(student, name).weight[:, [3, 7]] = 0
    split = [_mosei_batch(6), _mosei_batch(5)]
    result = permutation_salience(
        build_probe(teacher, EMOTION_INPUTS, "input", ["vision"]),
        build_probe(student, EMOTION_INPUTS, "input"),
        split,
        SalienceConfig(permutations=2),
    )
    s = result.student
    # 0 up to float32 rounding: the permuted copies go through the model in a larger batch than the unpermuted
    # logits, whose kernels may round differently.
    others = np.delete(s.reliance, [3, 7])
    assert np.abs(s.reliance[[3, 7]]).max() < 1e-9 * others.min()
    assert np.abs(s.gain[[3, 7]]).max() < 1e-5 * np.abs(s.gain).max()
    assert (others > 0).all()
    # Normalised, they sit where a gain of 0 falls (these untrained models disagree, so some gains are < 0).
    zero = (s.baseline - s.raw.min()) / np.ptp(s.raw)
    assert s.salience[[3, 7]] == pytest.approx([zero, zero], abs=1e-6)
    assert len(result.teacher.names) == 35 and (result.teacher.reliance > 0).all()


def test_a_frozen_model_holds_its_channels() -> None:
    teacher, _ = _mult_pair()
    batch = _mosei_batch()
    probe = build_probe(teacher, EMOTION_INPUTS, "fusion")
    width = len(probe.names)
    with torch.no_grad():
        everything = frozen_model(probe, range(width), [0.1] * width)(*batch[:3])
        assert torch.allclose(everything, everything[:1].expand_as(everything))  # nothing left to tell apart
        none = frozen_model(probe, [], [])(*batch[:3])
        assert torch.equal(none, teacher(*batch[:3]))
        some = frozen_model(probe, [0, 5], [0.0, 0.0])
        hs = probe.features(batch)[0].clone()
        hs[:, [0, 5]] = 0
        assert torch.allclose(some(*batch[:3]), probe.logits((hs,)))
        inputs = build_probe(teacher, EMOTION_INPUTS, "input", ["vision"])
        frozen = frozen_model(inputs, [34], [2.0])(*batch[:3])
        vision = batch[2].clone()
        vision[..., 34] = 2.0
        assert torch.allclose(frozen, teacher(batch[0], batch[1], vision))


def test_aligned_scores_do_not_depend_on_the_other_models_scale() -> None:
    """The student's logits rescaled and shifted (a less confident copy, say) leave the teacher's aligned scores
    as they are; the raw scores (variant (B)'s distance, align=False) move."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(256, 5, generator=g)
    wt, ws = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    split = batches_of(x, 64)

    class Scaled(Linear):
        def logits(self, features: tuple[Tensor, ...]) -> Tensor:
            return 0.2 * super().logits(features) + 3.0

    for align, same in ((True, True), (False, False)):
        config = SalienceConfig(permutations=3, align=align)
        plain = permutation_salience(Linear(wt, mlp=True), Linear(ws), split, config)
        scaled = permutation_salience(Linear(wt, mlp=True), Scaled(ws), split, config)
        assert np.allclose(plain.teacher.raw, scaled.teacher.raw) == same
        assert np.allclose(plain.teacher.reliance, scaled.teacher.reliance)  # the teacher's own change
