"""Markdown tables: the report's rows against context length, the published rows, and one evaluation's row."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from avkd.evaluate.classify import EmotionMetrics
from avkd.evaluate.retrieval import SyncEvaluation
from avkd.report.published import PUBLISHED, PUBLISHED_TAG
from avkd.report.runs import Run

# ------------------------------------------------------------------------------------------ tables


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def format_millions(parameters: float | None, already_millions: bool = False) -> str:
    """Parameter count in millions: two decimals from 1M up, three significant digits below."""
    if parameters is None:
        return "–"
    m = parameters if already_millions else parameters / 1e6
    return f"{m:.2f}" if m >= 1 else f"{m:.3g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table_markdown(runs: Sequence[Run], frames: Sequence[int]) -> str:
    """Table 1 layout: one row per run, accuracy in % (2 decimals) per K, params (M), clips and artifact ids."""
    head = "| run | " + " | ".join(f"K{k}" for k in frames) + " | params (M) | clips | evaluation | model |"
    rule = "|---|" + "---:|" * len(frames) + "---:|---:|---|---|"
    lines = [head, rule]
    for run in runs:
        cells = [_pct(run.accuracy.get(k)) for k in frames]
        model = f"`{run.model_id}`" if run.model_id else "–"
        if run.model_status != "ok":
            model += f" ({run.model_status})"
        clips = "–" if run.clips is None else str(run.clips)
        lines.append(
            f"| {_cell(run.label)} | "
            + " | ".join(cells)
            + f" | {format_millions(run.parameters)} | {clips} | `{run.eval_id}` | {_cell(model)} |"
        )
    return "\n".join(lines) + "\n"


def _as_published(value: float) -> str:
    """A published number at the precision it was printed with (one or two decimals): 92.0, 91.46, 13.6."""
    text = f"{value:.2f}"
    return text[:-1] if text.endswith("0") else text


def published_markdown(frames: Sequence[int]) -> str:
    """The docs/reference/vocalist.md §6 rows as a separate table (numbers as printed, in %)."""
    head = "| model | params (M) | " + " | ".join(f"K{k}" for k in frames) + " | source |"
    rule = "|---|---:|" + "---:|" * len(frames) + "---|"
    lines = [head, rule]
    for row in PUBLISHED:
        cells = [_as_published(row["accuracy"][k]) if k in row["accuracy"] else "–" for k in frames]
        lines.append(
            f"| {row['name']} {PUBLISHED_TAG} | {_as_published(row['params'])} | "
            + " | ".join(cells)
            + f" | {row['source']} |"
        )
    return "\n".join(lines) + "\n"


def comparability_notes(runs: Sequence[Run]) -> list[str]:
    notes = []
    data = {r.data_id for r in runs if r.data_id}
    if len(data) > 1:
        notes.append(
            "the runs were evaluated on different feature artifacts ("
            + ", ".join(f"`{d}`" for d in sorted(data))
            + "); their numbers are not directly comparable"
        )
    for run in runs:
        if run.split not in (None, "test"):
            notes.append(f"{run.label}: evaluated on split {run.split!r}, not 'test'")
        if run.limit is not None:
            notes.append(f"{run.label}: only the first {run.limit} clips were evaluated")
    protocols = {r.protocol for r in runs}
    if len(protocols) > 1:
        notes.append(
            "the runs were counted under different protocols ("
            + ", ".join(f"{r.label}: {r.protocol}" for r in runs)
            + "); their numbers are not directly comparable"
        )
    elif protocols == {"reference"}:
        notes.append(
            "counted with the official script's arithmetic (--protocol reference: N−5 windows, scored zero "
            "padding, −1000 sentinels averaged in), as the published rows are"
        )
    return notes


def emotion_table(rows: Sequence[dict[str, Any]]) -> str:
    """The emotion report's Table-1-shaped runs table (markdown) of :func:`avkd.report.emotion.emotion_row` rows."""
    lines = [
        "| run | what | Acc7 | F1 | Acc2 | params (M) | ms / batch | segments | majority Acc7 | evaluation | model |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['description']} | {_fraction_pct(r['acc7'])} | {_fraction_pct(r['f1'])} | "
            f"{_fraction_pct(r['acc2'])} | {r['parameters'] / 1e6:.3f} | {r['ms_per_batch']:.1f} (batch "
            f"{r['batch_size']}) | {r['n']} | {_fraction_pct(r['majority_acc7'])} | `{r['evaluation_id']}` | "
            f"`{r['model_id']}` |"
        )
    return "\n".join(lines)


def _fraction_pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def sync_evaluation_table(evaluation: SyncEvaluation, label: str) -> str:
    """One sync evaluation as a one-row markdown table in the layout of docs/reference/vocalist.md §6: accuracy in % per K, plus
    the clip count (the evaluation artifact's ``accuracy.md``)."""
    frames = evaluation.frames
    head = "| model | clips | " + " | ".join(f"K{k}" for k in frames) + " |"
    rule = "|---|---|" + "---|" * len(frames)
    cells = [
        "–" if math.isnan(evaluation.accuracy[k]) else f"{100 * evaluation.accuracy[k]:.2f}" for k in frames
    ]
    row = f"| {label} | {len(evaluation.clips)} | " + " | ".join(cells) + " |"
    return "\n".join([head, rule, row]) + "\n"


def emotion_metrics_table(metrics: EmotionMetrics, label: str) -> str:
    """One emotion evaluation as a one-row markdown table (header, separator, row); percentages with 2 decimals
    like Table 1 (the evaluation artifact's ``metrics.md``)."""

    def pct(value: float) -> str:
        return "n/a" if not math.isfinite(value) else f"{100.0 * value:.2f}"

    def num(value: float) -> str:
        return "n/a" if not math.isfinite(value) else f"{value:.4f}"

    m = metrics
    header = (
        "| model | n | Acc7 % | F1-w7 % | F1-m7 % | Acc2 % | F1-bin % | Acc2 (>=0) % | F1-bin (>=0) % "
        "| MAE | Corr | Majority Acc7 % |"
    )
    sep = "|" + "---|" * 12
    cells = [
        label.replace("|", "\\|"),
        str(m.n),
        pct(m.acc7),
        pct(m.f1_weighted),
        pct(m.f1_macro),
        pct(m.acc2),
        pct(m.f1_binary),
        pct(m.acc2_nonneg),
        pct(m.f1_binary_nonneg),
        num(m.mae),
        num(m.corr),
        f"{pct(m.majority_acc7)} (class {m.majority_class - 3:+d}, {m.majority_from})",
    ]
    return "\n".join([header, sep, "| " + " | ".join(cells) + " |"])
