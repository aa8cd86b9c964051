"""``avkd report`` for the emotion task: a table in the shape of the seed paper's Table 1 (docs/reference/mult-mosei.md §5.4).

Rows are the given evaluations in order (teacher, student without KD, each method per configuration), with
7-class accuracy, weighted F1, binary accuracy, parameters and milliseconds per batch, and the ids of the
evaluation and model artifacts each number comes from; the paper's published rows follow in a separate table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avkd.core.artifacts import EVALUATION, REPORT, Artifact, ArtifactWriter, atomic_write_text, load_artifact
from avkd.core.errors import ArtifactError, UsageError
from avkd.report.published import PUBLISHED_EMOTION
from avkd.report.tables import emotion_table

__all__ = ["DEFAULT_TITLE", "build_emotion_report", "emotion_markdown", "emotion_row"]


def emotion_row(art: Artifact) -> dict[str, Any]:
    summary = json.loads((art.path / "metrics.json").read_text())
    model_ref = art.manifest.get("inputs", [{}])[-1]
    config: dict[str, Any] = {}
    try:
        model = load_artifact(model_ref.get("path", ""))
        config = model.config
    except ArtifactError:  # a moved model still leaves the evaluation's own numbers
        model = None
    method = config.get("method")
    config_id = config.get("config_id", config.get("config"))  # "config" before the key was renamed
    description = f"{method} (config {config_id})" if method else "teacher / trained alone"
    return {
        "label": summary["label"],
        "description": description,
        "acc7": summary["acc7"],
        "f1": summary["f1_weighted"],
        "acc2": summary["acc2"],
        "parameters": summary["parameters"],
        "ms_per_batch": summary["ms_per_batch"],
        "batch_size": summary["batch_size"],
        "n": summary["n"],
        "majority_acc7": summary["majority_acc7"],
        "evaluation_id": art.id,
        "model_id": model_ref.get("id") if model is not None else f"{model_ref.get('id')} (missing)",
    }


def emotion_markdown(title: str, rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        f"# {title}",
        "",
        "7-class accuracy (round(clip(y, −3, 3))), weighted F1 and binary accuracy (MulT's rule, zeros excluded),"
        " in %, on the evaluated split; each row names its evaluation and model artifacts.",
        "",
        "## Runs",
        "",
        emotion_table(rows),
        "",
        "## Published (seed paper Table 1, CMU-MOSEI unaligned)",
        "",
        "Not runs of this toolkit; for comparison only.",
        "",
        "| row | Acc7 | F1 |",
        "|---|---:|---:|",
        *(f"| {p['row']} | {p['acc7']:.3f} | {p['f1']:.3f} |" for p in PUBLISHED_EMOTION),
        "",
    ]
    return "\n".join(lines)


DEFAULT_TITLE = "avkd emotion report"


def build_emotion_report(
    evaluations: Sequence[Artifact | str | Path],
    out: str | Path,
    title: str | None = None,
    overwrite: bool = False,
) -> Artifact:
    """Write a ``report`` artifact (report.md, report.json) from emotion evaluation artifacts, rows in order."""
    arts = [e if isinstance(e, Artifact) else load_artifact(e, kind=EVALUATION) for e in evaluations]
    if not arts:
        raise UsageError("avkd report: give at least one evaluation artifact")
    title = title or DEFAULT_TITLE
    rows = [emotion_row(a) for a in arts]
    with ArtifactWriter(
        out, REPORT, {"title": title, "task": "emotion"}, inputs=arts, overwrite=overwrite
    ) as writer:
        atomic_write_text(writer.path("report.md"), emotion_markdown(title, rows))
        payload = {
            "title": title,
            "units": "fractions in [0, 1]",
            "runs": rows,
            "published": PUBLISHED_EMOTION,
        }
        atomic_write_text(writer.path("report.json"), json.dumps(payload, indent=2) + "\n")
        return writer.commit(metrics={"runs": len(rows), "task": "emotion"})
