"""What every command shares: config resolution, ``--json`` output, option types."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from avkd.core import config as cfg

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
TaskOption = Annotated[
    str,
    typer.Option(
        "--task",
        help="sync (LRS2, VocaLiST, 31-candidate retrieval) or emotion (CMU-MOSEI, MulT; alias mosei).",
    ),
]


def resolve(cls: type[C], config_file: Path | None, sets: list[str] | None, **flags: Any) -> C:
    """Defaults, then --config, then --set, then explicit flags (the most specific wins); None flags are unset."""
    return cfg.resolve_config(cls, config_file, sets or (), flags)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def emit_artifact(art: Any, json_out: bool, line: str, **extra: Any) -> None:
    """A stage's result: one JSON object on stdout with ``--json`` (path, id, metrics, ``extra``), else ``line``
    on stderr."""
    if json_out:
        emit_json({"path": str(art.path), "id": art.id, "metrics": art.metrics, **extra})
    else:
        print(line, file=sys.stderr, flush=True)
