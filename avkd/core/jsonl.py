"""JSON lines, the format of every per-item file in an artifact (index, failures, metrics per epoch, clips)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["jsonl_text", "read_jsonl"]


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file (blank lines skipped); a missing file has none."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def jsonl_text(rows: Iterable[dict[str, Any]]) -> str:
    """``rows`` as JSON-lines text, one object per line."""
    return "".join(json.dumps(row) + "\n" for row in rows)
