"""The config layer (``avkd.core.config``): defaults, YAML, ``--set``, round trips, and errors that name the key."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from avkd.core import config as cfg
from avkd.core.errors import ConfigError


@dataclass
class Inner:
    name: Literal["fixed", "haar"] = "fixed"
    box: tuple[float, float, float, float] = (0.1, 0.2, 0.9, 0.8)
    path: str | None = None


@dataclass
class Outer:
    workers: int = 1
    rate: float = 0.5
    flag: bool = False
    splits: list[str] = field(default_factory=lambda: ["a", "b"])
    inner: Inner = field(default_factory=Inner)


def test_defaults_yaml_then_set(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("workers: 4\ninner:\n  name: haar\n")
    c = cfg.resolve_config(Outer, path, ["rate=2", "inner.box=[0, 0, 1, 1]", "workers=8"])
    assert c.workers == 8  # --set wins over the file
    assert c.rate == 2.0 and isinstance(c.rate, float)  # an int is a valid number
    assert c.inner.name == "haar"  # from the file
    assert c.inner.box == (0.0, 0.0, 1.0, 1.0)
    assert c.splits == ["a", "b"]  # untouched default


def test_to_dict_round_trip() -> None:
    c = cfg.resolve_config(Outer, None, ["inner.path=/x/y"])
    d = cfg.to_dict(c)
    assert d["inner"] == {"name": "fixed", "box": [0.1, 0.2, 0.9, 0.8], "path": "/x/y"}
    assert cfg.from_dict(Outer, d) == c


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("workerz=3", "config key 'workerz' is unknown"),
        ("inner.nme=haar", "config key 'inner.nme' is unknown"),
        ("workers=three", "config key 'workers': expected an integer, got 'three'"),
        ("workers=1.5", "config key 'workers': expected an integer"),
        ("flag=maybe", "config key 'flag': expected true or false"),
        ("inner.name=s3fd", "config key 'inner.name': 's3fd' is not one of 'fixed', 'haar'"),
        ("inner.box=[1, 2]", "config key 'inner.box': expected 4 items, got 2"),
        ("inner=3", "config key 'inner': expected a section"),
        ("workers.x=3", "config key 'workers': expected an integer"),
        ("noequals", "expected key=value"),
    ],
)
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        cfg.resolve_config(Outer, None, [override])
    assert message in str(info.value)


def test_bad_yaml_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("workers: [1,\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        cfg.resolve_config(Outer, bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        cfg.resolve_config(Outer, listing)
    with pytest.raises(ConfigError, match="cannot read"):
        cfg.resolve_config(Outer, tmp_path / "missing.yaml")


@dataclass
class Recipe:
    """A section whose defaults come from a factory, not from the section's class (like the tasks' loops)."""

    inner: Inner = field(default_factory=lambda: Inner(name="haar", path="/models"))
    workers: int = 1


def test_a_section_left_alone_keeps_its_default_factory() -> None:
    assert cfg.resolve_config(Recipe, None, ["workers=2"]).inner == Inner(name="haar", path="/models")


def test_a_partly_given_section_keeps_its_default_factory() -> None:
    c = cfg.resolve_config(Recipe, None, ["inner.box=[0, 0, 1, 1]"])
    assert c.inner == Inner(name="haar", box=(0.0, 0.0, 1.0, 1.0), path="/models")


def test_apply_overrides_copies() -> None:
    c = Outer()
    d = cfg.apply_overrides(c, ["inner.name=haar"])
    assert c.inner.name == "fixed" and d.inner.name == "haar"


# Numbers in every form YAML and JSON write are numbers (issue: ``lr: 5e-05`` was "expected a number").


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
