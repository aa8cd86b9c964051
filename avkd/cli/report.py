"""``avkd report``: tables and figures from evaluation artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import JsonOption, OverwriteOption, emit_artifact


def report(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output report artifact.")],
    evaluations: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Evaluation artifacts of one task, one table row each, in this order; those that share a "
            "label (seeds of one recipe) make one row of mean ± sd. Bench artifacts (avkd bench) among them "
            "add a speed table.",
            metavar="EVALUATION",
            show_default=False,
        ),
    ] = None,
    title: Annotated[str | None, typer.Option(help="Heading of report.md.", show_default=False)] = None,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """The task's report: sync (Table 1, Figs. 2-4 of the MTDVocaLiST paper) or emotion (the seed paper's
    Table 1), each beside the published numbers."""
    from avkd.tasks import RunOptions
    from avkd.tasks.base import build_report

    chosen, art = build_report(evaluations or [], out, title, RunOptions(overwrite=overwrite))
    if not json_out:
        typer.echo(chosen.report_text(art))
    emit_artifact(
        art,
        json_out,
        f"{art.path}: {art.metrics.get('runs')} runs; id {art.id}",
        files=sorted(art.files),
        **chosen.report_json(art),
    )
