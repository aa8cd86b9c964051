"""Token masking for AVSiam pre-training: MAE-style random masking, AVSiam's time/frequency-structured audio
masking, and the multi-ratio assignment that packs samples of equal kept length into sub-batches.

Facts: docs/reference/avsiam-mfh-syncnet.md §1.5 (the released code, ``forward_encoder_mmixed``,
``random_masking_unstructured`` and ``random_masking_structured`` of ``src/models/cav_mae_base.py``) and the paper
(ECCV 2024, Sec. 3.2 "multi-ratio random masking").

* **Kept count**: a ratio r keeps ``int(L·(1 − r))`` of L tokens (the released rounding, a floor), so every sample
  of one ratio keeps the same number and they stack without padding.
* **Random masking** (video, and both modalities in the reconstruction pass): per sample, argsort of uniform
  noise; the first ``keep`` indices are kept (MAE).
* **Structured masking** (audio in the contrastive pass, the released ``mode='tf'``): on the (f, t) patch grid,
  ``int(t·r·0.7)`` random time columns and ``int(f·r·0.7)`` random frequency rows are marked and removed first;
  the rest of the removal is random. The released code sets the marked noise to 1.1 (ties among the marked
  cells then break by sort order); we add 1 to their uniform noise instead, so the marked cells still go first
  and ties among them break at random.
* **Multi-ratio assignment** (:func:`assign_ratios`): each sample of the batch gets one ratio of the set, the
  counts differing by at most one whatever the batch size, with the set's remainder rotated at random from step
  to step. This fixes the released ``torch.chunk(randperm(B), 5)`` grouping, which makes fewer than 5 groups
  when B is not a suitable multiple (B = 4, the released per-GPU batch, gives 4 groups of one: ratio 0.8 is
  never used; B = 8 or 12 gives 4 groups too, §1.5), so the high ratios were silently dropped.
* Audio and video draw their assignments independently (the released code uses two permutations), so a clip's
  audio and video may get different ratios.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "PAPER_RATIOS",
    "RATIO_SETS",
    "RECONSTRUCTION_RATIO",
    "RELEASED_RATIOS",
    "TF_FRACTION",
    "MaskGroup",
    "assign_ratios",
    "keep_count",
    "masking_from_noise",
    "multi_ratio_groups",
    "random_masking",
    "resolve_ratios",
    "structured_masking",
]

#: The released code's set, ``0.2·i`` for the 5 chunks (§1.5).
RELEASED_RATIOS: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8)
#: The paper's range, 0-50 % (Sec. 3.2), as 5 evenly spaced ratios: the spacing is our reading of the released
#: experiment name ``...AS-0050-5...`` (§1.5), not a stated value.
PAPER_RATIOS: tuple[float, ...] = (0.0, 0.125, 0.25, 0.375, 0.5)
RATIO_SETS: dict[str, tuple[float, ...]] = {"released": RELEASED_RATIOS, "paper": PAPER_RATIOS}
#: The reconstruction pass masks both modalities at this fixed ratio, unstructured (hard-coded in the release, §1.5).
RECONSTRUCTION_RATIO = 0.75
#: Share of the ratio given to whole time columns and to whole frequency rows in structured masking (§1.5).
TF_FRACTION = 0.7


def resolve_ratios(ratios: str | tuple[float, ...] | list[float]) -> tuple[float, ...]:
    """A ratio set by name (``"released"``, ``"paper"``) or as numbers in [0, 1); ``ValueError`` otherwise."""
    if isinstance(ratios, str):
        if ratios not in RATIO_SETS:
            raise ValueError(f"unknown mask ratio set {ratios!r}; choose one of {sorted(RATIO_SETS)}")
        return RATIO_SETS[ratios]
    out = tuple(float(r) for r in ratios)
    if not out or any(not 0.0 <= r < 1.0 for r in out):
        raise ValueError(f"mask ratios must be a non-empty set of numbers in [0, 1), got {out}")
    return out


def keep_count(num_tokens: int, ratio: float) -> int:
    """Tokens kept at ``ratio``: ``int(L·(1 − r))`` (the released floor), at least 1."""
    return max(1, int(num_tokens * (1 - ratio)))


@dataclass(frozen=True)
class MaskGroup:
    """Samples of one sub-batch: all keep ``keep.size(1)`` tokens.

    ``rows`` (n,) their rows in the batch; ``ratios`` (n,) each one's ratio; ``keep`` (n, k) the kept token
    indices (in shuffled order, as MAE keeps them); ``mask`` (n, L) 1 where a token is removed; ``restore`` (n, L)
    the permutation that puts ``cat(kept, removed)`` back in token order (MAE's ``ids_restore``).
    """

    rows: Tensor
    ratios: Tensor
    keep: Tensor
    mask: Tensor
    restore: Tensor


def masking_from_noise(noise: Tensor, keep: int) -> tuple[Tensor, Tensor, Tensor]:
    """MAE masking from per-token noise (n, L): the ``keep`` lowest are kept → (ids_keep, mask, ids_restore)."""
    shuffle = torch.argsort(noise, dim=1)
    restore = torch.argsort(shuffle, dim=1)
    mask = torch.ones_like(noise)
    mask[:, :keep] = 0
    return shuffle[:, :keep], torch.gather(mask, 1, restore), restore


def random_masking(
    n: int,
    num_tokens: int,
    keep: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Unstructured masking of ``n`` samples of ``num_tokens`` tokens keeping ``keep`` each (MAE)."""
    noise = torch.rand(n, num_tokens, generator=generator, device=device)
    return masking_from_noise(noise, keep)


def _marked(ratios: Tensor, size: int, generator: torch.Generator | None) -> Tensor:
    """(n, size) bool: per sample, ``int(size·r·TF_FRACTION)`` positions chosen at random."""
    # In float64 and in the released order, (size·r)·0.7, so the counts are those of its ``int(t * r * 0.7)``.
    counts = (size * ratios.double() * TF_FRACTION).floor().long()
    rank = torch.rand(ratios.numel(), size, generator=generator, device=ratios.device).argsort(1).argsort(1)
    return rank < counts[:, None]


def structured_masking(
    ratios: Tensor,
    grid: tuple[int, int],
    keep: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The released 'tf' audio masking on a (f, t) grid (tokens row-major: frequency rows, time columns).

    ``ratios`` (n,) per-sample ratios (samples of a packed group may come from different ratios of equal kept
    count); ``keep`` tokens are kept per sample. Marked columns and rows are removed before any other token.
    """
    f, t = grid
    n = ratios.numel()
    noise = torch.rand(n, f, t, generator=generator, device=ratios.device)
    cols = _marked(ratios, t, generator)[:, None, :]
    rows = _marked(ratios, f, generator)[:, :, None]
    noise = noise + (cols | rows).to(noise.dtype)  # marked cells in [1, 2): removed first
    return masking_from_noise(noise.reshape(n, f * t), keep)


def assign_ratios(
    batch_size: int,
    num_ratios: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """(B,) index into the ratio set for each sample: counts differ by at most one, for any B.

    Slots ``(i + offset) mod K`` for i < B, with a random ``offset`` (which ratios get the remainder rotates from
    step to step), dealt to the samples in random order.
    """
    offset = torch.randint(num_ratios, (1,), generator=generator, device=device)
    slots = (torch.arange(batch_size, device=device) + offset) % num_ratios
    order = torch.randperm(batch_size, generator=generator, device=device)
    out = torch.empty_like(slots)
    out[order] = slots
    return out


def multi_ratio_groups(
    batch_size: int,
    num_tokens: int,
    ratios: str | tuple[float, ...] | list[float] = RELEASED_RATIOS,
    *,
    grid: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> list[MaskGroup]:
    """Assign each sample a ratio (:func:`assign_ratios`) and mask it; samples of equal kept count form one group.

    ``grid=(f, t)`` selects the structured audio masking (``f·t == num_tokens``); ``None`` the unstructured one.
    Groups come in decreasing kept count; together their ``rows`` are a permutation of ``range(batch_size)``.
    """
    values = resolve_ratios(ratios)
    if grid is not None and grid[0] * grid[1] != num_tokens:
        raise ValueError(f"grid {grid} does not hold {num_tokens} tokens")
    index = assign_ratios(batch_size, len(values), generator=generator, device=device)
    per_ratio = torch.tensor(values, dtype=torch.float64, device=index.device)  # Python's arithmetic below
    keeps = torch.tensor([keep_count(num_tokens, r) for r in values], device=index.device)
    sample_keep = keeps[index]
    groups = []
    for k in sorted({int(v) for v in keeps.tolist()}, reverse=True):
        rows = torch.nonzero(sample_keep == k).flatten()
        if rows.numel() == 0:
            continue
        r = per_ratio[index[rows]]
        if grid is None:
            ids, mask, restore = random_masking(
                rows.numel(), num_tokens, k, generator=generator, device=rows.device
            )
        else:
            ids, mask, restore = structured_masking(r, grid, k, generator=generator)
        groups.append(MaskGroup(rows, r, ids, mask, restore))
    return groups
