"""``avkd export MODEL --format onnx --out DIR``: a model artifact as ONNX graphs, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import JsonOption, OverwriteOption, emit_artifact


def export(
    model: Annotated[Path, typer.Argument(help="Model artifact (sync VocaLiST or emotion MulT).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output export artifact.")],
    format_: Annotated[str, typer.Option("--format", "-f", help="onnx.")] = "onnx",
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "-d",
            help="Features artifact of the model's task: the check runs on its real inputs (default: seeded "
            "random inputs).",
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="Split of --data the check's inputs come from.")] = "test",
    atol: Annotated[float, typer.Option(help="Max |ONNX Runtime - PyTorch| on logits.")] = 1e-4,
    exporter: Annotated[
        str, typer.Option(help="auto (dynamo, then TorchScript) | dynamo | torchscript.")
    ] = "auto",
    attention: Annotated[str, typer.Option(help="auto (SDPA, then the math path) | sdpa | math.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the drawn (or random) check inputs.")] = 0,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """Export to ONNX (sync: video encoder, audio encoder and fusion head; MulT: one graph), dynamic batch axis,
    checked with onnx.checker and ONNX Runtime against PyTorch; fails above --atol."""
    from avkd.models.export import ExportConfig, export_model

    config = ExportConfig(
        format=format_, atol=atol, split=split, seed=seed, exporter=exporter, attention=attention
    )
    art = export_model(model, out, config, data=data, overwrite=overwrite)
    graphs = art.manifest["graphs"]
    summary = ", ".join(
        f"{name} ({g['exporter']}/{g['attention']}, {g['bytes'] / 1e6:.2f} MB, |diff| {g['max_abs_diff']:.1e})"
        for name, g in graphs.items()
    )
    emit_artifact(
        art, json_out, f"{art.path}: id {art.id}; {summary}; checked on {art.metrics['inputs']} inputs"
    )
