"""The emotion demo chain end to end at toy size: every stage runs, a second run reuses every artifact."""

from __future__ import annotations

from pathlib import Path

from avkd.core.artifacts import load_artifact
from avkd.data.mosei.synthetic import SynthMoseiConfig
from avkd.models.io import load_model
from avkd.tasks.emotion.demo import EmotionDemoConfig, run_emotion_demo
from avkd.train.loop import LoopConfig


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
    mirror, teacher = (load_model(tmp_path / "demo" / name).model for name in ("student-edam-s", "teacher"))
    assert (mirror.d, mirror.num_heads, mirror.layers) == (teacher.d, teacher.num_heads, teacher.layers)
    assert (teacher.d, teacher.layers) == (10, 1)  # the settings given above
    assert load_artifact(tmp_path / "demo" / "teacher").id in [i["id"] for i in student.manifest["inputs"]]
    report = (tmp_path / "demo" / "report" / "report.md").read_text()
    assert "| student without KD | none (config 5) |" in report
    capsys.readouterr()
    again = run_emotion_demo(tmp_path / "demo", tiny_emotion(), show_progress=False)
    assert again["acc7"] == summary["acc7"]
    assert capsys.readouterr().err.count("reusing") == 9  # the corpus and all eight artifacts


def test_emotion_demo_is_reproducible_and_averages_seeds(tmp_path: Path) -> None:
    """The same command into two folders gives the same ids and table; with two seeds each row is a mean."""
    first = run_emotion_demo(tmp_path / "a", tiny_emotion(), show_progress=False)
    second = run_emotion_demo(tmp_path / "b", tiny_emotion(), show_progress=False)
    assert first["artifacts"] == second["artifacts"]
    assert first["table"] == second["table"]
    config = tiny_emotion()
    config.seeds = 2
    both = run_emotion_demo(tmp_path / "a", config, show_progress=False)
    assert both["artifacts"]["teacher"] == first["artifacts"]["teacher"]  # seed 0 reused
    assert load_artifact(tmp_path / "a" / "seed-1" / "student-edam-s").config["loop"]["seed"] == 1
    for label in ("teacher", "student without KD", "edam-s student"):
        row = next(line for line in both["table"].splitlines() if line.startswith(f"| {label} |"))
        assert "(n=2)" in row
