"""What a preprocessing stage left out, and when that is too much: ``failures.jsonl`` and ``--max-failures``.

Both corpora's stages (``avkd preprocess lrs2``, ``avkd preprocess mosei``) keep going past a broken input, write
one JSON line per item left out (its key and the reason) into the artifact's ``failures.jsonl``, and record
``failures`` and ``failure_share`` in the manifest's metrics.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from avkd.core.artifacts import Artifact
from avkd.core.errors import AvkdError
from avkd.core.jsonl import read_jsonl

__all__ = ["FAILURES", "check_failure_share", "read_failures", "reason_class", "reason_counts"]

FAILURES = "failures.jsonl"


def read_failures(artifact: Artifact) -> list[dict[str, Any]]:
    """The items a preprocessing artifact left out, with their reasons (in the order they failed)."""
    return read_jsonl(artifact.path / FAILURES)


def check_failure_share(artifact: Artifact, max_failures: float, unit: str = "utterances") -> None:
    """Raise (exit 1) when the share of failed items passes ``max_failures``; the artifact stays.

    ``unit`` names the items the metrics count ("utterances" for LRS2, "segments" for CMU-MOSEI).
    """
    metrics = artifact.metrics
    share = metrics.get("failure_share", 0.0)
    if share > max_failures:
        raise AvkdError(
            f"{artifact.path}: {metrics['failures']} of {metrics[unit] + metrics['failures']} {unit} failed "
            f"({100 * share:.1f}% > {100 * max_failures:g}%); reasons in {artifact.path / FAILURES}"
        )


def reason_class(reason: str) -> str:
    """Group failure reasons for the summary ('frame rate 30 fps, ...' -> 'frame rate')."""
    return re.split(r"[:(0-9]", reason, maxsplit=1)[0].strip() or reason


def reason_counts(failures: list[dict[str, Any]]) -> dict[str, int]:
    """How many failures of each :func:`reason_class` (the manifest's ``failure_reasons``)."""
    return dict(Counter(reason_class(f["reason"]) for f in failures))
