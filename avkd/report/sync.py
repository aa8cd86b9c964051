"""``avkd report``: tables and figures in the shape of the MTDVocaLiST paper, from evaluation artifacts.

A ``report`` artifact holds:

- ``report.md`` / ``report.json``: the runs in the layout of the paper's Table 1 (one row per evaluation, one
  column per context length K, accuracy in %), each row carrying its parameter count and the ids of its evaluation
  and model artifacts so that every number traces back to a run; then, in a separate table, the published LRS2
  numbers of docs/reference/vocalist.md §6 (:data:`PUBLISHED`), marked "(published, LRS2)" so they are never mistaken for runs.
  Evaluations that share a label (one recipe, several seeds) are one row of ``mean ± sd (n=N)`` per K
  (:func:`avkd.report.runs.table_rows`); ``report.json`` keeps every run (``runs``) and each mean (``aggregates``:
  mean, sample sd and n per K, with the members' ids and seeds).
- ``accuracy_vs_frames.png``: accuracy against K, one line per row (a mean with ±1 sd error bars), published
  rows dashed with hollow markers.
- ``size_vs_accuracy.png`` (paper Fig. 2): accuracy against parameters (millions, log axis), one panel per K,
  rows as filled markers (means with ±1 sd error bars), published numbers as hollow markers labelled "(published)".
- ``layers.png`` (paper Fig. 3), only when at least two layer-selection / weighting variants (method ``nmtd`` or
  ``mtd``) are among the rows: accuracy at K5 per variant (means with ±1 sd error bars), plus BCE rows as the
  baseline bar.
- ``loss_ratio.png`` (paper Fig. 4), only when some model's ``metrics.jsonl`` holds validation monitor losses
  (keys starting with ``val/``): each loss divided by its maximum over epochs ("losses are normalized by their
  respective maximum values across all epochs"), against epoch, one panel per run (each seed its own).

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display needed). When
matplotlib is not installed the tables are still written and ``report.md`` says that the figures were skipped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from avkd.core.artifacts import REPORT, Artifact, ArtifactWriter, atomic_write_text
from avkd.report.bench import bench_json, bench_section
from avkd.report.figures import draw_figures
from avkd.report.published import PUBLISHED, PUBLISHED_TAG
from avkd.report.runs import Run, RunMean, load_evaluations, loss_ratios, table_rows, union_frames
from avkd.report.tables import comparability_notes, published_markdown, table_markdown

__all__ = ["DEFAULT_TITLE", "build_sync_report", "render_markdown"]

DEFAULT_TITLE = "Audio-visual synchronisation: accuracy by context length"

_FIGURE_CAPTIONS = {
    "accuracy_vs_frames": "Accuracy against context length K; published LRS2 rows dashed with hollow markers.",
    "size_vs_accuracy": "Model size against accuracy (paper Fig. 2): runs filled, published numbers hollow.",
    "layers": "Accuracy at K5 of layer-selection and weighting strategies (paper Fig. 3).",
    "loss_ratio": "Validation losses normalised by their maximum over epochs (paper Fig. 4).",
}


def render_markdown(
    title: str,
    runs: Sequence[Run],
    frames: Sequence[int],
    figures: dict[str, str | None],
    notes: Sequence[str],
) -> str:
    """The whole ``report.md``; ``runs`` are the table's rows (:func:`avkd.report.runs.table_rows`)."""
    tolerance = "±1 frame"
    parts = [
        f"# {title}",
        "",
        "Accuracy (%) of finding the true audio offset among 31 candidates (±15 frames), counted correct within "
        f"{tolerance}, for each context length K (video frames at 25 fps). Each row names the evaluation and model "
        "artifacts it comes from (`avkd artifacts show PATH` prints their lineage); a row of several evaluations "
        "that share a label (seeds of one recipe) shows mean ± sample sd (n evaluations with a number at that K).",
        "",
        "## Runs",
        "",
        table_markdown(runs, frames, throughput=False).rstrip(),
        "",
        "## Published reference numbers " + PUBLISHED_TAG,
        "",
        "Not runs of this toolkit: numbers reported on the LRS2 test set (1,243 clips, ±1 frame) as listed in the "
        "MTDVocaLiST repository, for comparison only.",
        "",
        published_markdown(
            [k for k in frames if any(k in p["accuracy"] for p in PUBLISHED)] or [5, 7, 9, 11, 13, 15]
        ).rstrip(),
        "",
        "## Figures",
        "",
    ]
    drawn = [(name, file) for name, file in figures.items() if file]
    if drawn:
        for name, file in drawn:
            parts += [f"![{_FIGURE_CAPTIONS[name]}]({file})", "", f"*{_FIGURE_CAPTIONS[name]}*", ""]
    else:
        parts += ["No figures were drawn (see the notes).", ""]
    if notes:
        parts += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(parts)


