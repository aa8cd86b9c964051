"""What every command shares: config resolution, ``--json`` output, option types."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from avkd.core import config as cfg
from avkd.core.progress import log

C = TypeVar("C")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML file with config values (before --set).", show_default=False),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override a config value: --set section.key=value (repeatable).",
        show_default=False,
    ),
]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace an existing artifact at --out.")]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from OUT.partial.")]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON result on stdout (logs go to stderr).")
]
# Options several commands share (their defaults are the task's and the stage's: see --config / --set).
EpochsOption = Annotated[int | None, typer.Option(help="Epochs.", show_default="the stage's")]
BatchSizeOption = Annotated[int | None, typer.Option(help="Batch size.", show_default="the stage's")]
LrOption = Annotated[float | None, typer.Option(help="Adam learning rate.", show_default="the stage's")]
DeviceOption = Annotated[str | None, typer.Option(help="auto | cpu | cuda | cuda:N.", show_default="auto")]
SeedOption = Annotated[int | None, typer.Option(help="Random seed.", show_default="0")]
DeterministicOption = Annotated[
    bool | None,
    typer.Option(
        "--deterministic/--no-deterministic",
        help="Deterministic kernels: the same command on the same machine gives the same weights and ids "
        "(slower; see the README).",
        show_default="off; on in avkd demo",
    ),
]
SyncBnOption = Annotated[
    bool | None,
    typer.Option(
        "--sync-bn/--no-sync-bn",
        help="Under torchrun or srun: BatchNorm statistics over the global batch (small per-GPU batches).",
        show_default="off",
    ),
]
SamplesPerEpochOption = Annotated[
    int | None, typer.Option(help="sync: training samples per epoch (default: one per clip).")
]
TaskOption = Annotated[
    str,
    typer.Option(
        "--task",
        help="sync (LRS2, VocaLiST, 31-candidate retrieval), emotion (CMU-MOSEI, MulT; alias mosei) or avsiam "
        "(labelled clips, AVSiam; alias clips).",
    ),
]


def resolve(
    cls: type[C],
    config_file: Path | None,
    sets: list[str] | None,
    names: dict[str, str] | None = None,
    **flags: Any,
) -> C:
    """Defaults, then --config, then --set, then explicit flags (keyed by config key; the most specific wins);
    None flags are unset. A bad value that came from a flag is reported under the flag (``names`` maps a config key
    to its flag where the flag is not the key's last part)."""
    return cfg.resolve_config(cls, config_file, sets or (), flags, names)


def loop_flags(
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    device: str | None,
    seed: int | None,
    deterministic: bool | None,
    workers: int | None,
) -> dict[str, Any]:
    """The training loop's flags under their config keys (``loop.epochs``, ...), for :func:`resolve` of a stage
    config with a ``loop``; ``--workers`` is ``loop.num_workers`` (pass :data:`LOOP_FLAG_NAMES` as ``names``)."""
    return {
        "loop.epochs": epochs,
        "loop.batch_size": batch_size,
        "loop.lr": lr,
        "loop.device": device,
        "loop.seed": seed,
        "loop.deterministic": deterministic,
        "loop.num_workers": workers,
    }


#: The loop flag whose name is not its config key's last part (for error messages).
LOOP_FLAG_NAMES = {"loop.num_workers": "workers"}


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def emit_artifact(art: Any, json_out: bool, line: str, **extra: Any) -> None:
    """A stage's result: one JSON object on stdout with ``--json`` (path, id, metrics, ``extra``), else ``line``
    on stderr."""
    if json_out:
        emit_json({"path": str(art.path), "id": art.id, "metrics": art.metrics, **extra})
    else:
        log(line)
