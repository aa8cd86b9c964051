"""``avkd report`` for the emotion task: a table in the shape of the seed paper's Table 1 (docs/reference/mult-mosei.md §5.4).

Rows are the given evaluations in order (teacher, student without KD, each method per configuration), with
7-class accuracy, weighted F1, binary accuracy and binary F1, parameters and milliseconds per batch, the metric
protocol (avkd's, or MulT's ``eval_mosei_senti`` convention: docs/reference/mult-mosei.md §2.2) and the ids of the
evaluation and model artifacts each number comes from; the paper's published rows follow in a separate table.

Evaluations that share a label (one recipe, several seeds) are one row of mean ± sd (n) (:func:`emotion_rows`,
:mod:`avkd.report.aggregate`); ``report.json`` keeps every run and each aggregate. The notes say when rows are not
comparable: different features, a split other than test, mixed protocols, a label kept apart.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avkd.core.artifacts import (
    EVALUATION,
    EXPORT,
    MODEL,
    MOSEI_FEATURES,
    REPORT,
    Artifact,
    ArtifactWriter,
    atomic_write_text,
    load_artifact,
)
from avkd.core.errors import ArtifactError, UsageError
from avkd.report.aggregate import group_rows, summarise
from avkd.report.bench import bench_json, bench_section
from avkd.report.published import PUBLISHED_EMOTION
from avkd.report.tables import EMOTION_PROTOCOL_NOTES, RowFacts, comparability_notes, emotion_table

__all__ = [
    "AGGREGATED",
    "DEFAULT_TITLE",
    "build_emotion_report",
    "emotion_markdown",
    "emotion_notes",
    "emotion_row",
    "emotion_rows",
]

#: The metrics a row of several runs shows as mean ± sd (fractions; ms per batch in milliseconds).
AGGREGATED = ("acc7", "f1", "acc2", "f1_binary", "acc5", "majority_acc7", "ms_per_batch")


def emotion_row(art: Artifact) -> dict[str, Any]:
    """One evaluation's row: its metrics (``metrics.json``), protocol, split, features and model (with its
    method and seed when the model artifact is still there)."""
    summary = json.loads((art.path / "metrics.json").read_text())
    inputs = art.manifest.get("inputs", [{}])
    model_ref = inputs[-1]
    data_ref = next((i for i in inputs if i.get("kind") == MOSEI_FEATURES), {})
    config: dict[str, Any] = {}
    try:
        model = load_artifact(model_ref.get("path", ""))
        config = model.config
    except ArtifactError:  # a moved model still leaves the evaluation's own numbers
        model = None
    if model is not None and model.kind == EXPORT:
        # An evaluated ONNX export: the row describes the model the export was made from.
        source = next((i for i in model.manifest.get("inputs", []) if i.get("kind") == MODEL), {})
        try:
            model, model_ref = load_artifact(source.get("path", ""), kind=MODEL), source
            config = model.config
        except ArtifactError:
            model, config = None, {}
    method = config.get("method")
    config_id = config.get("config_id", config.get("config"))  # "config" before the key was renamed
    description = f"{method} (config {config_id})" if method else "teacher / trained alone"
    loop = config.get("loop") if isinstance(config.get("loop"), dict) else {}
    return {
        "label": summary["label"],
        "description": description,
        "acc7": summary["acc7"],
        "f1": summary["f1_weighted"],
        "acc2": summary["acc2"],
        # Evaluations written before acc5 and the protocol existed were all avkd's convention.
        "f1_binary": summary.get("f1_binary"),
        "acc5": summary.get("acc5"),
        "protocol": summary.get("protocol", art.config.get("protocol", "avkd")),
        "split": art.config.get("split"),
        "data_id": data_ref.get("id"),
        "seed": loop.get("seed"),
        "parameters": summary["parameters"],
        "ms_per_batch": summary["ms_per_batch"],
        "batch_size": summary["batch_size"],
        "n": summary["n"],
        "majority_acc7": summary["majority_acc7"],
        "evaluation_id": art.id,
        "model_id": model_ref.get("id") if model is not None else f"{model_ref.get('id')} (missing)",
    }


def _facts(row: dict[str, Any]) -> dict[str, Any]:
    """What rows sharing a label must agree on to be averaged: features, split, protocol, model size."""
    return {
        "features": row["data_id"],
        "split": row["split"],
        "protocol": row["protocol"],
        "parameters": row["parameters"],
    }


def _mean_row(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Runs sharing a label and :func:`_facts` as one row: the first run's facts, ``stats`` per metric, ids."""
    first = runs[0]
    stats = summarise(runs, AGGREGATED)
    shared = ("label", "description", "protocol", "split", "data_id", "parameters", "batch_size", "n")
    return {
        **{key: first[key] for key in shared},
        "runs": len(runs),
        "evaluation_ids": [r["evaluation_id"] for r in runs],
        "model_ids": [r["model_id"] for r in runs],
        "seeds": [r["seed"] for r in runs],
        "majority_acc7": stats["majority_acc7"].mean,
        "stats": stats,
    }


