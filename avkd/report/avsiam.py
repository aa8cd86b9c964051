"""``avkd report`` for the avsiam task: AVSiam's retrieval table and its missing-modality classification table.

Facts: docs/reference/avsiam-mfh-syncnet.md §1.9 (the released retrieval: R@1/5/10 and the median rank, both
directions) and §1.10 (the missing-modality comparison: audio-visual, audio-only and video-only inputs), as the
evaluation (:mod:`avkd.evaluate.avsiam`) computes them.

A ``report`` artifact holds:

- ``report.json``: every evaluation as a row (label, what the model is, the metrics of its ``metrics.json``,
  parameters, the features, split, seed and the ids of the evaluation and model artifacts), each aggregate of runs
  sharing a label (mean, sample sd, n per metric: :mod:`avkd.report.aggregate`), the notes;
- ``speed.json``: each evaluation's clips per second (its ``timing.json``), keyed by evaluation id;
- ``report.md``: two tables, rows by label in the order given (runs sharing a label and the facts as one row of
  mean ± sd (n)). **Retrieval**: A→V and V→A R@1, R@5, R@10 (in %) and the median rank, with chance R@1 = 1/N.
  **Classification**: accuracy (or mAP for a multi-label corpus) in % under audio-visual, audio-only and video-only
  inputs, with the majority-class share. Both carry the parameters and the evaluation's clips/s.

Measured speed depends on the machine, so, as in the sync report, it is kept out of the report's id: ``speed.json``
and ``report.md`` (the one file that prints it) are log files of the artifact; ``report.json`` and the inputs'
ids make the id, so the same evaluations give the same report id on any machine.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avkd.core.artifacts import (
    CLIPS_FEATURES,
    EVALUATION,
    MODEL,
    REPORT,
    Artifact,
    ArtifactWriter,
    atomic_write_text,
    load_artifact,
)
from avkd.core.errors import ArtifactError, UsageError
from avkd.evaluate.avsiam import MODE_NAMES, RECALL_AT, TIMING
from avkd.report.aggregate import Stat, group_rows, mean_sd_text, summarise
from avkd.report.bench import bench_json, bench_section
from avkd.report.tables import RowFacts, comparability_notes, format_millions

__all__ = [
    "DEFAULT_TITLE",
    "SPEED",
    "avsiam_markdown",
    "avsiam_row",
    "avsiam_rows",
    "build_avsiam_report",
    "classification_table",
    "retrieval_table",
]

DEFAULT_TITLE = "avkd avsiam report"
#: The evaluations' clips per second, keyed by evaluation id (a log: out of the report's id).
SPEED = "speed.json"
#: Retrieval metrics, per direction: R@k (fractions) and the median rank.
RETRIEVAL = tuple(f"{d}_{m}" for d in ("a2v", "v2a") for m in (*(f"r@{k}" for k in RECALL_AT), "mr"))
#: Classification metrics: accuracy (single-label) or mAP (multi-label) per input mode.
CLASSIFICATION = tuple(f"{p}_{name}" for p in ("acc", "map") for name in MODE_NAMES.values())
#: What a row of several runs shows as mean ± sd.
AGGREGATED = (*RETRIEVAL, *CLASSIFICATION, "chance_r@1", "chance_acc", "clips_per_second")


def _model_facts(ref: dict[str, Any]) -> tuple[str, int | None, str]:
    """(what the model is, its training seed, its id as the table shows it) from the evaluation's model input."""
    try:
        model = load_artifact(ref.get("path", ""), kind=MODEL)
    except ArtifactError:  # a moved model still leaves the evaluation's own numbers
        return "–", None, f"{ref.get('id')} (missing)"
    config = model.config
    loop = config.get("loop") if isinstance(config.get("loop"), dict) else {}
    if "modalities" in config:
        what = "fine-tuned, " + (
            "mixed modalities" if config["modalities"] == "mixed" else "audio-visual only"
        )
        what += " (from pre-trained)" if model.metrics.get("init") else " (from scratch)"
    elif "ratios" in config:
        what = "pre-trained (heads untrained)"
    else:
        what = "–"
    return what, loop.get("seed"), model.id


def avsiam_row(art: Artifact) -> dict[str, Any]:
    """One evaluation's row: its ``metrics.json``, the model's description and seed, the features' id, its
    clips/s (``timing.json``, None when absent) and the ids."""
    summary = json.loads((art.path / "metrics.json").read_text())
    inputs = art.manifest.get("inputs", [])
    data_ref = next((i for i in inputs if i.get("kind") == CLIPS_FEATURES), {})
    model_ref = next((i for i in inputs if i.get("kind") == MODEL), None)
    what, seed, model_id = _model_facts(model_ref) if model_ref else ("model file", None, "–")
    timing = art.path / TIMING
    speed = json.loads(timing.read_text()).get("clips_per_second") if timing.is_file() else None
    return {
        "label": summary["label"],
        "description": what,
        **{key: summary.get(key) for key in (*RETRIEVAL, *CLASSIFICATION) if key in summary},
        "clips": summary["clips"],
        "classes": summary["classes"],
        "chance_r@1": summary["chance_r@1"],
        "chance_acc": summary.get("chance_acc"),
        "parameters": summary["parameters"],
        "split": summary.get("split", art.config.get("split")),
        "per_class": art.config.get("per_class"),
        "data_id": data_ref.get("id"),
        "seed": seed,
        "clips_per_second": speed,
        "evaluation_id": art.id,
        "model_id": model_id,
    }


