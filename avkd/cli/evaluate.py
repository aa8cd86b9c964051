"""``avkd evaluate``: a model on a features split, by the task's evaluator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import (
    ConfigOption,
    JsonOption,
    OverwriteOption,
    SetOption,
    emit_artifact,
)
from avkd.cli.options import parse_frames


def evaluate(
    model: Annotated[
        Path,
        typer.Option("--model", "-m", help="Model artifact, or an export artifact (run in ONNX Runtime)."),
    ],
    data: Annotated[Path, typer.Option("--data", "-d", help="The task's features artifact.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output evaluation artifact.")],
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="sync, emotion (alias mosei) or avsiam (alias clips); by default the task whose features "
            "--data is (lrs2-features: sync, mosei-features: emotion, clips-features: avsiam).",
            show_default="from --data",
        ),
    ] = None,
    split: Annotated[str | None, typer.Option(help="Split to evaluate.", show_default="test")] = None,
    frames: Annotated[
        str | None,
        typer.Option(
            help="sync: context lengths: 5..15, 5,9,15 or 7 (odd, >= 5).",
            metavar="K|A..B[:S]|A,B",
            show_default="5..15",
        ),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="avkd or reference (to compare with published numbers). sync: avkd counts all N-4 windows, "
            "out-of-range candidates excluded; reference is the official script's counting. emotion: avkd "
            "weights the binary F1 by the true classes; reference is MulT's eval_mosei_senti, which weights "
            "it by the predicted ones.",
            show_default="avkd",
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="auto | cpu | cuda | cuda:N.", show_default="cpu")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="sync: only the first N clips.")] = None,
    save_scores: Annotated[
        bool, typer.Option(help="sync: store every clip's score matrix (windows x 31).")
    ] = False,
    label: Annotated[
        str | None, typer.Option(help="Row label in tables (default: the model folder name).")
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="Of an export: fp32 or int8 graphs (default: the export's, int8 when made with --quantize dynamic).",
            show_default=False,
        ),
    ] = None,
    per_class: Annotated[
        int | None,
        typer.Option(help="avsiam: only K clips of each class (seeded), as the released retrieval sets."),
    ] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """Sync: accuracy of offset retrieval among 31 candidates (±15 frames), correct within ±1 frame, for each K.
    Emotion: 7-class accuracy, F1, binary accuracy/F1, MAE, correlation and the majority-class baseline.
    Avsiam (clips features): audio-to-video and video-to-audio retrieval (R@1/5/10, median rank) and accuracy
    under audio-visual, audio-only and video-only inputs, with the model's parameters and clips/s. The task is
    the one that owns the kind of the --data artifact."""
    from avkd.tasks import RunOptions, task_for_features

    # Parsed first: a bad --frames is refused before any file is read.
    parsed_frames = parse_frames(frames) if frames is not None else None
    chosen = task_for_features(data, task)
    flags = {
        "per_class": per_class,
        "split": split,
        "frames": parsed_frames,
        "protocol": protocol,
        "device": device,
        "limit": limit,
        "save_scores": save_scores or None,
    }
    cfg = chosen.config("evaluate", config, set_ or (), flags)
    art = chosen.evaluate(cfg, model, data, out, label, RunOptions(overwrite=overwrite, precision=precision))
    if not json_out:
        typer.echo(chosen.evaluation_text(art))
    emit_artifact(art, json_out, f"{art.path}: id {art.id}")
