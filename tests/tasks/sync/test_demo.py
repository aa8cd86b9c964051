"""The sync demo chain end to end at toy size: every stage runs, a second run reuses every artifact."""

from __future__ import annotations

from pathlib import Path

import pytest

from avkd.core.artifacts import load_artifact
from avkd.tasks.sync.config import SyncModelConfig
from avkd.tasks.sync.demo import DemoConfig, run_demo
from avkd.train.loop import LoopConfig


def tiny() -> DemoConfig:
    config = DemoConfig(utterances=10, speakers=3, workers=1, frames=[5, 15])
    config.teacher.model = SyncModelConfig(name="vocalist_lite", width=16, channels=[4, 4, 8, 8, 16])
    config.teacher.loop = LoopConfig(epochs=1, batch_size=8, lr=1e-3, device="cpu")
    config.teacher.samples_per_epoch = 16
    config.teacher.val_samples = 8
    config.student.student = SyncModelConfig(name="vocalist_lite", width=8, channels=[4, 4, 8, 8, 8])
    config.student.loop = LoopConfig(epochs=1, batch_size=8, lr=1e-3, device="cpu")
    config.student.samples_per_epoch = 16
    config.student.val_samples = 8
    return config


@pytest.mark.slow  # ~8 s: a corpus, its features, a teacher, two students and three evaluations
def test_demo_chain_and_reuse(tmp_path: Path, capsys) -> None:
    summary = run_demo(tmp_path / "demo", tiny(), show_progress=False)
    names = {"features", "teacher", "eval-teacher", "student-mtd", "eval-mtd", "student-bce", "eval-bce"}
    assert names <= {p.name for p in (tmp_path / "demo").iterdir()}
    assert set(summary["accuracy"]) == {"teacher", "MTD student", "BCE student"}
    assert "| MTD student |" in summary["table"]
    # The evaluation of the MTD student traces back to the teacher through the student's inputs.
    student = load_artifact(tmp_path / "demo" / "student-mtd")
    assert load_artifact(tmp_path / "demo" / "teacher").id in [i["id"] for i in student.manifest["inputs"]]
    capsys.readouterr()
    again = run_demo(tmp_path / "demo", tiny(), show_progress=False)
    assert again["accuracy"] == summary["accuracy"]
    assert capsys.readouterr().err.count("reusing") == 9  # the corpus and all eight artifacts