def emotion_rows(runs: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The table's rows from :func:`emotion_row` rows: a label seen once as it is, runs sharing a label (and
    the facts) as one mean row, in first-seen order; plus the notes of labels kept apart."""
    groups, notes = group_rows(runs, lambda r: r["label"], _facts)
    return [group[0] if len(group) == 1 else _mean_row(group) for group in groups], notes


def _aggregate_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in row.items() if key != "stats"}
    out["metrics"] = {key: s.to_json() for key, s in row["stats"].items()}
    return out


def emotion_notes(rows: Sequence[dict[str, Any]]) -> list[str]:
    """:func:`avkd.report.tables.comparability_notes` of the table's rows, in the emotion protocols' words."""
    facts = [RowFacts(r["label"], r["protocol"], r["data_id"], r["split"]) for r in rows]
    return comparability_notes(facts, EMOTION_PROTOCOL_NOTES, unit="segments")


def emotion_markdown(title: str, rows: Sequence[dict[str, Any]], notes: Sequence[str] = ()) -> str:
    """The whole ``report.md``: the runs table (rows of :func:`emotion_rows`), the published rows, the notes."""
    lines = [
        f"# {title}",
        "",
        "7-class accuracy (round(clip(y, −3, 3))), weighted F1, binary accuracy and binary F1 (MulT's rule, zeros"
        " excluded), in %, on the evaluated split; each row names its evaluation and model artifacts, and the"
        " protocol its F1-bin was computed under. A row of several runs that share a label shows mean ± sample"
        " sd (n runs).",
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
    if notes:
        lines += ["## Notes", "", *(f"- {note}" for note in notes), ""]
    return "\n".join(lines)


DEFAULT_TITLE = "avkd emotion report"


def build_emotion_report(
    evaluations: Sequence[Artifact | str | Path],
    out: str | Path,
    title: str | None = None,
    overwrite: bool = False,
    benches: Sequence[Artifact] = (),
) -> Artifact:
    """Write a ``report`` artifact (report.md, report.json) from emotion evaluation artifacts, rows in order;
    ``benches`` (bench artifacts) add the speed section (:mod:`avkd.report.bench`)."""
    arts = [e if isinstance(e, Artifact) else load_artifact(e, kind=EVALUATION) for e in evaluations]
    if not arts:
        raise UsageError("avkd report: give at least one evaluation artifact")
    title = title or DEFAULT_TITLE
    runs = [emotion_row(a) for a in arts]
    rows, apart = emotion_rows(runs)
    notes = apart + emotion_notes(rows)
    with ArtifactWriter(
        out, REPORT, {"title": title, "task": "emotion"}, inputs=[*arts, *benches], overwrite=overwrite
    ) as writer:
        markdown = emotion_markdown(title, rows, notes)
        atomic_write_text(
            writer.path("report.md"), markdown + ("\n" + bench_section(benches) if benches else "")
        )
        payload = {
            "title": title,
            "units": "fractions in [0, 1]; ms_per_batch in milliseconds; sd is the sample sd (ddof 1)",
            "runs": runs,
            "aggregates": [_aggregate_json(r) for r in rows if "stats" in r],
            "published": PUBLISHED_EMOTION,
            "notes": notes,
            **({"bench": bench_json(benches)} if benches else {}),
        }
        atomic_write_text(writer.path("report.json"), json.dumps(payload, indent=2) + "\n")
        return writer.commit(metrics={"runs": len(runs), "rows": len(rows), "task": "emotion"})
