"""The Gaussian data of the MFH study (avkd.mfh.gauss, docs/mfh.md §2): shapes, which channels carry which
latents, and the Venn-diagram fractions α, β, γ counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

from avkd.mfh.gauss import (
    HYPERPLANE_DIM,
    draw_latents,
    exp1_layout,
    exp2_layout,
    hyperplane,
    make_draws,
    table2_layout,
)


def test_exp1_overlap_4_counted_by_hand() -> None:
    # o = 4: x^b sees latents 0..9, x^a sees 6..15. Shared: 6, 7, 8, 9 (4); either: 0..15 (16); 16..19 neither.
    layout = exp1_layout(4)
    assert layout.seen_b == set(range(10)) and layout.seen_a == set(range(6, 16))
    assert layout.shared == [6, 7, 8, 9]
    assert layout.gamma == 4 / 16
    assert layout.alpha == 6 / 10 and layout.beta == 6 / 10  # 10..15 are x^a's own, 0..5 x^b's own


@pytest.mark.parametrize(
    ("make", "values", "gammas", "alphas", "betas"),
    [
        (exp1_layout, [0, 2, 4, 6, 8, 10], [0, 2 / 18, 4 / 16, 6 / 14, 8 / 12, 1], [1, 0.8, 0.6, 0.4, 0.2, 0], None),
        (exp2_layout, [0, 10, 20, 30, 40], [1, 10 / 20, 10 / 30, 10 / 40, 10 / 50], [0, 0.5, 2 / 3, 0.75, 0.8], 0),
        (table2_layout, [5, 10, 15, 20, 25, 30], [5 / 15, 10 / 20, 15 / 25, 20 / 30, 25 / 35, 30 / 40],
         [10 / 15, 10 / 20, 10 / 25, 10 / 30, 10 / 35, 10 / 40], 0),
    ],
)  # fmt: skip
def test_the_published_sweeps(make, values, gammas, alphas, betas) -> None:
    layouts = [make(v) for v in values]
    assert [lay.gamma for lay in layouts] == pytest.approx(gammas)
    assert [lay.alpha for lay in layouts] == pytest.approx(alphas)
    assert [lay.beta for lay in layouts] == pytest.approx(alphas if betas is None else [betas] * len(values))


def test_draws_carry_the_latents_in_their_channels() -> None:
    layouts = [exp1_layout(o) for o in (0, 4, 10)]
    plane = hyperplane(np.random.default_rng(3))
    assert plane.shape == (HYPERPLANE_DIM,)
    draws = make_draws(np.random.default_rng(7), 64, layouts, plane)
    z, noise_a, noise_b = draw_latents(np.random.default_rng(7), 64, layouts[0])  # the same stream again
    assert z.shape == (64, 20) and noise_a.shape == (64, 25) and noise_b.shape == (64, 50)
    for layout, d in zip(layouts, draws, strict=True):
        assert d.xa.shape == (64, 25) and d.xb.shape == (64, 50) and d.y.shape == (64,)
        assert d.xa.dtype == np.float32 and d.xb.dtype == np.float32 and d.y.dtype == np.int64
        np.testing.assert_array_equal(d.y, (z @ plane[:20] > 0).astype(np.int64))  # all 20 latents decide
        a, b = layout.a_start, layout.a_stop
        np.testing.assert_array_equal(d.xa[:, a:b], z[:, a:b].astype(np.float32))
        np.testing.assert_array_equal(d.xa[:, :a], noise_a[:, :a].astype(np.float32))
        np.testing.assert_array_equal(d.xa[:, b:], noise_a[:, b:].astype(np.float32))
        np.testing.assert_array_equal(d.xb[:, :10], z[:, :10].astype(np.float32))
        np.testing.assert_array_equal(d.xb[:, 10:], noise_b[:, 10:].astype(np.float32))
        # The shared channels hold the same values in both modalities, and only they do.
        same = [j for j in range(25) if np.array_equal(d.xa[:, j], d.xb[:, j])]
        assert same == layout.shared
    # x^b and y do not depend on the overlap: every setting of a run is compared on the same samples.
    assert all(np.array_equal(d.xb, draws[0].xb) and np.array_equal(d.y, draws[0].y) for d in draws)
    assert not np.array_equal(draws[0].xa, draws[1].xa)


def test_table2_draw_uses_the_ones_hyperplane() -> None:
    layout = table2_layout(5)
    (d,) = make_draws(np.random.default_rng(0), 500, [layout], None)
    assert d.xa.shape == (500, 50) and d.xb.shape == (500, 50)
    # x^a carries all 15 latents in channels 0..14, so the label is the sign of their sum.
    np.testing.assert_array_equal(d.y, (d.xa[:, :15].astype(np.float64).sum(axis=1) > 0).astype(np.int64))
    np.testing.assert_array_equal(d.xa[:, :5], d.xb[:, :5])
    assert 0.4 < d.y.mean() < 0.6


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap 11"):
        exp1_layout(11)
    with pytest.raises(ValueError, match="k 41"):
        exp2_layout(41)
    with pytest.raises(ValueError, match="c 0"):
        table2_layout(0)
    with pytest.raises(ValueError, match="layouts of one draw"):
        make_draws(np.random.default_rng(0), 4, [exp1_layout(0), exp2_layout(0)], None)
