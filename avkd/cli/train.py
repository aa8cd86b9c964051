"""``avkd train``: a teacher (or a student trained alone) for a task."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import (
    BatchSizeOption,
    ConfigOption,
    DeterministicOption,
    DeviceOption,
    EpochsOption,
    JsonOption,
    LrOption,
    OverwriteOption,
    ResumeOption,
    SamplesPerEpochOption,
    SeedOption,
    SetOption,
    SyncBnOption,
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
    epochs: EpochsOption = None,
    batch_size: BatchSizeOption = None,
    lr: LrOption = None,
    device: DeviceOption = None,
    seed: SeedOption = None,
    deterministic: DeterministicOption = None,
    sync_bn: SyncBnOption = None,
    workers: Annotated[int | None, typer.Option(help="DataLoader workers.", show_default="0")] = None,
    samples_per_epoch: SamplesPerEpochOption = None,
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
        "deterministic": deterministic,
        "sync_bn": sync_bn,
        "workers": workers,
        "samples_per_epoch": samples_per_epoch,
    }
    cfg = chosen.config("train", config, set_ or (), flags)
    art = chosen.train(cfg, data, out, RunOptions(overwrite=overwrite, resume=resume))
    emit_artifact(art, json_out, chosen.describe_model(art))
