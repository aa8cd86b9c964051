"""``avkd train``: a teacher (or a student trained alone) for a task."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import (
    ConfigOption,
    JsonOption,
    OverwriteOption,
    ResumeOption,
    SetOption,
    TaskOption,
    emit_artifact,
)

app = typer.Typer(help="Train models.", no_args_is_help=True)


@app.command("teacher")
def teacher(
    data: Annotated[Path, typer.Option("--data", "-d", help="The task's features artifact.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output model artifact.")],
    task: TaskOption = "sync",
    model: Annotated[
        str | None, typer.Option(help="Registered model name.", show_default="vocalist / mult")
    ] = None,
    branch: Annotated[
        str | None,
        typer.Option(
            help="emotion: MulT branch complete | video | audio | language.", show_default="complete"
        ),
    ] = None,
    width: Annotated[
        int | None,
        typer.Option(help="sync: model width, 512 = VocaLiST teacher, 200 = student.", show_default="512"),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs.", show_default="50 / 40")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size.", show_default="128 / 24")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate.", show_default="5e-5 / 1e-3")] = None,
    device: Annotated[
        str | None, typer.Option(help="auto | cpu | cuda | cuda:N.", show_default="auto")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.", show_default="0")] = None,
    workers: Annotated[int | None, typer.Option(help="DataLoader workers.", show_default="0")] = None,
    samples_per_epoch: Annotated[
        int | None, typer.Option(help="sync: training samples per epoch (default: one per clip).")
    ] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    resume: ResumeOption = False,
    json_out: JsonOption = False,
) -> None:
    """Train a teacher: a sync model with balanced pairs and BCE (VocaLiST's recipe), or MulT as a 7-way emotion
    classifier (--task emotion).

    SIGTERM or SIGUSR1 saves the full training state and exits with code 75; rerun with --resume.
    """
    from avkd.tasks import RunOptions, get_task

    chosen = get_task(task)
    flags = {
        "model": model,
        "branch": branch,
        "width": width,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "device": device,
        "seed": seed,
        "workers": workers,
        "samples_per_epoch": samples_per_epoch,
    }
    cfg = chosen.config("train", config, set_ or (), flags)
    art = chosen.train(cfg, data, out, RunOptions(overwrite=overwrite, resume=resume))
    emit_artifact(art, json_out, chosen.describe_model(art))