def _facts(row: dict[str, Any]) -> dict[str, Any]:
    """What rows sharing a label must agree on to be averaged: features, split, subset, model size."""
    return {
        "features": row["data_id"],
        "split": row["split"],
        "per_class": row["per_class"],
        "parameters": row["parameters"],
    }


def _mean_row(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    first = runs[0]
    shared = ("label", "description", "clips", "classes", "parameters", "split", "per_class", "data_id")
    return {
        **{key: first.get(key) for key in shared},
        "runs": len(runs),
        "evaluation_ids": [r["evaluation_id"] for r in runs],
        "model_ids": [r["model_id"] for r in runs],
        "seeds": [r["seed"] for r in runs],
        "stats": summarise(runs, [k for k in AGGREGATED if any(k in r for r in runs)]),
    }


def avsiam_rows(runs: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The tables' rows from :func:`avsiam_row` rows: a label seen once as it is, runs sharing a label (and the
    facts) as one mean row, in first-seen order; plus the notes of labels kept apart."""
    groups, notes = group_rows(runs, lambda r: r["label"], _facts)
    return [group[0] if len(group) == 1 else _mean_row(group) for group in groups], notes


# ------------------------------------------------------------------------------------------------- tables


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _value(row: dict[str, Any], key: str, scale: float = 100.0, digits: int = 2) -> str:
    """A metric of a row in % (``scale`` 100), or ``mean ± sd (n=N)`` for a row of several runs."""
    stats = row.get("stats")
    if stats is not None:
        return mean_sd_text(stats.get(key, Stat(None, None, 0)), scale=scale, digits=digits)
    value = row.get(key)
    return "–" if value is None else f"{scale * value:.{digits}f}"


def _speed(row: dict[str, Any]) -> str:
    stats = row.get("stats")
    value = stats["clips_per_second"].mean if stats is not None else row.get("clips_per_second")
    return "–" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _ids(row: dict[str, Any]) -> str:
    evaluations = row.get("evaluation_ids") or [row["evaluation_id"]]
    models = row.get("model_ids") or [row["model_id"]]
    return f"{', '.join(f'`{e}`' for e in evaluations)} | {_cell(', '.join(f'`{m}`' for m in models))}"


def retrieval_table(rows: Sequence[dict[str, Any]], throughput: bool = True) -> str:
    """A→V and V→A R@1/5/10 (%) and median rank, chance R@1 = 1/N (%), clips, parameters, clips/s (left out with
    ``throughput=False``: what stays is the same on every machine) and the artifacts' ids."""
    recalls = [f"R@{k}" for k in RECALL_AT]
    cols = [f"A→V {r}" for r in recalls] + ["A→V MR"] + [f"V→A {r}" for r in recalls] + ["V→A MR"]
    head = "| run | what | " + " | ".join(cols) + " | chance R@1 | clips | params (M) |"
    head += (" clips/s |" if throughput else "") + " evaluation | model |"
    rule = "|---|---|" + "---:|" * (len(cols) + 3 + throughput) + "---|---|"
    lines = [head, rule]
    for r in rows:
        cells = [_value(r, key, 1.0 if key.endswith("_mr") else 100.0) for key in RETRIEVAL]
        lines.append(
            f"| {_cell(r['label'])} | {r['description']} | {' | '.join(cells)} | {_value(r, 'chance_r@1')} | "
            f"{r['clips']} | {format_millions(r['parameters'])} |"
            + (f" {_speed(r)} |" if throughput else "")
            + f" {_ids(r)} |"
        )
    return "\n".join(lines) + "\n"


def _metric_of(row: dict[str, Any]) -> str:
    keys = set(row.get("stats") or row)
    return "mAP" if any(k.startswith("map_") for k in keys) else "accuracy"


def classification_table(rows: Sequence[dict[str, Any]], throughput: bool = True) -> str:
    """Accuracy (or mAP) in % under audio-visual, audio-only and video-only inputs, the majority-class share
    (single-label), clips, parameters, clips/s (left out with ``throughput=False``) and the artifacts' ids."""
    head = "| run | what | metric | audio-visual | audio only | video only | majority class | clips | params (M) |"
    head += (" clips/s |" if throughput else "") + " evaluation | model |"
    rule = "|---|---|---|" + "---:|" * (6 + throughput) + "---|---|"
    lines = [head, rule]
    for r in rows:
        prefix = "map" if _metric_of(r) == "mAP" else "acc"
        cells = [_value(r, f"{prefix}_{name}") for name in MODE_NAMES.values()]
        lines.append(
            f"| {_cell(r['label'])} | {r['description']} | {_metric_of(r)} | {' | '.join(cells)} | "
            f"{_value(r, 'chance_acc')} | {r['clips']} | {format_millions(r['parameters'])} |"
            + (f" {_speed(r)} |" if throughput else "")
            + f" {_ids(r)} |"
        )
    return "\n".join(lines) + "\n"


def avsiam_notes(rows: Sequence[dict[str, Any]]) -> list[str]:
    """What makes rows not comparable: different features, a split other than test, a k-per-class subset."""
    facts = [RowFacts(r["label"], "avkd", r["data_id"], r["split"]) for r in rows]
    notes = comparability_notes(facts, unit="clips")
    for r in rows:
        if r["per_class"] is not None:
            notes.append(f"{r['label']}: only {r['per_class']} clips of each class were evaluated")
    return notes


def avsiam_markdown(
    title: str, rows: Sequence[dict[str, Any]], notes: Sequence[str] = (), throughput: bool = True
) -> str:
    """The whole ``report.md``: the retrieval table, the classification table and the notes."""
    lines = [
        f"# {title}",
        "",
        "Each row names its evaluation and model artifacts (`avkd artifacts show PATH` prints their lineage); a row"
        " of several evaluations that share a label (seeds of one recipe) shows mean ± sample sd (n runs)."
        " clips/s is the evaluation pass on the machine that ran it (every clip through both encoders and the"
        " three heads), a measurement outside the report's id.",
        "",
        "## Retrieval",
        "",
        "Audio→video (A→V) and video→audio (V→A) over the evaluated clips: L2-normalised mean-pooled features of"
        " the middle frame, a query's rank = the candidates scored strictly above its true partner. R@k in %,"
        " MR = median rank (1 = first); chance R@1 = 1/N.",
        "",
        retrieval_table(rows, throughput).rstrip(),
        "",
        "## Classification with missing modalities",
        "",
        "In %: accuracy (mAP for a multi-label corpus) of the fusion head on audio and video (audio-visual), of the"
        " audio head on audio alone and of the video head on video alone (logits averaged over the stored frames)."
        " A pre-trained model's heads are untrained (chance).",
        "",
        classification_table(rows, throughput).rstrip(),
        "",
    ]
    if notes:
        lines += ["## Notes", "", *(f"- {note}" for note in notes), ""]
    return "\n".join(lines)


def _aggregate_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in row.items() if key != "stats"}
    out["metrics"] = {key: s.to_json() for key, s in row["stats"].items() if key != "clips_per_second"}
    return out


