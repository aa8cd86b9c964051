"""VocaLiST's distillable layers and the ``--layers`` grammar: ``parse_layers("av1-4,fusion4")``.

The three cross-modal transformers of VocaLiST (docs/reference/vocalist.md §2.4) are named by block: ``mem`` (the
paper's fusion block, also spelled ``fus`` / ``fusion``), ``av`` and ``va``, each with layers 1..4. A selection
is a list of (block, layer) pairs in the canonical order of the official MTD loop, [mem, av, va] × 1..L (§5.2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from avkd.core.errors import UsageError

__all__ = ["BLOCKS", "BLOCK_ALIASES", "Pair", "parse_layers"]

#: Canonical block order of the official MTD loop (§5.2: ``[fus, av, va]``); "mem" is the fusion block.
BLOCKS: tuple[str, ...] = ("mem", "av", "va")
#: Names accepted for each block in layer selections (``fus4``, ``fusion4`` and ``mem4`` are the same layer).
BLOCK_ALIASES: dict[str, str] = {"mem": "mem", "fus": "mem", "fusion": "mem", "av": "av", "va": "va"}

Pair = tuple[str, int]


_ITEM = re.compile(r"^([a-z]+?)(?:(\d+)(?:-(\d+))?)?$")


def parse_layers(text: str | Iterable[str | Pair], num_layers: int = 4) -> list[Pair]:
    """Parse a layer selection into (block, layer) pairs in the canonical order [mem, av, va] × 1..L (§5.2).

    Grammar (case-insensitive, comma-separated, spaces ignored): ``all`` (every block and layer: 12 pairs for
    VocaLiST); a block alone (``av``: all its layers); a block and a layer (``fus4``, ``fusion4``, ``mem4``);
    a block and a range (``av1-4``). Block aliases: fus / fusion / mem (the paper's "fusion" block is the
    model's ``mem`` encoder), av, va. Duplicates collapse. Also accepts an iterable of such strings or of
    ``(block, layer)`` tuples (a parsed config). Bad text raises ``UsageError`` naming the bad part.
    """
    items: list[str | Pair] = [text] if isinstance(text, str) else list(text)
    chosen: set[Pair] = set()
    for item in items:
        if isinstance(item, str):
            chosen |= _parse_text(item, num_layers)
            continue
        try:
            blk, layer = item
            blk_c = BLOCK_ALIASES[str(blk).lower()]
            layer = int(layer)
        except (TypeError, ValueError, KeyError):
            raise UsageError(
                f"bad layer selection {item!r}: expected (block, layer) with block in "
                f"{'/'.join(BLOCK_ALIASES)}"
            ) from None
        if not 1 <= layer <= num_layers:
            raise UsageError(f"bad layer selection {item!r}: layers are 1..{num_layers}")
        chosen.add((blk_c, layer))
    if not chosen:
        raise UsageError(f"empty layer selection {text!r}")
    return sorted(chosen, key=lambda p: (BLOCKS.index(p[0]), p[1]))


def _parse_text(text: str, num_layers: int) -> set[Pair]:
    out: set[Pair] = set()
    parts = [p.strip() for p in text.lower().replace(" ", "").split(",")]
    for part in parts:
        if part == "all":
            out |= {(b, i) for b in BLOCKS for i in range(1, num_layers + 1)}
            continue
        m = _ITEM.match(part)
        if not m or m.group(1) not in BLOCK_ALIASES:
            raise UsageError(
                f"bad layer selection {part!r} in {text!r}: expected 'all' or BLOCK[N[-M]] with BLOCK one of "
                f"{', '.join(BLOCK_ALIASES)} (e.g. 'av1-4,fusion4')"
            )
        blk = BLOCK_ALIASES[m.group(1)]
        if m.group(2) is None:
            lo, hi = 1, num_layers
        else:
            lo = int(m.group(2))
            hi = int(m.group(3)) if m.group(3) is not None else lo
        if not (1 <= lo <= hi <= num_layers):
            raise UsageError(
                f"bad layer selection {part!r} in {text!r}: layers are 1..{num_layers} (ranges low-high)"
            )
        out |= {(blk, i) for i in range(lo, hi + 1)}
    return out
