"""Multi-ratio, random and structured masking (avkd/models/masking.py), against the released numbers (§1.5)."""

from __future__ import annotations

import pytest
import torch

from avkd.models.masking import (
    PAPER_RATIOS,
    RELEASED_RATIOS,
    assign_ratios,
    keep_count,
    multi_ratio_groups,
    random_masking,
    resolve_ratios,
    structured_masking,
)


def test_keep_counts_are_the_released_ones() -> None:
    """Fact sheet §1.5: audio 512 → 512/409/307/204/102, video 196 → 196/156/117/78/39."""
    assert [keep_count(512, r) for r in RELEASED_RATIOS] == [512, 409, 307, 204, 102]
    assert [keep_count(196, r) for r in RELEASED_RATIOS] == [196, 156, 117, 78, 39]
    assert keep_count(196, 0.75) == 49 and keep_count(512, 0.75) == 128
    assert resolve_ratios("paper") == PAPER_RATIOS and max(PAPER_RATIOS) == 0.5
    with pytest.raises(ValueError, match="unknown mask ratio set"):
        resolve_ratios("half")
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        resolve_ratios((0.0, 1.0))


@pytest.mark.parametrize("batch", [1, 3, 4, 5, 8, 12, 13])
def test_ratios_are_assigned_evenly_for_any_batch(batch: int) -> None:
    g = torch.Generator().manual_seed(batch)
    seen: set[int] = set()
    for _ in range(20):
        idx = assign_ratios(batch, 5, generator=g)
        counts = torch.bincount(idx, minlength=5)
        assert counts.sum() == batch and int(counts.max() - counts.min()) <= 1
        seen |= set(idx.tolist())
    # Unlike torch.chunk(randperm(B), 5), which gives B = 4, 8 or 12 only four groups, every ratio gets used.
    assert seen == set(range(5))


def test_random_masking_keeps_distinct_tokens_and_restores_order() -> None:
    g = torch.Generator().manual_seed(0)
    keep, mask, restore = random_masking(3, 10, 4, generator=g)
    assert keep.shape == (3, 4) and mask.shape == restore.shape == (3, 10)
    for i in range(3):
        assert len(set(keep[i].tolist())) == 4
        assert mask[i].sum() == 6 and (mask[i, keep[i]] == 0).all()
    # What the decoder relies on: cat(kept tokens, fillers) gathered with restore puts every kept token back
    # at its own position and a filler at every removed one.
    filled = torch.cat([keep, torch.full((3, 6), -1)], dim=1)
    back = torch.gather(filled, 1, restore)
    positions = torch.arange(10).expand(3, -1)
    assert torch.equal(back, torch.where(mask == 0, positions, -1))


def test_structured_masking_removes_whole_time_columns_and_frequency_rows() -> None:
    """Ratio 0.8 on the released 8 × 64 grid: int(64·.8·.7) = 35 columns and int(8·.8·.7) = 4 rows go first."""
    g = torch.Generator().manual_seed(1)
    ratios = torch.full((4,), 0.8, dtype=torch.float64)
    keep, mask, _ = structured_masking(ratios, (8, 64), keep_count(512, 0.8), generator=g)
    assert keep.shape == (4, 102)
    grid = mask.reshape(4, 8, 64)
    for i in range(4):
        full_cols = int((grid[i].sum(0) == 8).sum())
        full_rows = int((grid[i].sum(1) == 64).sum())
        assert full_cols >= 35 and full_rows >= 4
        assert int(mask[i].sum()) == 512 - 102
    # At ratio 0 nothing is marked and nothing removed.
    keep0, mask0, _ = structured_masking(torch.zeros(2, dtype=torch.float64), (8, 64), 512, generator=g)
    assert mask0.sum() == 0 and keep0.sort(1).values.tolist() == [list(range(512))] * 2


def test_groups_pack_equal_kept_counts_and_cover_the_batch() -> None:
    g = torch.Generator().manual_seed(2)
    groups = multi_ratio_groups(11, 196, RELEASED_RATIOS, generator=g)
    rows = torch.cat([grp.rows for grp in groups])
    assert sorted(rows.tolist()) == list(range(11))
    assert [grp.keep.size(1) for grp in groups] == [196, 156, 117, 78, 39]  # decreasing kept count
    for grp in groups:
        assert (grp.mask.sum(1) == 196 - grp.keep.size(1)).all()
        assert torch.unique(grp.ratios).numel() == 1
    # Two ratios with the same kept count (int(4·0.9) = int(4·0.8) = 3) share one sub-batch.
    merged = multi_ratio_groups(6, 4, (0.1, 0.2), generator=g)
    assert len(merged) == 1 and merged[0].keep.shape == (6, 3)
    assert sorted(torch.unique(merged[0].ratios).tolist()) == [0.1, 0.2]


def test_audio_and_video_draw_independently_and_a_seed_repeats() -> None:
    def draw(seed: int) -> tuple[list[int], list[int]]:
        g = torch.Generator().manual_seed(seed)
        a = multi_ratio_groups(10, 32, grid=(4, 8), generator=g)
        v = multi_ratio_groups(10, 16, generator=g)
        return [int(r) for grp in a for r in grp.rows], [int(r) for grp in v for r in grp.rows]

    assert draw(3) == draw(3)
    assert any(a != v for a, v in (draw(s) for s in range(4)))
    with pytest.raises(ValueError, match="does not hold"):
        multi_ratio_groups(2, 30, grid=(4, 8))
