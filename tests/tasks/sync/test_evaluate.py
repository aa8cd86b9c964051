"""The sync evaluation stage (``avkd.tasks.sync.evaluate``): the artifact, its recomputable scores, the protocols."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avkd.cli.main import main
from avkd.core.jsonl import read_jsonl
from avkd.evaluate.sync import clip_accuracy
from avkd.tasks.sync.config import SyncEvalConfig
from avkd.tasks.sync.evaluate import evaluate_sync_artifact
from tests.oracle import oracle_model


def test_evaluation_artifact_can_be_recomputed(features, tmp_path: Path) -> None:
    model = oracle_model(tmp_path / "oracle.pt")
    config = SyncEvalConfig(split="pretrain", frames=[5, 9, 15], save_scores=True)
    art = evaluate_sync_artifact(
        config, model, features.path, tmp_path / "eval", label="oracle", show_progress=False
    )
    assert art.kind == "evaluation" and set(art.metrics["accuracy"]) == {"5", "9", "15"}
    summary = json.loads((art.path / "accuracy.json").read_text())
    clips = read_jsonl(art.path / "clips.jsonl")
    scores = np.load(art.path / "scores.npz")
    assert len(clips) == summary["clips_evaluated"] == len(scores.files)
    for clip in clips:
        matrix = scores[clip["key"]]
        assert matrix.shape == (clip["windows"], 31)
        for k in (5, 9, 15):
            assert clip_accuracy(matrix, k) == pytest.approx(clip["accuracy"][str(k)])
    for k in ("5", "9", "15"):
        assert summary["accuracy"][k] == pytest.approx(np.mean([c["accuracy"][k] for c in clips]))
    # the oracle finds the offset of a synthetic clip far better than chance, and more context helps
    assert summary["accuracy"]["15"] > 0.25 and summary["accuracy"]["15"] >= summary["accuracy"]["5"]
    assert "| oracle |" in (art.path / "accuracy.md").read_text()


def test_reference_protocol_through_the_cli_and_report(features, tmp_path: Path, capsys) -> None:
    """`--protocol reference` is recorded in the artifact, its saved matrices recompute its numbers, and a report
    that mixes protocols says they are not comparable."""
    from avkd.evaluate.reference_protocol import reference_clip_accuracy
    from avkd.report.sync import build_sync_report

    model = oracle_model(tmp_path / "oracle.pt")
    common = ["evaluate", "--model", str(model), "--data", str(features.path), "--split", "pretrain"]
    common += ["--frames", "5,9", "--save-scores"]
    assert main([*common, "--out", str(tmp_path / "ref"), "--protocol", "reference", "--label", "ref"]) == 0
    assert main([*common, "--out", str(tmp_path / "ours"), "--label", "ours"]) == 0
    summary = json.loads((tmp_path / "ref" / "accuracy.json").read_text())
    assert summary["protocol"]["name"] == "reference"
    scores = np.load(tmp_path / "ref" / "scores.npz")
    ours = read_jsonl(tmp_path / "ours" / "clips.jsonl")
    for clip, mine in zip(read_jsonl(tmp_path / "ref" / "clips.jsonl"), ours, strict=True):
        assert clip["windows"] == mine["windows"] - 1  # N − 5 against N − 4
        assert reference_clip_accuracy(scores[clip["key"]], 9) == pytest.approx(clip["accuracy"]["9"])
    report = build_sync_report([tmp_path / "ref", tmp_path / "ours"], tmp_path / "report")
    assert "ref: reference, ours: avkd" in (report.path / "report.md").read_text()
    assert main([*common, "--out", str(tmp_path / "bad"), "--protocol", "official"]) == 2
    assert "--protocol 'official': choose avkd or reference" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.partial").exists()
