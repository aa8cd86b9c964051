"""``avkd demo``: the pipeline end to end on a synthetic corpus, on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import ConfigOption, JsonOption, SetOption, emit_json, resolve
from avkd.errors import UsageError


def demo(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for the corpus and every artifact.",
            show_default="avkd-demo, avkd-demo-mosei",
        ),
    ] = None,
    task: Annotated[
        str, typer.Option(help="sync (LRS2-style, VocaLiST, MTD) or mosei (CMU-MOSEI-style, MulT, EDAM-S).")
    ] = "sync",
    utterances: Annotated[int | None, typer.Option(help="sync: synthetic clips.", show_default="80")] = None,
    workers: Annotated[int | None, typer.Option(help="sync: worker processes.", show_default="2")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed of the corpus.", show_default="0")] = None,
    fresh: Annotated[
        bool, typer.Option(help="Start over instead of reusing finished stages in --out.")
    ] = False,
    config: ConfigOption = None,
    set_: SetOption = None,
    json_out: JsonOption = False,
) -> None:
    """Synthesize a corpus, preprocess it, train a small teacher, distil students and evaluate them all.

    --task sync (default): LRS2-style mp4 clips, a VocaLiST teacher, MTD and BCE students, 31-candidate sync
    retrieval at 5..15 frames. --task mosei: CMU-MOSEI-style .csd files, a MulT teacher, video-only students
    without KD and with EDAM-S, 7-class emotion accuracy. A few CPU minutes each; a second run reuses every
    finished stage.
    """
    if task == "mosei":
        from avkd.demo_emotion import EmotionDemoConfig, run_emotion_demo

        if utterances is not None or workers is not None:
            raise UsageError("--utterances and --workers are sync options; use --set corpus.train_videos=...")
        cfg = resolve(EmotionDemoConfig, config, set_, **{"corpus.seed": seed})
        summary = run_emotion_demo(out or Path("avkd-demo-mosei"), cfg, fresh=fresh)
    elif task == "sync":
        from avkd.demo import DemoConfig, run_demo

        cfg = resolve(DemoConfig, config, set_, utterances=utterances, workers=workers, seed=seed)
        summary = run_demo(out or Path("avkd-demo"), cfg, fresh=fresh)
    else:
        raise UsageError(f"--task {task!r}: choose sync or mosei")
    if json_out:
        emit_json(summary)
