"""``avkd distill``: a student from a frozen teacher with a named method."""

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


def distill(
    teacher: Annotated[Path, typer.Option("--teacher", "-t", help="Teacher model artifact (frozen).")],
    data: Annotated[Path, typer.Option("--data", "-d", help="The task's features artifact.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output student model artifact.")],
    method: Annotated[
        str | None,
        typer.Option(
            help="sync: bce | kd | rkd | fitnets | minilm | nmtd | mtd; emotion: none | crd-final | "
            "crd-penultimate | crd-post-attention | crd-attention | edam-s | edam-t.",
            show_default="mtd / edam-s",
        ),
    ] = None,
    task: TaskOption = "sync",
    weighting: Annotated[
        str | None,
        typer.Option(help="sync: uniform | manual | aw13 | aw25 | uw13 | uw25 (default: the method's)."),
    ] = None,
    layers: Annotated[
        str | None,
        typer.Option(
            help="sync: CAD/VR layers: all, fusion4, av1-4,fusion1-4, va1,av4,fus3 (mtd, nmtd, minilm)."
        ),
    ] = None,
    config_id: Annotated[
        int | None,
        typer.Option("--config-id", help="emotion: student-teacher configuration 1-5.", show_default="5"),
    ] = None,
    student: Annotated[
        str | None, typer.Option(help="sync: student model name.", show_default="mtdvocalist")
    ] = None,
    width: Annotated[int | None, typer.Option(help="sync: student width.", show_default="200")] = None,
    epochs: EpochsOption = None,
    batch_size: BatchSizeOption = None,
    lr: LrOption = None,
    device: DeviceOption = None,
    seed: SeedOption = None,
    deterministic: DeterministicOption = None,
    sync_bn: SyncBnOption = None,
    samples_per_epoch: SamplesPerEpochOption = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    resume: ResumeOption = False,
    json_out: JsonOption = False,
) -> None:
    """Train a student from a frozen teacher: sync (MTD and the MTDVocaLiST paper's baselines) or emotion (the
    video-only MulT student with the seed paper's methods)."""
    from avkd.tasks import RunOptions, get_task

    chosen = get_task(task)
    flags = {
        "method": method,
        "weighting": weighting,
        "layers": layers,
        "config_id": config_id,
        "student": student,
        "width": width,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "device": device,
        "seed": seed,
        "deterministic": deterministic,
        "sync_bn": sync_bn,
        "samples_per_epoch": samples_per_epoch,
    }
    cfg = chosen.config("distill", config, set_ or (), flags)
    art = chosen.distill(cfg, teacher, data, out, RunOptions(overwrite=overwrite, resume=resume))
    emit_artifact(art, json_out, chosen.describe_model(art))
