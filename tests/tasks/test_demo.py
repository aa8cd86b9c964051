"""The demo chain end to end at toy size: every stage runs, a second run reuses every artifact."""

from __future__ import annotations

from pathlib import Path

from avkd.core.artifacts import load_artifact
from avkd.data.mosei.synthetic import SynthMoseiConfig
from avkd.tasks.emotion.demo import EmotionDemoConfig, run_emotion_demo
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


def tiny_emotion() -> EmotionDemoConfig:
    config = EmotionDemoConfig(corpus=SynthMoseiConfig(seed=1, min_seconds=0.8, max_seconds=1.6))
    config.teacher.model.kwargs.update(d=10, layers=1)
    config.teacher.loop = LoopConfig(epochs=1, batch_size=8, device="cpu", select_metric="val_acc7")
    config.student_loop = LoopConfig(
        epochs=1, batch_size=8, device="cpu", select_metric="val_acc7", max_steps_per_epoch=2
    )
    return config


def test_emotion_demo_chain_and_reuse(tmp_path: Path, capsys) -> None:
    summary = run_emotion_demo(tmp_path / "demo", tiny_emotion(), show_progress=False)
    names = {"corpus", "features", "teacher", "eval-teacher", "student-none", "student-edam-s", "report"}
    assert names <= {p.name for p in (tmp_path / "demo").iterdir()}
    assert set(summary["acc7"]) == {"teacher", "student without KD", "edam-s student"}
    assert "| edam-s student | edam-s (config 5) |" in summary["table"]
    # The students mirror the teacher's width and depth, and trace back to it.
    student = load_artifact(tmp_path / "demo" / "student-edam-s")
    assert student.config["method"] == "edam-s"
    assert load_artifact(tmp_path / "demo" / "teacher").id in [i["id"] for i in student.manifest["inputs"]]
    report = (tmp_path / "demo" / "report" / "report.md").read_text()
    assert "| student without KD | none (config 5) |" in report
    capsys.readouterr()
    again = run_emotion_demo(tmp_path / "demo", tiny_emotion(), show_progress=False)
    assert again["acc7"] == summary["acc7"]
    assert capsys.readouterr().err.count("reusing") == 9  # the corpus and all eight artifacts
