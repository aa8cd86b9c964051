"""``avkd pretrain``: self-supervised pre-training of a model on a features artifact (AVSiam on clips)."""

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
    SeedOption,
    SetOption,
    emit_artifact,
    loop_flags,
    resolve,
)


def pretrain(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            "-d",
            help="A features artifact: clips-features, mosei-features (COVAREP/FACET maps) or lrs2-features "
            "(VocaLiST's windows).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output model artifact.")],
    method: Annotated[str, typer.Option(help="Pre-training method: avsiam.")] = "avsiam",
    size: Annotated[
        str | None,
        typer.Option(help="avsiam size: toy | s | b | l | h (must fit the features).", show_default="toy"),
    ] = None,
    combine: Annotated[
        str | None,
        typer.Option(
            help="How the objectives make a step: released (a contrastive step, then a reconstruction step, "
            "each with its own Adam, schedule and grad scaler, as the official code) | sum (one step on "
            "L = L_rec + L_c).",
            show_default="released",
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
    """Pre-train AVSiam (contrastive with multi-ratio masking + masked reconstruction, the released optimiser and
    schedule) into a model artifact.

    SIGTERM or SIGUSR1 saves the full training state and exits with code 75; rerun with --resume.
    """
    from avkd.tasks.avsiam.config import AVSiamPretrainConfig
    from avkd.tasks.avsiam.pretrain import pretrain as run_pretrain

    flags = {
        "size": size,
        "combine": combine,
        **loop_flags(epochs, batch_size, lr, device, seed, deterministic, workers),
    }
    cfg = resolve(AVSiamPretrainConfig, config, set_, LOOP_FLAG_NAMES, **flags)
    art = run_pretrain(method, cfg, data, out, overwrite=overwrite, resume=resume)
    m = art.metrics
    emit_artifact(
        art,
        json_out,
        f"{art.path}: avsiam {cfg.size}, {m['parameters']:,} parameters, {m['epochs']} epochs, contrastive "
        f"{m['best_contrastive']:.4f}, matching accuracy {m['best_match_acc']:.3f}; id {art.id}",
    )
