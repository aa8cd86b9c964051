"""Commands that need no model start without importing torch (seconds saved on every ``--help``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from avkd.core.artifacts import ArtifactWriter, register_kind

#: Run the CLI in a fresh interpreter and report whether torch was imported by the time it finished.
PROBE = """
import sys
from avkd.cli.main import main
code = main(sys.argv[1:])
print("TORCH" if "torch" in sys.modules else "NO-TORCH")
sys.exit(code)
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_importing_the_cli_does_not_import_torch() -> None:
    code = "import sys, avkd.cli.main; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["data", "--help"],
        ["preprocess", "--help"],
        ["train", "teacher", "--help"],
        ["distill", "--help"],
        ["evaluate", "--help"],
        ["report", "--help"],
        ["import", "--help"],
        ["artifacts", "--help"],
        ["doctor", "--help"],
        ["demo", "--help"],
    ],
)
def test_help_does_not_import_torch(args: list[str]) -> None:
    result = _run(*args)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "NO-TORCH"


def test_the_probe_sees_torch_when_a_command_needs_it(features) -> None:
    # The probe itself can fail: a command that builds a model does import torch.
    result = _run("evaluate", "--model", str(features.path), "--data", str(features.path), "--out", "x")
    assert result.returncode != 0
    assert result.stdout.strip().splitlines()[-1] == "TORCH"


def test_data_check_and_artifacts_show_do_not_import_torch(synth_corpus: Path, tmp_path: Path) -> None:
    result = _run("data", "check", "lrs2", str(synth_corpus), "--manifest", str(synth_corpus / "lrs2.yaml"))
    assert result.returncode == 0, result.stderr
    assert "corpus OK" in result.stderr
    assert result.stdout.strip().splitlines()[-1] == "NO-TORCH"

    register_kind("startup-test", 1)
    with ArtifactWriter(tmp_path / "art", "startup-test", {"x": 1}) as writer:
        writer.path("payload.txt").write_text("hello\n")
        writer.commit(metrics={"n": 1})
    result = _run("artifacts", "show", str(tmp_path / "art"))
    assert result.returncode == 0, result.stderr
    assert "startup-test" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "NO-TORCH"
