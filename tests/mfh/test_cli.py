"""``avkd mfh simulate`` on the command line (avkd.cli.mfh): it writes the artifact and prints the interface's
JSON; a bad option is one line and exit 2; its help does not import torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avkd.cli.main import main
from avkd.core.artifacts import MFH_SIMULATION, load_artifact
from tests.cli.test_startup import probe

SMALL = ["--runs", "2", "--epochs", "20", "--permutations", "2"]
SETS = ["--set", "n_train=30", "--set", "n_test=80", "--set", "joint_epochs=20", "--set", "cs=[5]"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_simulate_writes_the_artifact_and_prints_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "mfh"
    code, stdout, err = run(capsys, "mfh", "simulate", "--out", str(out), *SMALL, *SETS, "--json")
    assert code == 0, err
    result = json.loads(stdout)
    art = load_artifact(out, kind=MFH_SIMULATION)
    assert result["path"] == str(out) and result["id"] == art.id and result["metrics"]["runs"] == 2
    assert art.manifest["command"][:3] == ["avkd", "mfh", "simulate"]
    # The interface of issue 16: exp1 / exp2 / table2 rows with their means and _std.
    exp1, exp2, table2 = result["exp1"], result["exp2"], result["table2"]
    assert [round(r["gamma"], 2) for r in exp1] == [0.0, 0.11, 0.25, 0.43, 0.67, 1.0]
    assert [r["alpha"] for r in exp2] == pytest.approx([0.0, 0.5, 2 / 3, 0.75, 0.8])
    for row in exp1 + exp2:
        for key in ("teacher", "no_kd", "kd", "delta"):
            assert isinstance(row[key], float) and isinstance(row[f"{key}_std"], float)
    assert len(table2) == 1 and table2[0]["gamma"] == pytest.approx(1 / 3)
    assert {"random", "gt", "alg1", "alg1_recovery"} <= set(table2[0])
    assert set(result["files"]) >= {"simulation.json", "report.md", "fig2_gamma.png", "fig3_alpha.png"}
    assert "mfh exp1: 6 settings × 2 runs" in err  # progress on stderr, stdout stays one JSON object

    # Without --json: the tables on stdout; a second run into the same folder is refused in one line.
    code, stdout, err = run(capsys, "mfh", "simulate", "--out", str(out), "--experiments", "exp1", *SMALL)
    assert (
        code == 1
        and err.strip() == f"error: {out}: a complete artifact already exists; pass --overwrite to replace it"
    )
    code, stdout, err = run(
        capsys, "mfh", "simulate", "--out", str(out), "--experiments", "exp1", *SMALL, "--overwrite"
    )
    assert code == 0 and stdout.startswith("# MFH synthetic study") and "## Experiment 2" not in stdout
    assert f"{out}: exp1, 2 runs in" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runs", "0"], "error: --runs: 0 must be at least 1"),
        (["--kl-reduction", "sum"], "error: --kl-reduction: 'sum' is not one of 'batchmean', 'mean'"),
        (["--experiments", "exp1,exp9"], "error: --experiments: 'exp9' is not one of exp1, exp2, table2"),
        (["--threads", "0"], "error: --threads: must be at least 1, got 0"),
        (
            ["--set", "overlaps=[0,20]"],
            "error: config key 'overlaps': [0, 20] has 20, outside [0, 10]",
        ),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    code, stdout, err = run(capsys, "mfh", "simulate", "--out", str(tmp_path / "x"), *args)
    assert code == 2 and stdout == ""
    assert err.strip() == message
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_help_does_not_import_torch() -> None:
    records, stdout, _ = probe(["mfh", "--help"], ["mfh", "simulate", "--help"])
    assert all(r["code"] == 0 and not r["torch"] for r in records), records
    assert "--kl-reduction" in stdout and "simulate" in stdout
