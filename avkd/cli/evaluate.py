"""``avkd evaluate``: the 31-candidate sync retrieval protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import ConfigOption, JsonOption, OverwriteOption, SetOption, emit_json, resolve
from avkd.errors import UsageError
from avkd.progress import log


def evaluate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model artifact.")],
    data: Annotated[
        Path, typer.Option("--data", "-d", help="lrs2-features (sync) or mosei-features artifact.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output evaluation artifact.")],
    task: Annotated[
        str, typer.Option(help="sync (31-candidate retrieval) or mosei (7-class emotion).")
    ] = "sync",
    split: Annotated[str | None, typer.Option(help="Split to evaluate.", show_default="test")] = None,
    frames: Annotated[
        str | None,
        typer.Option(
            help="Context lengths: 5..15, 5,9,15 or 7 (odd, >= 5).",
            metavar="K|A..B[:S]|A,B",
            show_default="5..15",
        ),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="sync: avkd (all N-4 windows, out-of-range candidates excluded) or reference (the official "
            "script's counting, to compare with published numbers).",
            show_default="avkd",
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda | cuda:N.", show_default="cpu")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N clips.")] = None,
    save_scores: Annotated[
        bool, typer.Option(help="Store every clip's score matrix (windows x 31).")
    ] = False,
    label: Annotated[
        str | None, typer.Option(help="Row label in tables (default: the model folder name).")
    ] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """Sync: accuracy of offset retrieval among 31 candidates (±15 frames), correct within ±1 frame, for each K.
    Mosei: 7-class accuracy, F1, binary accuracy/F1, MAE, correlation and the majority-class baseline."""
    if task == "mosei":
        from avkd.evaluate.stage import EmotionEvalConfig, evaluate_emotion_artifact

        if frames is not None or save_scores or limit is not None or protocol is not None:
            raise UsageError("--frames, --limit, --save-scores and --protocol are sync options")
        cfg = resolve(EmotionEvalConfig, config, set_, split=split, device=device)
        art = evaluate_emotion_artifact(cfg, model, data, out, label=label, overwrite=overwrite)
        if json_out:
            emit_json({"path": str(art.path), "id": art.id, "metrics": art.metrics})
        else:
            typer.echo((art.path / "metrics.md").read_text().rstrip())
            log(f"{art.path}: id {art.id}")
        return
    if task != "sync":
        raise UsageError(f"--task {task!r}: choose sync or mosei")
    from avkd.evaluate.stage import SyncEvalConfig, evaluate_sync_artifact
    from avkd.evaluate.sync import parse_frames

    cfg = resolve(
        SyncEvalConfig,
        config,
        set_,
        split=split,
        frames=parse_frames(frames) if frames is not None else None,
        device=device,
        limit=limit,
        save_scores=save_scores or None,
        protocol=protocol,
    )
    art = evaluate_sync_artifact(cfg, model, data, out, label=label, overwrite=overwrite)
    if json_out:
        emit_json({"path": str(art.path), "id": art.id, "metrics": art.metrics})
    else:
        typer.echo((art.path / "accuracy.md").read_text().rstrip())
        log(f"{art.path}: {art.metrics['clips']} clips; id {art.id}")
