"""The Gaussian data of the MFH paper's synthetic study (docs/mfh.md §2).

A latent vector of decisive features ``z ~ N(0, I_D)`` sets the label ``y = 1[z · h > 0]`` for a hyperplane
``h`` (``h ~ N(0, I)`` drawn once per run, or all ones for the Table 2 variant). Each modality is Gaussian noise
with some of its channels replaced by latents; channel ``j`` of either modality, when it carries a latent,
carries latent ``j``. The teacher sees modality ``a`` (x^a), the student modality ``b`` (x^b). What each modality
sees of ``z`` is its part of the modality Venn diagram:

- γ = |decisive latents both see| / |decisive latents either sees| (modality-general share);
- α = share of x^a's decisive latents that x^b does not see; β the same for x^b.

Settings (docs/mfh.md §2, from the official ``gauss/main.py`` and ``main_modify_gamma.py``):

- **experiment 1** (Fig. 2), overlap ``o``: D = 20, x^b (50 channels) carries z[0:10], x^a (25 channels) carries
  z[10−o : 20−o]; γ = o / (20 − o), α = β = (10 − o) / 10. z[20−o : 20] is seen by neither (label noise);
- **experiment 2** (Fig. 3), ``k``: D = 50, x^b (50) carries z[0:10], x^a (50) carries z[0 : k+10];
  α = k / (k + 10), β = 0, γ = 10 / (k + 10);
- **Table 2 variant**, ``c``: h = ones, D = 10 + c, x^a (50) carries all of z, x^b (50) carries z[0:c];
  α = 10 / (10 + c), β = 0, γ = c / (10 + c).

Within one experiment every setting of a run is built from the same latents and noise (as the official code's
re-seeding per setting does), so settings are compared on the same samples and x^b, which does not depend on
``o`` or ``k``, is the same in all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HYPERPLANE_DIM",
    "Draw",
    "Layout",
    "draw_latents",
    "exp1_layout",
    "exp2_layout",
    "hyperplane",
    "make_draws",
    "table2_layout",
]

#: Length of the random hyperplane drawn per run (official ``d = 500``); each setting uses its first D entries.
HYPERPLANE_DIM = 500


@dataclass(frozen=True)
class Layout:
    """Which channels of each modality carry which latents: channels ``[a_start, a_stop)`` of x^a carry latents
    of the same indices, likewise ``[b_start, b_stop)`` of x^b (docs/mfh.md §2)."""

    latent_dim: int
    dim_a: int
    dim_b: int
    a_start: int
    a_stop: int
    b_start: int
    b_stop: int
    ones_hyperplane: bool = False

    def __post_init__(self) -> None:
        if not (0 <= self.a_start <= self.a_stop <= min(self.dim_a, self.latent_dim)):
            raise ValueError(f"x^a channels [{self.a_start}, {self.a_stop}) do not fit {self}")
        if not (0 <= self.b_start <= self.b_stop <= min(self.dim_b, self.latent_dim)):
            raise ValueError(f"x^b channels [{self.b_start}, {self.b_stop}) do not fit {self}")

    @property
    def seen_a(self) -> set[int]:
        return set(range(self.a_start, self.a_stop))

    @property
    def seen_b(self) -> set[int]:
        return set(range(self.b_start, self.b_stop))

    @property
    def shared(self) -> list[int]:
        """Latents both modalities carry, which are also the channels that carry them in x^a and in x^b."""
        return sorted(self.seen_a & self.seen_b)

    @property
    def gamma(self) -> float:
        union = self.seen_a | self.seen_b
        return len(self.shared) / len(union) if union else 0.0

    @property
    def alpha(self) -> float:
        return len(self.seen_a - self.seen_b) / len(self.seen_a) if self.seen_a else 0.0

    @property
    def beta(self) -> float:
        return len(self.seen_b - self.seen_a) / len(self.seen_b) if self.seen_b else 0.0


def exp1_layout(overlap: int, decisive: int = 10, dim_a: int = 25, dim_b: int = 50) -> Layout:
    """Experiment 1 (Fig. 2): ``overlap`` of x^a's ``decisive`` latents are x^b's (docs/mfh.md §2)."""
    if not 0 <= overlap <= decisive:
        raise ValueError(f"overlap {overlap} must be in [0, {decisive}]")
    start = decisive - overlap
    return Layout(2 * decisive, dim_a, dim_b, start, start + decisive, 0, decisive)


def exp2_layout(k: int, shared: int = 10, dim_a: int = 50, dim_b: int = 50) -> Layout:
    """Experiment 2 (Fig. 3): x^a carries x^b's ``shared`` latents and ``k`` of its own (docs/mfh.md §2)."""
    if not 0 <= k <= dim_a - shared:
        raise ValueError(f"k {k} must be in [0, {dim_a - shared}]")
    return Layout(dim_a, dim_a, dim_b, 0, shared + k, 0, shared)


def table2_layout(c: int, specific: int = 10, dim: int = 50) -> Layout:
    """Table 2 variant: x^a carries ``specific + c`` latents, x^b the first ``c``; the hyperplane is all ones
    (docs/mfh.md §2)."""
    if not 1 <= c <= dim - specific:
        raise ValueError(f"c {c} must be in [1, {dim - specific}]")
    return Layout(specific + c, dim, dim, 0, specific + c, 0, c, ones_hyperplane=True)


@dataclass(frozen=True)
class Draw:
    """One sample set: the teacher's modality ``xa`` (n, dim_a), the student's ``xb`` (n, dim_b), labels ``y``
    (n,) in {0, 1}; float32 and int64, as the official code's ``torch.Tensor`` / ``LongTensor``."""

    xa: np.ndarray
    xb: np.ndarray
    y: np.ndarray


def hyperplane(rng: np.random.Generator) -> np.ndarray:
    """The run's random separating hyperplane, N(0, I_500) (official ``a = np.random.randn(d)``)."""
    return rng.standard_normal(HYPERPLANE_DIM)


def draw_latents(
    rng: np.random.Generator, n: int, layout: Layout
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The latents ``z`` (n, D) and the two noise fields (n, dim_a), (n, dim_b) every setting of an experiment is
    assembled from (float64; drawn z, then x^b's, then x^a's, the official order)."""
    z = rng.standard_normal((n, layout.latent_dim))
    noise_b = rng.standard_normal((n, layout.dim_b))
    noise_a = rng.standard_normal((n, layout.dim_a))
    return z, noise_a, noise_b


def make_draws(
    rng: np.random.Generator, n: int, layouts: Sequence[Layout], plane: np.ndarray | None
) -> list[Draw]:
    """One :class:`Draw` per layout, all from one set of latents and noise (the layouts must agree on D and
    the two dimensions). ``plane`` is the run's hyperplane (None: all ones)."""
    first = layouts[0]
    for layout in layouts:
        if (layout.latent_dim, layout.dim_a, layout.dim_b) != (first.latent_dim, first.dim_a, first.dim_b):
            raise ValueError("layouts of one draw must share latent_dim, dim_a and dim_b")
    z, noise_a, noise_b = draw_latents(rng, n, first)
    h = np.ones(first.latent_dim) if plane is None else plane[: first.latent_dim]
    y = (z @ h > 0).astype(np.int64)
    draws = []
    for layout in layouts:
        xa, xb = noise_a.copy(), noise_b.copy()
        xa[:, layout.a_start : layout.a_stop] = z[:, layout.a_start : layout.a_stop]
        xb[:, layout.b_start : layout.b_stop] = z[:, layout.b_start : layout.b_stop]
        draws.append(Draw(xa.astype(np.float32), xb.astype(np.float32), y))
    return draws