#: The evaluations' scored windows per second, keyed by evaluation id: a log of the machines the evaluations ran
#: on, kept beside the report but out of its id (``report.json`` and ``report.md`` hold what is the same on every
#: machine for the same evaluations, so the same evaluations give the same report id).
SPEED = "speed.json"


def report_runs(report: Artifact) -> list[Run]:
    """Every single run a sync report holds (``report.json``, with the windows/s of ``speed.json``), in table
    order."""
    runs = [Run.from_json(r) for r in json.loads((report.path / "report.json").read_text())["runs"]]
    speed_file = report.path / SPEED
    speeds = json.loads(speed_file.read_text())["windows_per_second"] if speed_file.is_file() else {}
    return [replace(run, windows_per_second=speeds.get(run.eval_id)) for run in runs]


def report_table(report: Artifact, throughput: bool = False) -> str:
    """A sync report's runs table: runs sharing a label as one mean ± sd row (the published rows and figures
    are in report.md); what ``avkd report`` and the demo print. Without ``throughput`` the evaluations' windows/s
    (machine-dependent; :data:`SPEED`) is left out, so the same runs print the same table on any machine."""
    runs = report_runs(report)
    rows, _ = table_rows(runs)
    return table_markdown(rows, union_frames(runs), throughput=throughput)


def build_sync_report(
    evaluations: Sequence[Artifact | str | Path],
    out: str | Path,
    title: str | None = None,
    overwrite: bool = False,
    benches: Sequence[Artifact] = (),
) -> Artifact:
    """Write a ``report`` artifact (tables, JSON and figures) from evaluation artifacts, rows in the order given;
    ``benches`` (bench artifacts) add the speed section (:mod:`avkd.report.bench`)."""
    loaded = load_evaluations(evaluations)
    arts = [a for a, _ in loaded]
    runs = [r for _, r in loaded]
    title = title or DEFAULT_TITLE
    frames = union_frames(runs)
    rows, apart = table_rows(runs)
    notes = [note for run in runs for note in run.notes] + apart + comparability_notes(rows)
    config = {"title": title}
    with ArtifactWriter(
        out, REPORT, config, inputs=[*arts, *benches], overwrite=overwrite, logs=[SPEED]
    ) as writer:
        figures = draw_figures(rows, frames, writer.workdir, notes, singles=runs)
        payload = {
            "title": title,
            "units": {
                "runs.accuracy": "fraction in [0, 1], keyed by K; null = not a number",
                "runs.parameters": "count",
                "runs.gmacs_per_window": "10^9 multiply-adds of one window (encode_video + encode_audio + fuse)",
                "speed.json": "scored video windows per second of each evaluation (machine-dependent; a log)",
                "aggregates.accuracy": "mean, sample sd (ddof 1) and n of the members' fractions, keyed by K",
                "published.accuracy": "percent as published, keyed by K",
                "published.params": "millions",
            },
            "frames": frames,
            "runs": [replace(run, windows_per_second=None).to_json() for run in runs],
            "aggregates": [row.summary_json() for row in rows if isinstance(row, RunMean)],
            "published": [
                {**row, "accuracy": {str(k): v for k, v in row["accuracy"].items()}, "tag": PUBLISHED_TAG}
                for row in PUBLISHED
            ],
            "loss_ratio": {
                run.eval_id: {key: [list(p) for p in pts] for key, pts in ratios.items()}
                for run in runs
                if (ratios := loss_ratios(run.history))
            },
            "figures": figures,
            "notes": notes,
            **({"bench": bench_json(benches)} if benches else {}),
        }
        atomic_write_text(writer.path("report.json"), json.dumps(payload, indent=2) + "\n")
        speeds = {run.eval_id: run.windows_per_second for run in runs}
        atomic_write_text(writer.path(SPEED), json.dumps({"windows_per_second": speeds}, indent=2) + "\n")
        markdown = render_markdown(title, rows, frames, figures, notes)
        atomic_write_text(
            writer.path("report.md"), markdown + ("\n" + bench_section(benches) if benches else "")
        )
        metrics = {
            "runs": len(runs),
            "rows": len(rows),
            "frames": frames,
            "figures": sorted(name for name, file in figures.items() if file),
        }
        return writer.commit(metrics=metrics)
