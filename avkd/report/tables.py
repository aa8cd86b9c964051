"""Markdown tables: the report's rows against context length, the published rows, and one evaluation's row."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from avkd.evaluate.classify import EmotionMetrics
from avkd.evaluate.retrieval import SyncEvaluation
from avkd.report.aggregate import Stat, mean_sd_text
from avkd.report.published import PUBLISHED, PUBLISHED_TAG
from avkd.report.runs import Run, RunMean

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


def _model_cell(run: Run) -> str:
    model = f"`{run.model_id}`" if run.model_id else "–"
    return model if run.model_status == "ok" else f"{model} ({run.model_status})"


def _accuracy_cell(run: Run, k: int) -> str:
    """``37.22``, or for a :class:`RunMean` ``41.54 ± 1.20 (n=3)`` (sample sd over the runs with a value at K)."""
    if isinstance(run, RunMean):
        return mean_sd_text(run.stats.get(k, Stat(None, None, 0)))
    return _pct(run.accuracy.get(k))


def _gmacs(value: float | None) -> str:
    """GMACs at three significant digits (a thin model's are thousandths)."""
    return "–" if value is None else f"{value:.3g}"


def _speed(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def table_markdown(runs: Sequence[Run], frames: Sequence[int], throughput: bool = True) -> str:
    """Table 1 layout: one row per run (or per :class:`RunMean` of runs sharing a label), accuracy in %
    (2 decimals) per K, params (M), GMACs of one window (encode_video + encode_audio + fuse,
    :mod:`avkd.evaluate.cost`), the evaluation's scored windows per second (machine-dependent; a mean's is the
    members' mean), clips and artifact ids (every member's, for a mean). ``throughput=False`` leaves the
    windows/s column out: what stays is the same on every machine for the same runs."""
    head = "| run | " + " | ".join(f"K{k}" for k in frames)
    head += (
        " | params (M) | GMACs/window"
        + (" | windows/s" if throughput else "")
        + " | clips | evaluation | model |"
    )
    rule = "|---|" + "---:|" * (len(frames) + 3 + throughput) + "---|---|"
    lines = [head, rule]
    for run in runs:
        cells = [_accuracy_cell(run, k) for k in frames]
        members = run.members if isinstance(run, RunMean) else [run]
        evaluations = ", ".join(f"`{r.eval_id}`" for r in members)
        models = ", ".join(_model_cell(r) for r in members)
        clips = "–" if run.clips is None else str(run.clips)
        lines.append(
            f"| {_cell(run.label)} | "
            + " | ".join(cells)
            + f" | {format_millions(run.parameters)} | {_gmacs(run.gmacs_per_window)}"
            + (f" | {_speed(run.windows_per_second)}" if throughput else "")
            + f" | {clips} | {evaluations} | {_cell(models)} |"
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


class Comparable(Protocol):
    """What decides whether two report rows' numbers compare: a sync :class:`Run`, or :class:`RowFacts`."""

    label: str
    protocol: str
    data_id: str | None
    split: str | None
    limit: int | None


@dataclass(frozen=True)
class RowFacts:
    """:class:`Comparable` for rows kept as dicts (the emotion report's)."""

    label: str
    protocol: str = "avkd"
    data_id: str | None = None
    split: str | None = None
    limit: int | None = None


@dataclass(frozen=True)
class ProtocolNotes:
    """What a task's report says about its rows' protocols: ``verb`` (the runs were ... under different
    protocols), ``mixed`` (what that means for the numbers) and ``reference`` (when every row is the reference)."""

    verb: str
    mixed: str
    reference: str


#: The sync protocols (avkd.evaluate.reference_protocol).
SYNC_PROTOCOL_NOTES = ProtocolNotes(
    verb="counted",
    mixed="their numbers are not directly comparable",
    reference="counted with the official script's arithmetic (--protocol reference: N−5 windows, scored zero "
    "padding, −1000 sentinels averaged in), as the published rows are",
)
#: The emotion protocols (avkd.evaluate.classify, module docstring item 9): only the binary F1 differs.
EMOTION_PROTOCOL_NOTES = ProtocolNotes(
    verb="computed",
    mixed="their F1-bin is not directly comparable: the reference protocol (MulT's eval_mosei_senti) weights it "
    "by the predicted classes' supports, avkd by the true ones; the other columns do not depend on the protocol",
    reference="computed with MulT's eval_mosei_senti convention (--protocol reference: F1-bin weighted by the "
    "predicted classes' supports), as MulT's published numbers are",
)


def comparability_notes(
    runs: Sequence[Comparable], protocols: ProtocolNotes = SYNC_PROTOCOL_NOTES, unit: str = "clips"
) -> list[str]:
    """Notes on what makes the rows' numbers not comparable with one another or with the published ones:
    different features artifacts, a split other than test, a limit on the ``unit`` evaluated, and protocols
    (mixed, or all the reference; worded by ``protocols``)."""
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
            notes.append(f"{run.label}: only the first {run.limit} {unit} were evaluated")
    names = {r.protocol for r in runs}
    if len(names) > 1:
        notes.append(
            f"the runs were {protocols.verb} under different protocols ("
            + ", ".join(f"{r.label}: {r.protocol}" for r in runs)
            + f"); {protocols.mixed}"
        )
    elif names == {"reference"}:
        notes.append(protocols.reference)
    return notes


#: The emotion table's metric columns: (header, row key).
EMOTION_COLUMNS = (("Acc7", "acc7"), ("F1", "f1"), ("Acc2", "acc2"), ("F1-bin", "f1_binary"))


def emotion_table(rows: Sequence[dict[str, Any]], timing: bool = True) -> str:
    """The emotion report's Table-1-shaped runs table (markdown) of :func:`avkd.report.emotion.emotion_row` rows,
    or of :func:`avkd.report.emotion.emotion_rows` rows, where a mean of runs sharing a label (``stats``) shows
    ``mean ± sd (n=N)``. The protocol column says which metric convention each row used. ``timing=False``
    leaves out the ms / batch column, a measurement that differs from run to run (the demo's printed table, which
    a rerun reproduces exactly)."""
    metrics = " | ".join(name for name, _ in EMOTION_COLUMNS)
    ms_head, ms_rule = (" ms / batch |", "---:|") if timing else ("", "")
    lines = [
        f"| run | what | {metrics} | params (M) |{ms_head} segments | majority Acc7 | protocol | evaluation "
        "| model |",
        "|---|---|" + "---:|" * len(EMOTION_COLUMNS) + f"---:|{ms_rule}---:|---:|---|---|---|",
    ]
    for r in rows:
        stats = r.get("stats")
        cells = [_emotion_cell(r, key) for _, key in EMOTION_COLUMNS]
        ms = stats["ms_per_batch"].mean if stats else r["ms_per_batch"]
        ms_cell = f" {ms:.1f} (batch {r['batch_size']}) |" if timing else ""
        evaluations = r.get("evaluation_ids") or [r["evaluation_id"]]
        models = r.get("model_ids") or [r["model_id"]]
        lines.append(
            f"| {_cell(r['label'])} | {r['description']} | {' | '.join(cells)} | {r['parameters'] / 1e6:.3f} |"
            f"{ms_cell} {r['n']} | {_fraction_pct(r['majority_acc7'])} | "
            f"{r.get('protocol', 'avkd')} | {', '.join(f'`{e}`' for e in evaluations)} | "
            f"{_cell(', '.join(f'`{m}`' for m in models))} |"
        )
    return "\n".join(lines)


def _emotion_cell(row: dict[str, Any], key: str) -> str:
    stats = row.get("stats")
    if stats:
        return mean_sd_text(stats[key])
    return _fraction_pct(row.get(key))


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
        "| model | n | Acc7 % | Acc5 % | F1-w7 % | F1-m7 % | Acc2 % | F1-bin % | Acc2 (>=0) % | F1-bin (>=0) % "
        "| MAE | Corr | Majority Acc7 % | protocol |"
    )
    sep = "|" + "---|" * 14
    cells = [
        label.replace("|", "\\|"),
        str(m.n),
        pct(m.acc7),
        pct(m.acc5),
        pct(m.f1_weighted),
        pct(m.f1_macro),
        pct(m.acc2),
        pct(m.f1_binary),
        pct(m.acc2_nonneg),
        pct(m.f1_binary_nonneg),
        num(m.mae),
        num(m.corr),
        f"{pct(m.majority_acc7)} (class {m.majority_class - 3:+d}, {m.majority_from})",
        m.protocol,
    ]
    return "\n".join([header, sep, "| " + " | ".join(cells) + " |"])
