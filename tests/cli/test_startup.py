"""Commands that need no model start without importing torch (seconds saved on every ``--help``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from avkd.core.artifacts import ArtifactWriter, register_kind

#: Run CLI commands in turn in one fresh interpreter, recording after each its exit code and whether torch has
#: been imported by then. Torch, once imported, stays: the first command that needs it is the first "torch".
PROBE = """
import json, sys
from avkd.cli.main import main
for argv in json.loads(sys.argv[1]):
    code = main(argv)
    print(json.dumps({"argv": argv, "code": code, "torch": "torch" in sys.modules}))
"""


def probe(*commands: list[str]) -> tuple[list[dict], str, str]:
    """(one record per command, stdout, stderr) of ``commands`` run by :data:`PROBE`."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(commands))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"argv"')]
    assert [r["argv"] for r in records] == list(commands)
    return records, result.stdout, result.stderr


def test_importing_the_cli_does_not_import_torch() -> None:
    code = "import sys, avkd.cli.main; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


HELP_COMMANDS = [
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
]


def test_help_does_not_import_torch() -> None:
    records, stdout, _ = probe(*HELP_COMMANDS)
    for record in records:
        assert record["code"] == 0 and not record["torch"], record
    assert stdout.count("Usage") == len(HELP_COMMANDS)


@pytest.mark.slow  # ~4 s: a fresh interpreter that imports torch
def test_the_probe_sees_torch_when_a_command_needs_it(features) -> None:
    # The probe itself can fail: a command that builds a model does import torch.
    path = str(features.path)
    (help_, evaluate), _, _ = probe(["--help"], ["evaluate", "--model", path, "--data", path, "--out", "x"])
    assert help_["code"] == 0 and not help_["torch"]
    assert evaluate["code"] != 0 and evaluate["torch"]


def test_data_check_and_artifacts_show_do_not_import_torch(synth_corpus: Path, tmp_path: Path) -> None:
    register_kind("startup-test", 1)
    with ArtifactWriter(tmp_path / "art", "startup-test", {"x": 1}) as writer:
        writer.path("payload.txt").write_text("hello\n")
        writer.commit(metrics={"n": 1})
    check = ["data", "check", "lrs2", str(synth_corpus), "--manifest", str(synth_corpus / "lrs2.yaml")]
    records, stdout, stderr = probe(check, ["artifacts", "show", str(tmp_path / "art")])
    for record in records:
        assert record["code"] == 0 and not record["torch"], record
    assert "corpus OK" in stderr
    assert "startup-test" in stdout
