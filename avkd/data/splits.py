"""avkd's one split vocabulary: ``pretrain`` (LRS2 only), ``train``, ``val``, ``test``.

Corpora name their validation split differently (LRS2 ``val``; the CMU Multimodal SDK and MulT ``valid``):
every name a user types goes through :func:`canonical_split`, so ``--split valid`` and ``--split val`` are the
same split in every task.
"""

from __future__ import annotations

__all__ = ["SPLIT_ALIASES", "canonical_split"]

SPLIT_ALIASES = {"valid": "val", "validation": "val", "dev": "val"}


def canonical_split(name: str) -> str:
    """``valid`` / ``validation`` / ``dev`` -> ``val``; any other name unchanged."""
    return SPLIT_ALIASES.get(name, name)
