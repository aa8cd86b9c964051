"""The sync demo chain end to end at toy size: every stage runs, a second run reuses every artifact."""

from __future__ import annotations

import shutil
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


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One toy chain that the tests below share (each run costs a corpus, features, three trainings and three
    evaluations); a test that adds to it works on a copy."""
    out = tmp_path_factory.mktemp("sync-demo") / "demo"
    return out, run_demo(out, tiny(), show_progress=False)


@pytest.mark.slow  # the shared chain (~8 s), then a reuse
def test_demo_chain_and_reuse(first_run: tuple[Path, dict], capsys) -> None:
    out, summary = first_run
    names = {"features", "teacher", "eval-teacher", "student-mtd", "eval-mtd", "student-bce", "eval-bce"}
    assert names <= {p.name for p in out.iterdir()}
    assert set(summary["accuracy"]) == {"teacher", "MTD student", "BCE student"}
    assert "| MTD student |" in summary["table"]
    # The evaluation of the MTD student traces back to the teacher through the student's inputs.
    student = load_artifact(out / "student-mtd")
    assert load_artifact(out / "teacher").id in [i["id"] for i in student.manifest["inputs"]]
    capsys.readouterr()
    again = run_demo(out, tiny(), show_progress=False)
    assert again["accuracy"] == summary["accuracy"]
    assert again["artifacts"] == summary["artifacts"]
    assert capsys.readouterr().err.count("reusing") == 9  # the corpus and all eight artifacts


@pytest.mark.slow  # ~8 s: the toy chain again, in another folder
def test_same_command_gives_the_same_ids_and_table(first_run: tuple[Path, dict], tmp_path: Path) -> None:
    """Deterministic by default: two runs of one command into two folders agree on every artifact id (corpus
    encoding, features, weights, evaluations) and print the same table."""
    out, first = first_run
    second = run_demo(tmp_path / "b", tiny(), show_progress=False)
    assert first["artifacts"] == second["artifacts"]
    assert first["table"] == second["table"]
    teacher = load_artifact(out / "teacher")
    assert teacher.config["loop"]["deterministic"] is True
    assert teacher.metrics["torch_threads"] >= 1


@pytest.mark.slow  # ~7 s: a second seed beside the shared chain (on a copy of it)
def test_seeds_add_runs_and_the_report_averages_them(
    first_run: tuple[Path, dict], tmp_path: Path, capsys
) -> None:
    out = tmp_path / "demo"
    shutil.copytree(first_run[0], out)
    single = first_run[1]
    config = tiny()
    config.seeds = 2
    capsys.readouterr()
    both = run_demo(out, config, show_progress=False)
    err = capsys.readouterr().err
    # Seed 0 is the plain run's, reused; seed 1 trains in seed-1/; the old report is rebuilt from all six.
    assert both["artifacts"]["teacher"] == single["artifacts"]["teacher"]
    assert {"seed-1/teacher", "seed-1/eval-mtd", "seed-1/eval-bce"} <= set(both["artifacts"])
    assert load_artifact(out / "seed-1" / "teacher").config["loop"]["seed"] == 1
    assert load_artifact(out / "seed-1" / "student-mtd").config["loop"]["seed"] == 1
    assert both["artifacts"]["seed-1/teacher"] != both["artifacts"]["teacher"]
    assert "was made from other inputs; rebuilding it" in err
    report = load_artifact(out / "report")
    assert len(report.manifest["inputs"]) == 6
    for label in ("teacher", "MTD student", "BCE student"):
        row = next(line for line in both["table"].splitlines() if line.startswith(f"| {label} |"))
        assert "(n=2)" in row


def test_deterministic_and_seeds_flags_reach_the_configs() -> None:
    from avkd.tasks import get_task

    sync, emotion = get_task("sync"), get_task("emotion")
    assert sync.config("demo", None, (), {}).deterministic is True  # the demo's default
    assert sync.config("demo", None, (), {"deterministic": False, "seeds": 3}).seeds == 3
    assert emotion.config("demo", None, (), {"seeds": 2}).seeds == 2
    for task in (sync, emotion):
        assert task.config("train", None, (), {}).loop.deterministic is False  # a stage's default
        assert task.config("train", None, (), {"deterministic": True}).loop.deterministic is True
        assert task.config("distill", None, (), {"deterministic": True}).loop.deterministic is True
