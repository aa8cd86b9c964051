"""Speed tables in ``avkd report``: the ``bench`` artifacts given beside the evaluations (issue 17, part 3), each
its ``bench.md`` (:func:`avkd.models.bench.bench_markdown`) under one heading, so an int8 or ONNX Runtime row's
accuracy change (the runs table) sits next to its speed change."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from avkd.core.artifacts import Artifact
from avkd.core.errors import ArtifactError
from avkd.models.bench import bench_markdown

__all__ = ["bench_json", "bench_section"]


def _payload(bench: Artifact) -> dict[str, Any]:
    file = bench.file("bench.json")
    try:
        return json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{file}: unreadable ({exc})") from None


def bench_section(benches: Sequence[Artifact]) -> str:
    """The report's "Speed" section (empty without bench artifacts): each bench's tables, naming its id."""
    if not benches:
        return ""
    parts = [
        "## Speed (avkd bench)",
        "",
        "Median (p50) milliseconds per call at each CPU thread count: PyTorch eager and ONNX Runtime, fp32 and "
        "dynamic int8 (Linear layers). `bench.json` in each bench artifact holds p90, throughput and every row.",
        "",
    ]
    for bench in benches:
        parts += [f"Bench `{bench.id}`:", "", bench_markdown(_payload(bench)).rstrip(), ""]
    return "\n".join(parts)


def bench_json(benches: Sequence[Artifact]) -> list[dict[str, Any]]:
    """What report.json keeps of each bench: its id and its models' rows."""
    return [{"id": b.id, **_payload(b)} for b in benches]
