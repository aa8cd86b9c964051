"""``avkd demo``: a task's pipeline end to end on a synthetic corpus, on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import (
    ConfigOption,
    DeterministicOption,
    JsonOption,
    SetOption,
    emit_json,
)


def demo(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for the corpus and every artifact.",
            show_default="avkd-demo, avkd-demo-emotion, avkd-demo-avsiam",
        ),
    ] = None,
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help="sync (LRS2, VocaLiST, 31-candidate retrieval), emotion (CMU-MOSEI, MulT; alias mosei) or avsiam "
            "(VGGSound-layout clips, AVSiam; alias clips).",
        ),
    ] = "sync",
    utterances: Annotated[int | None, typer.Option(help="sync: synthetic clips.", show_default="80")] = None,
    workers: Annotated[int | None, typer.Option(help="sync: worker processes.", show_default="2")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed of the corpus.", show_default="0")] = None,
    seeds: Annotated[
        int | None,
        typer.Option(
            help="Train every model with seeds 0..N-1; the report shows mean ± sd over them.",
            show_default="1",
        ),
    ] = None,
    deterministic: DeterministicOption = None,
    fresh: Annotated[
        bool, typer.Option(help="Start over instead of reusing finished stages in --out.")
    ] = False,
    config: ConfigOption = None,
    set_: SetOption = None,
    json_out: JsonOption = False,
) -> None:
    """Synthesize a corpus, preprocess it, train a small teacher, distil students and evaluate them all.

    --task sync (default): LRS2-style mp4 clips, a VocaLiST teacher, MTD and BCE students, 31-candidate sync
    retrieval at 5..15 frames. --task emotion: CMU-MOSEI-style .csd files, a MulT teacher, video-only students
    without KD and with EDAM-S, 7-class emotion accuracy. --task avsiam: labelled VGGSound-layout mp4 clips,
    AVSiam pre-training, fine-tuning with mixed modalities and audio-visual only, retrieval R@1/5/10 and accuracy
    under audio-visual, audio-only and video-only inputs. A few CPU minutes each; a second run reuses every
    finished stage. Deterministic by default: the same command on the same machine gives the same table.
    """
    from avkd.tasks import get_task

    chosen = get_task(task)
    flags = {
        "utterances": utterances,
        "workers": workers,
        "seed": seed,
        "seeds": seeds,
        "deterministic": deterministic,
    }
    cfg = chosen.config("demo", config, set_ or (), flags)
    summary = chosen.demo(out or Path(chosen.demo_folder), cfg, fresh=fresh, show_progress=True)
    if json_out:
        emit_json(summary)
