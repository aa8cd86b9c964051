"""``avkd demo``: the pipeline end to end on a synthetic corpus, on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import ConfigOption, JsonOption, SetOption, emit_json, resolve


def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the corpus and every artifact.")
    ] = Path("avkd-demo"),
    utterances: Annotated[int | None, typer.Option(help="Synthetic clips.", show_default="80")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.", show_default="2")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed of the corpus.", show_default="0")] = None,
    fresh: Annotated[
        bool, typer.Option(help="Start over instead of reusing finished stages in --out.")
    ] = False,
    config: ConfigOption = None,
    set_: SetOption = None,
    json_out: JsonOption = False,
) -> None:
    """Synthesize an LRS2-style corpus, preprocess it, train a small teacher, evaluate it at 5..15 frames."""
    from avkd.demo import DemoConfig, run_demo

    cfg = resolve(DemoConfig, config, set_, utterances=utterances, workers=workers, seed=seed)
    summary = run_demo(out, cfg, fresh=fresh)
    if json_out:
        emit_json(summary)
