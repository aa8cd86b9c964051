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
    TaskOption,
    emit_artifact,
    resolve,
)
from avkd.cli.options import parse_frames


def evaluate(
    model: Annotated[
        Path,
        typer.Option("--model", "-m", help="Model artifact, or an export artifact (run in ONNX Runtime)."),
    ],
    data: Annotated[Path, typer.Option("--data", "-d", help="The task's features artifact.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output evaluation artifact.")],
    task: TaskOption = "sync",
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
        typer.Option(help="clips: only K clips of each class (seeded), as the released retrieval sets."),
    ] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """Sync: accuracy of offset retrieval among 31 candidates (±15 frames), correct within ±1 frame, for each K.
    Emotion: 7-class accuracy, F1, binary accuracy/F1, MAE, correlation and the majority-class baseline.
    Clips features (an avsiam model): audio-to-video and video-to-audio retrieval (R@1/5/10, median rank) and
    accuracy under audio-visual, audio-only and video-only inputs."""
    from avkd.core.artifacts import CLIPS_FEATURES, read_manifest
    from avkd.core.errors import UsageError

    if data.is_dir() and read_manifest(data).get("kind") == CLIPS_FEATURES:
        # Clips features: an avsiam model's retrieval and missing-modality table, whatever --task says.
        given = {"--frames": frames, "--protocol": protocol, "--limit": limit, "--precision": precision}
        if save_scores or any(v is not None for v in given.values()):
            refused = [f for f, v in given.items() if v is not None] + (
                ["--save-scores"] if save_scores else []
            )
            raise UsageError(
                f"{', '.join(refused)}: not options of the evaluation of clips features ({data})"
            )
        from avkd.evaluate.avsiam import ClipsEvalConfig, evaluate_clips_artifact

        ccfg = resolve(ClipsEvalConfig, config, set_, split=split, device=device, per_class=per_class)
        art = evaluate_clips_artifact(ccfg, model, data, out, label, overwrite=overwrite)
        if not json_out:
            typer.echo((art.path / "metrics.md").read_text().rstrip())
        emit_artifact(art, json_out, f"{art.path}: id {art.id}")
        return
    from avkd.tasks import RunOptions, get_task

    chosen = get_task(task)
    flags = {
        "per_class": per_class,
        "split": split,
        "frames": parse_frames(frames) if frames is not None else None,
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
