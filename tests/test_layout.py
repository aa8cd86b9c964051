"""The repository holds only what the project keeps: a stray file (an editor's or shell's leftover) fails CI."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Every tracked file lives in one of these folders or is one of these top-level files.
FOLDERS = {"avkd", "tests", "benchmarks", "data_manifests", "docs", "examples", ".ci"}
FILES = {".gitignore", "README.md", "CHANGELOG.md", "pyproject.toml", "noxfile.py", "LICENSE"}
#: Names a person would type; "ith ArtifactWriter(,+30p" (an editor command's output) is not one.
SANE = re.compile(r"^[A-Za-z0-9._/+-]+$")


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name]


def stray(names: list[str]) -> list[str]:
    """The names that are neither under a known folder nor a known top-level file, or are oddly named."""
    return [
        name
        for name in names
        if not SANE.match(name) or ("/" in name and name.split("/", 1)[0] not in FOLDERS)
        or ("/" not in name and name not in FILES)
    ]  # fmt: skip


def test_every_tracked_file_has_a_known_place() -> None:
    names = tracked_files()
    assert "pyproject.toml" in names and "avkd/__init__.py" in names
    assert stray(names) == []


def test_the_rule_catches_strays() -> None:
    assert stray(["ith ArtifactWriter(,+30p", "notes.txt", "scratch/x.py", "avkd/a b.py"]) == [
        "ith ArtifactWriter(,+30p",
        "notes.txt",
        "scratch/x.py",
        "avkd/a b.py",
    ]
    assert stray(["avkd/cli/main.py", "README.md", ".ci/run", "docs/protocols.md"]) == []
