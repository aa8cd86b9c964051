"""``avkd train``: a teacher (or a student trained alone) for a task."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import (
    LOOP_FLAG_NAMES,
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
    loop_flags,
    resolve,
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
    objective: Annotated[
        str | None,
        typer.Option(
            help="sync: bce (VocaLiST's); pm (Perfect Match) or contrastive for a model that embeds each window "
            "(syncnet, avsiam_sync); offsets (each video window against its 31 candidate audio windows).",
            show_default="bce",
        ),
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(
            help="Start from a pre-trained model artifact (avkd pretrain): an avsiam encoder for avsiam_sync "
            "(sync), avsiam_emotion (emotion) or an avsiam fine-tune."
        ),
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
        "objective": objective,
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
    art = chosen.train(cfg, data, out, RunOptions(overwrite=overwrite, resume=resume), init=init)
    emit_artifact(art, json_out, chosen.describe_model(art))


@app.command("avsiam")
def avsiam(
    data: Annotated[Path, typer.Option("--data", "-d", help="A clips-features artifact.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output model artifact.")],
    init: Annotated[
        Path | None,
        typer.Option(help="Pre-trained avsiam model artifact (avkd pretrain); without it, from scratch."),
    ] = None,
    modalities: Annotated[
        str | None,
        typer.Option(
            help="mixed (each iteration audio-visual, audio-only or video-only, 50/25/25 %) or av.",
            show_default="mixed",
        ),
    ] = None,
    head_lr: Annotated[
        float | None,
        typer.Option(help="Learning rate of the heads as a multiple of --lr.", show_default="10"),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(
            help="avsiam size from scratch: toy | s | b | l | h (with --init: the model's).",
            show_default="toy",
        ),
    ] = None,
    epochs: EpochsOption = None,
    batch_size: BatchSizeOption = None,
    lr: LrOption = None,
    device: DeviceOption = None,
    seed: SeedOption = None,
    deterministic: DeterministicOption = None,
    workers: Annotated[int | None, typer.Option(help="DataLoader workers.", show_default="0")] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    resume: ResumeOption = False,
    json_out: JsonOption = False,
) -> None:
    """Fine-tune AVSiam for classification on clips features (the released recipe: mixed modalities, heads at
    10x the rate, cross-entropy with label smoothing 0.1); the model is the epoch with the best held-out
    audio-visual accuracy.

    SIGTERM or SIGUSR1 saves the full training state and exits with code 75; rerun with --resume.
    """
    from avkd.tasks.avsiam.config import AVSiamFinetuneConfig
    from avkd.tasks.avsiam.finetune import finetune_avsiam

    flags = {
        "size": size,
        "modalities": modalities,
        "head_lr": head_lr,
        **loop_flags(epochs, batch_size, lr, device, seed, deterministic, workers),
    }
    cfg = resolve(AVSiamFinetuneConfig, config, set_, LOOP_FLAG_NAMES, **flags)
    art = finetune_avsiam(cfg, data, out, init=init, overwrite=overwrite, resume=resume)
    m = art.metrics
    emit_artifact(
        art,
        json_out,
        f"{art.path}: avsiam {m['modalities']}, {m['parameters']:,} parameters, {m['epochs']} epochs, best epoch "
        f"{m['best_epoch']}: accuracy av {m['best_val_acc']:.3f}, audio only {m['best_val_acc_audio_only']:.3f}, "
        f"video only {m['best_val_acc_video_only']:.3f}; id {art.id}",
    )
