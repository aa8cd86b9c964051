"""``avkd pretrain``: the command writes a model artifact, reruns with --resume to the same one, and refuses bad
input with one line and a non-zero exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avkd.cli.main import main
from avkd.core.jsonl import read_jsonl
from avkd.models.io import load_model
from tests.tasks.avsiam.corpus import pretrain_features


@pytest.fixture(scope="module")
def feats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pretrain_features(tmp_path_factory)


def _args(feats: Path, out: Path, *extra: str) -> list[str]:
    return ["pretrain", "--method", "avsiam", "--data", str(feats), "--out", str(out), "--size", "toy",
            "--epochs", "1", "--batch-size", "4", "--lr", "1e-3", "--seed", "2", "--device", "cpu", *extra]  # fmt: skip


def test_pretrain_command(feats: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m"
    assert main(_args(feats, out, "--json")) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["metrics"]["epochs"] == 1 and first["metrics"]["steps"] == 2
    assert 0.0 <= first["metrics"]["best_match_acc"] <= 1.0 and first["metrics"]["best_contrastive"] > 0
    row = read_jsonl(out / "metrics.jsonl")[0]
    assert {"contrastive", "rec_audio", "rec_video", "match_acc", "val_match_acc"} <= set(row)
    assert load_model(out).spec.name == "avsiam"
    # Rerunning the same command with --resume finds the complete artifact; without it, it is refused.
    assert main(_args(feats, out, "--json", "--resume")) == 0
    assert json.loads(capsys.readouterr().out)["id"] == first["id"]
    assert main(_args(feats, out)) != 0
    capsys.readouterr()
    # A flag sets the config: the learning rate and seed are recorded.
    manifest = json.loads((out / "avkd.json").read_text())
    assert manifest["config"]["loop"]["lr"] == 1e-3 and manifest["config"]["loop"]["seed"] == 2


@pytest.mark.parametrize(
    ("extra", "needle", "code"),
    [
        (["--method", "mae"], "unknown pre-training method 'mae'", 2),
        (["--combine", "mean"], "--combine", 2),  # released and sum are the choices
        (["--size", "b"], "do not fit the 'b' AVSiam", 2),
        (["--data", "/nonexistent/feats"], "/nonexistent/feats: no such artifact", 1),  # an artifact error
    ],
)
def test_bad_input_is_one_line(feats: Path, tmp_path: Path, capsys, extra, needle, code) -> None:
    assert main(_args(feats, tmp_path / "m", *extra)) == code
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "m").exists()
