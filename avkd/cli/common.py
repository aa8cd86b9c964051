"""What every command shares: config resolution, ``--json`` output, option types."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from avkd import config as cfg

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


def resolve(cls: type[C], config_file: Path | None, sets: list[str] | None, **flags: Any) -> C:
    """Defaults, then --config, then --set, then explicit flags (the most specific wins); None flags are unset."""
    overrides = list(sets or [])
    for key, value in flags.items():
        if value is not None:
            overrides.append(f"{key}={json.dumps(value)}")
    return cfg.resolve_config(cls, config_file, overrides)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def split_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]
