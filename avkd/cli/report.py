"""``avkd report``: tables and figures from evaluation artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import JsonOption, OverwriteOption, emit_json
from avkd.progress import log


def report(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output report artifact.")],
    evaluations: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Evaluation artifacts, one table row each, in this order.",
            metavar="EVALUATION",
            show_default=False,
        ),
    ] = None,
    title: Annotated[str | None, typer.Option(help="Heading of report.md.", show_default=False)] = None,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """Accuracy table (runs, then published LRS2 numbers) and figures: size vs accuracy, layers, loss ratio."""
    from avkd.report import Run, build_report, table_markdown, union_frames

    art = build_report(evaluations or [], out, title=title, overwrite=overwrite)
    if art.metrics.get("task") == "mosei":  # the emotion table: printed as written
        if json_out:
            emit_json(
                {"path": str(art.path), "id": art.id, "metrics": art.metrics, "files": sorted(art.files)}
            )
        else:
            typer.echo((art.path / "report.md").read_text().rstrip())
        return
    runs = [Run.from_json(r) for r in json.loads((art.path / "report.json").read_text())["runs"]]
    if json_out:
        emit_json(
            {
                "path": str(art.path),
                "id": art.id,
                "metrics": art.metrics,
                "files": sorted(art.files),
                "runs": [
                    {
                        "label": r.label,
                        "variant": r.variant,
                        "evaluation": r.eval_id,
                        "model": r.model_id,
                        "model_status": r.model_status,
                        "parameters": r.parameters,
                        "accuracy": {str(k): v for k, v in r.accuracy.items()},
                    }
                    for r in runs
                ],
            }
        )
    else:
        typer.echo(table_markdown(runs, union_frames(runs)).rstrip())
        log(
            f"{art.path}: {len(runs)} runs, figures {', '.join(art.metrics['figures']) or 'none'}; id {art.id}"
        )
