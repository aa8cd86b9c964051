"""``avkd bench MODEL_OR_EXPORT...``: latency and throughput, PyTorch against ONNX Runtime, fp32 against int8."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import JsonOption, OverwriteOption, emit_artifact


def _threads(text: str) -> list[int]:
    try:
        return [0 if part.strip() == "all" else int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: thread counts separated by commas (all = every CPU thread)"
        ) from None


def bench(
    models: Annotated[
        list[str],
        typer.Argument(
            help="Model artifacts, export artifacts or registered model names (random weights), benched in one run.",
            metavar="MODEL_OR_EXPORT",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output bench artifact.")],
    threads: Annotated[str, typer.Option(help="CPU thread counts, e.g. 1,2 or 1,all.")] = "1,all",
    warmup: Annotated[int, typer.Option(help="Untimed calls before timing.")] = 3,
    repeats: Annotated[int, typer.Option(help="Timed calls per row.")] = 20,
    device: Annotated[str, typer.Option(help="cpu, or cuda (adds CUDA rows).")] = "cpu",
    label: Annotated[
        list[str] | None,
        typer.Option(help="Row label of each model, in order (default: its folder or name)."),
    ] = None,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """p50/p90 latency and throughput at batch 1 and for one window's 31 candidates (emotion: 31 segments), at
    each thread count: PyTorch eager fp32 and dynamic int8, ONNX Runtime fp32 and int8 (CUDA where present); with
    parameters, file sizes and GMACs. Writes bench.json and bench.md."""
    from avkd.models.bench import BenchConfig, bench_models

    config = BenchConfig(threads=_threads(threads), warmup=warmup, repeats=repeats, device=device)
    art = bench_models(models, out, config, labels=label, overwrite=overwrite)
    if not json_out:
        typer.echo((art.path / "bench.md").read_text().rstrip())
    emit_artifact(art, json_out, f"{art.path}: {art.metrics['rows']} rows; id {art.id}")
