"""``avkd report`` for the emotion track: a table in the shape of the seed paper's Table 1 (reference §5.4).

Rows are the given evaluations in order (teacher, student without KD, each method per configuration), with
7-class accuracy, weighted F1, binary accuracy, parameters and milliseconds per batch, and the ids of the
evaluation and model artifacts each number comes from; the paper's published rows follow in a separate table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avkd.artifacts import Artifact, ArtifactWriter, atomic_write_text, load_artifact

#: Seed paper Table 1 (reference §5.4): CMU-MOSEI unaligned, 7-class accuracy % and F1.
PUBLISHED_EMOTION: list[dict[str, Any]] = [
    {"row": "Student without KD", "acc7": 41.296, "f1": 32.142},
    {"row": "Complete teacher (cfg 1, 5)", "acc7": 49.779, "f1": 48.817},
    {"row": "Video-branch teacher (cfg 2)", "acc7": 49.621, "f1": 48.542},
    {"row": "cfg 2: CRD on final linear layer", "acc7": 43.711, "f1": 33.281},
    {"row": "cfg 2: CRD on penultimate linear layer", "acc7": 42.576, "f1": 35.565},
    {"row": "cfg 2: CRD on attention maps", "acc7": 43.837, "f1": 35.912},
    {"row": "cfg 5: CRD on final linear layer", "acc7": 42.731, "f1": 32.513},
    {"row": "cfg 5: CRD on penultimate linear layer", "acc7": 43.732, "f1": 35.632},
    {"row": "cfg 5: CRD on post-attention linear layers", "acc7": 43.837, "f1": 35.711},
    {"row": "cfg 5: CRD on attention maps", "acc7": 44.031, "f1": 36.110},
    {"row": "cfg 5: EDAM-S on attention maps (best)", "acc7": 44.231, "f1": 36.332},
    {"row": "cfg 5: EDAM-T on attention maps", "acc7": 43.993, "f1": 36.189},
]


def is_emotion_evaluation(art: Artifact) -> bool:
    return art.manifest.get("task") == "mosei"


def emotion_row(art: Artifact) -> dict[str, Any]:
    summary = json.loads((art.path / "metrics.json").read_text())
    model_ref = art.manifest.get("inputs", [{}])[-1]
    config: dict[str, Any] = {}
    try:
        model = load_artifact(model_ref.get("path", ""))
        config = model.config
    except Exception:  # a moved model still leaves the evaluation's own numbers
        model = None
    method = config.get("method")
    description = f"{method} (config {config.get('config')})" if method else "teacher / trained alone"
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


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def emotion_table(rows: Sequence[dict[str, Any]]) -> str:
    """The Table-1-shaped runs table (markdown) of :func:`emotion_row` rows."""
    lines = [
        "| run | what | Acc7 | F1 | Acc2 | params (M) | ms / batch | segments | majority Acc7 | evaluation | model |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['description']} | {_pct(r['acc7'])} | {_pct(r['f1'])} | {_pct(r['acc2'])} | "
            f"{r['parameters'] / 1e6:.3f} | {r['ms_per_batch']:.1f} (batch {r['batch_size']}) | {r['n']} | "
            f"{_pct(r['majority_acc7'])} | `{r['evaluation_id']}` | `{r['model_id']}` |"
        )
    return "\n".join(lines)


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


def build_emotion_report(
    arts: Sequence[Artifact], out: str | Path, title: str, overwrite: bool = False
) -> Artifact:
    from avkd.report import KIND

    rows = [emotion_row(a) for a in arts]
    with ArtifactWriter(
        out, KIND, {"title": title, "task": "mosei"}, inputs=arts, overwrite=overwrite
    ) as writer:
        atomic_write_text(writer.path("report.md"), emotion_markdown(title, rows))
        payload = {
            "title": title,
            "units": "fractions in [0, 1]",
            "runs": rows,
            "published": PUBLISHED_EMOTION,
        }
        atomic_write_text(writer.path("report.json"), json.dumps(payload, indent=2) + "\n")
        return writer.commit(metrics={"runs": len(rows), "task": "mosei"})
