"""``avkd distill``: a student from a frozen teacher with a named method."""

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


def distill(
    teacher: Annotated[Path, typer.Option("--teacher", "-t", help="Teacher model artifact (frozen).")],
    data: Annotated[Path, typer.Option("--data", "-d", help="lrs2-features artifact.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output student model artifact.")],
    method: Annotated[
        str | None, typer.Option(help="bce | kd | rkd | fitnets | minilm | nmtd | mtd.", show_default="mtd")
    ] = None,
    weighting: Annotated[
        str | None, typer.Option(help="uniform | manual | aw13 | aw25 | uw13 | uw25 (default: by method).")
    ] = None,
    layers: Annotated[
        str | None,
        typer.Option(help="CAD/VR layers: all, fusion4, av1-4,fusion1-4, va1,av4,fus3 (mtd, nmtd, minilm)."),
    ] = None,
    task: Annotated[str, typer.Option(help="sync (LRS2, VocaLiST) or mosei (CMU-MOSEI, MulT).")] = "sync",
    mosei_config: Annotated[
        int | None,
        typer.Option("--config-id", help="mosei: student-teacher configuration 1-5.", show_default="5"),
    ] = None,
    student: Annotated[
        str | None, typer.Option(help="Student model name.", show_default="mtdvocalist")
    ] = None,
    width: Annotated[int | None, typer.Option(help="Student width.", show_default="200")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs.", show_default="80")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size.", show_default="128")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate.", show_default="5e-5")] = None,
    device: Annotated[
        str | None, typer.Option(help="auto | cpu | cuda | cuda:N.", show_default="auto")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.", show_default="0")] = None,
    samples_per_epoch: Annotated[
        int | None, typer.Option(help="Training samples per epoch (default: one per clip).")
    ] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    resume: ResumeOption = False,
    json_out: JsonOption = False,
) -> None:
    """Train a student from a frozen teacher: sync (MTD and the MTDVocaLiST paper's baselines) or mosei (the
    video-only MulT student with none | crd-final | crd-penultimate | crd-post-attention | crd-attention |
    edam-s | edam-t)."""
    if task == "mosei":
        from avkd.distill.emotion_stage import EmotionDistillConfig, distill_emotion

        if any(v is not None for v in (weighting, layers, student, width, samples_per_epoch)):
            raise UsageError(
                "--weighting, --layers, --student, --width and --samples-per-epoch are sync options"
            )
        cfg = resolve(
            EmotionDistillConfig,
            config,
            set_,
            method=method,
            config=mosei_config,
            **{
                "loop.epochs": epochs,
                "loop.batch_size": batch_size,
                "loop.lr": lr,
                "loop.device": device,
                "loop.seed": seed,
            },
        )
        art = distill_emotion(cfg, teacher, data, out, overwrite=overwrite, resume=resume)
        if json_out:
            emit_json({"path": str(art.path), "id": art.id, "metrics": art.metrics})
        else:
            m = art.metrics
            log(
                f"{art.path}: {m['method']} student (config {m['config']}), {m['parameters']:,} parameters, "
                f"best val acc7 {m['best_val_acc7']:.4f}; id {art.id}"
            )
        return
    if task != "sync":
        raise UsageError(f"--task {task!r}: choose sync or mosei")
    from avkd.distill.stage import DistillConfig, distill_sync

    cfg = resolve(
        DistillConfig,
        config,
        set_,
        method=method,
        weighting=weighting,
        layers=layers,
        samples_per_epoch=samples_per_epoch,
        **{
            "student.name": student,
            "student.width": width,
            "loop.epochs": epochs,
            "loop.batch_size": batch_size,
            "loop.lr": lr,
            "loop.device": device,
            "loop.seed": seed,
        },
    )
    art = distill_sync(cfg, teacher, data, out, overwrite=overwrite, resume=resume)
    if json_out:
        emit_json({"path": str(art.path), "id": art.id, "metrics": art.metrics})
    else:
        m = art.metrics
        log(
            f"{art.path}: {m['method']} ({m['weighting']}) student, {m['parameters']:,} parameters, "
            f"best val F1 {m['best_val_f1']:.4f} at epoch {m['best_epoch']}; id {art.id}"
        )
