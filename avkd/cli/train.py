"""``avkd train``: teacher (or BCE-only student) training."""

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
    emit_json,
    resolve,
)
from avkd.errors import UsageError
from avkd.progress import log

app = typer.Typer(help="Train models.", no_args_is_help=True)


@app.command("teacher")
def teacher(
    data: Annotated[
        Path, typer.Option("--data", "-d", help="lrs2-features (sync) or mosei-features artifact.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output model artifact.")],
    task: Annotated[str, typer.Option(help="sync (LRS2, VocaLiST) or mosei (CMU-MOSEI, MulT).")] = "sync",
    model: Annotated[
        str | None, typer.Option(help="Registered model name.", show_default="vocalist / mult")
    ] = None,
    branch: Annotated[
        str | None,
        typer.Option(help="mosei: MulT branch complete | video | audio | language.", show_default="complete"),
    ] = None,
    width: Annotated[
        int | None,
        typer.Option(help="Model width: 512 = VocaLiST teacher, 200 = student.", show_default="512"),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs.", show_default="50")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size.", show_default="128")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate.", show_default="5e-5")] = None,
    device: Annotated[
        str | None, typer.Option(help="auto | cpu | cuda | cuda:N.", show_default="auto")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.", show_default="0")] = None,
    workers: Annotated[int | None, typer.Option(help="DataLoader workers.", show_default="0")] = None,
    samples_per_epoch: Annotated[
        int | None, typer.Option(help="Training samples per epoch (default: one per clip).")
    ] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    resume: ResumeOption = False,
    json_out: JsonOption = False,
) -> None:
    """Train a teacher: a sync model with balanced pairs and BCE (VocaLiST, reference §3.1), or MulT as a 7-way
    emotion classifier (--task mosei).

    SIGTERM or SIGUSR1 saves the full training state and exits with code 75; rerun with --resume.
    """
    loop = {
        "loop.epochs": epochs,
        "loop.batch_size": batch_size,
        "loop.lr": lr,
        "loop.device": device,
        "loop.seed": seed,
        "loop.num_workers": workers,
    }
    if task == "mosei":
        from avkd.train.emotion import EmotionTrainConfig, train_emotion_teacher

        if width is not None or samples_per_epoch is not None:
            raise UsageError(
                "--width and --samples-per-epoch are sync options; use --set model.kwargs.d=... for MulT"
            )
        cfg = resolve(
            EmotionTrainConfig, config, set_, **{"model.name": model, "model.kwargs.branch": branch}, **loop
        )
        art = train_emotion_teacher(cfg, data, out, overwrite=overwrite, resume=resume)
        _print(art, json_out, "best_val_acc7")
        return
    if task != "sync":
        raise UsageError(f"--task {task!r}: choose sync or mosei")
    if branch is not None:
        raise UsageError("--branch is a mosei option")
    from avkd.train.sync import SyncTrainConfig, train_sync_teacher

    cfg = resolve(
        SyncTrainConfig,
        config,
        set_,
        **{"model.name": model, "model.width": width},
        **loop,
        samples_per_epoch=samples_per_epoch,
    )
    art = train_sync_teacher(cfg, data, out, overwrite=overwrite, resume=resume)
    _print(art, json_out, "best_val_f1")


def _print(art, json_out: bool, metric: str) -> None:
    if json_out:
        emit_json({"path": str(art.path), "id": art.id, "metrics": art.metrics})
        return
    m = art.metrics
    log(
        f"{art.path}: {m['parameters']:,} parameters, {metric} {m[metric]:.4f} at epoch {m['best_epoch']}; id {art.id}"
    )
