"""``avkd export MODEL --format onnx --out DIR``: a model artifact as ONNX graphs, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import JsonOption, OverwriteOption, emit_artifact


def export(
    model: Annotated[Path, typer.Argument(help="Model artifact (sync VocaLiST / SyncNet, MulT, AVSiam).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output export artifact.")],
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="onnx | exported-program (torch.export programs saved as <graph>.pt2, checked by "
            "torch.export.load; avkd evaluate, sync and bench run ONNX exports only).",
        ),
    ] = "onnx",
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
    quantize: Annotated[
        str,
        typer.Option(
            help="none | dynamic: also write int8 graphs (ONNX Runtime dynamic quantisation of the Linear "
            "layers, QInt8 weights), which avkd evaluate and avkd sync then run by default.",
        ),
    ] = "none",
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """Export to ONNX (sync: video encoder, audio encoder and fusion head; MulT: one graph; AVSiam: one per mode)
    or torch.export programs, dynamic batch axis, checked in ONNX Runtime (or torch.export.load) against PyTorch;
    fails above --atol."""
    from avkd.models.export import ExportConfig, export_model

    config = ExportConfig(
        format=format_,
        atol=atol,
        split=split,
        seed=seed,
        exporter=exporter,
        attention=attention,
        quantize=quantize,
    )
    art = export_model(model, out, config, data=data, overwrite=overwrite)
    graphs = art.manifest["graphs"]
    summary = ", ".join(
        f"{name} ({g['exporter']}/{g['attention']}, {g['bytes'] / 1e6:.2f} MB, |diff| {g['max_abs_diff']:.1e})"
        for name, g in graphs.items()
    )
    if "quantized" in art.manifest:
        worst = max(q["max_abs_diff"] for q in art.manifest["quantized"].values())
        summary += f"; int8 graphs ({art.metrics['int8_bytes'] / 1e6:.2f} MB, |diff| vs fp32 {worst:.1e}, the default)"
    emit_artifact(
        art, json_out, f"{art.path}: id {art.id}; {summary}; checked on {art.metrics['inputs']} inputs"
    )