def build_avsiam_report(
    evaluations: Sequence[Artifact | str | Path],
    out: str | Path,
    title: str | None = None,
    overwrite: bool = False,
    benches: Sequence[Artifact] = (),
) -> Artifact:
    """Write a ``report`` artifact (report.md, report.json, speed.json) from avsiam evaluation artifacts, rows
    in order; ``benches`` (bench artifacts) add the speed section (:mod:`avkd.report.bench`)."""
    arts = [e if isinstance(e, Artifact) else load_artifact(e, kind=EVALUATION) for e in evaluations]
    if not arts:
        raise UsageError("avkd report: give at least one evaluation artifact")
    for art in arts:
        if not (art.path / "metrics.json").is_file() or "a2v_r@1" not in art.metrics:
            raise UsageError(
                f"{art.path}: not an avsiam (clips) evaluation; it cannot be a row of this report"
            )
    title = title or DEFAULT_TITLE
    runs = [avsiam_row(a) for a in arts]
    rows, apart = avsiam_rows(runs)
    notes = apart + avsiam_notes(rows)
    with ArtifactWriter(
        out,
        REPORT,
        {"title": title, "task": "avsiam"},
        inputs=[*arts, *benches],
        overwrite=overwrite,
        logs=[SPEED, "report.md"],
    ) as writer:
        payload = {
            "title": title,
            "units": {
                "r@k, acc_*, map_*, chance_*": "fractions in [0, 1]",
                "*_mr": "median 1-based rank",
                "parameters": "count",
                "aggregates.metrics": "mean, sample sd (ddof 1) and n of the members' values",
                "speed.json": "clips per second of each evaluation pass (machine-dependent; a log)",
            },
            "runs": [{k: v for k, v in r.items() if k != "clips_per_second"} for r in runs],
            "aggregates": [_aggregate_json(r) for r in rows if "stats" in r],
            "notes": notes,
            **({"bench": bench_json(benches)} if benches else {}),
        }
        atomic_write_text(writer.path("report.json"), json.dumps(payload, indent=2) + "\n")
        speeds = {r["evaluation_id"]: r["clips_per_second"] for r in runs}
        atomic_write_text(writer.path(SPEED), json.dumps({"clips_per_second": speeds}, indent=2) + "\n")
        markdown = avsiam_markdown(title, rows, notes)
        atomic_write_text(
            writer.path("report.md"), markdown + ("\n" + bench_section(benches) if benches else "")
        )
        return writer.commit(metrics={"runs": len(runs), "rows": len(rows), "task": "avsiam"})
