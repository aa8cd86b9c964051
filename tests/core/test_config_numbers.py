"""Numbers in every form YAML and JSON write are numbers (issue: ``lr: 5e-05`` was "expected a number")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from avkd.core import config as cfg
from avkd.core.errors import ConfigError


@dataclass
class Loop:
    lr: float = 1.0
    name: str = "x"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5e-5", 5e-5),
        ("5e-05", 5e-5),
        ("1E-4", 1e-4),
        ("-2e-3", -2e-3),
        ("1e3", 1000.0),
        ("5.0e-5", 5e-5),
        (".5", 0.5),
    ],
)
def test_set_reads_exponent_forms_as_numbers(text: str, value: float) -> None:
    assert cfg.resolve_config(Loop, None, [f"lr={text}"]).lr == pytest.approx(value)


def test_yaml_and_json_files_written_by_tools(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("lr: 5e-05\n")
    (tmp_path / "b.json").write_text(json.dumps({"lr": 5e-05}))  # json.dumps writes 5e-05
    assert cfg.resolve_config(Loop, tmp_path / "a.yaml").lr == pytest.approx(5e-5)
    assert cfg.resolve_config(Loop, tmp_path / "b.json").lr == pytest.approx(5e-5)


def test_text_that_is_not_a_number_is_still_refused() -> None:
    with pytest.raises(ConfigError, match="expected a number"):
        cfg.resolve_config(Loop, None, ["lr=e5"])
    assert cfg.resolve_config(Loop, None, ["name=abc"]).name == "abc"
