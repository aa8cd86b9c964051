"""The avsiam task object: its registration, the dispatch of ``avkd evaluate`` on the features' kind, the
evaluation's task and speed records, and the stages it refuses (distillation) in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from avkd.cli.main import main
from avkd.core.artifacts import (
    CLIPS_FEATURES,
    LRS2_FEATURES,
    MOSEI_FEATURES,
    ArtifactWriter,
    load_artifact,
)
from avkd.core.errors import UsageError
from avkd.evaluate.avsiam import ClipsEvalConfig, evaluate_clips_artifact
from avkd.models.io import ModelSpec, save_weights
from avkd.tasks import TASKS, get_task, task_for_features, task_of
from avkd.tasks.avsiam.config import AVSiamFinetuneConfig
from avkd.tasks.avsiam.demo import AVSiamDemoConfig
from tests.tasks.avsiam.corpus import pretrain_features


@pytest.fixture(scope="module")
def feats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pretrain_features(tmp_path_factory)


def toy_model(path: Path, seed: int = 0, classes: int = 3) -> Path:
    """A randomly initialised toy avsiam weights file (no training: these tests are about the plumbing)."""
    torch.manual_seed(seed)
    spec = ModelSpec("avsiam", {"size": "toy", "num_classes": classes, "decoder": False})
    save_weights(path, spec.build(), spec)
    return path


def fake_features(path: Path, kind: str) -> Path:
    with ArtifactWriter(path, kind, {"fake": True}) as writer:
        writer.path("payload.txt").write_text("x\n")
        writer.commit(metrics={})
    return path


def test_the_task_is_registered_with_its_alias_and_stages() -> None:
    task = get_task("avsiam")
    assert "avsiam" in TASKS and get_task("clips") is task
    assert task.features_kind == CLIPS_FEATURES and task.demo_folder == "avkd-demo-avsiam"
    assert len(task.methods) == 0
    assert isinstance(task.config("train"), AVSiamFinetuneConfig)
    assert isinstance(task.config("demo", flags={"seeds": 2}), AVSiamDemoConfig)
    cfg = task.config("evaluate", flags={"per_class": 2, "split": "train"})
    assert isinstance(cfg, ClipsEvalConfig) and (cfg.per_class, cfg.split) == (2, "train")
    with pytest.raises(UsageError, match="--frames does not apply to evaluate in the avsiam task"):
        task.config("evaluate", flags={"frames": [5]})
    with pytest.raises(UsageError, match="no distillation methods"):
        task.config("distill")
    # Exactly one task owns each features kind: the lookup ``avkd evaluate`` makes is unambiguous.
    kinds = [TASKS.get(name).features_kind for name in TASKS]
    assert len(kinds) == len(set(kinds)) and CLIPS_FEATURES in kinds


def test_evaluate_dispatches_on_the_kind_of_the_features(feats: Path, tmp_path: Path) -> None:
    lrs2 = fake_features(tmp_path / "lrs2", LRS2_FEATURES)
    mosei = fake_features(tmp_path / "mosei", MOSEI_FEATURES)
    assert task_for_features(feats, None).name == "avsiam"
    assert task_for_features(feats, "clips").name == "avsiam"
    assert task_for_features(lrs2, None).name == "sync"
    assert task_for_features(mosei, None).name == "emotion"
    assert task_for_features(mosei, "mosei").name == "emotion"
    # Not an artifact: the --task given, else sync (the evaluator then names the problem).
    assert task_for_features(tmp_path / "nothing", None).name == "sync"
    assert task_for_features(tmp_path / "nothing", "emotion").name == "emotion"
    with pytest.raises(
        UsageError, match=r"--task sync: .* is a clips-features artifact, which the avsiam task"
    ):
        task_for_features(feats, "sync")


def test_avkd_evaluate_on_clips_records_the_task_and_keeps_speed_out_of_the_id(
    feats: Path, tmp_path: Path, capsys
) -> None:
    model = toy_model(tmp_path / "model.pt")
    args = ["evaluate", "--model", str(model), "--data", str(feats), "--per-class", "1", "--json"]
    assert main([*args, "--out", str(tmp_path / "e1")]) == 0
    got = json.loads(capsys.readouterr().out)
    art = load_artifact(tmp_path / "e1")
    assert got["id"] == art.id and art.config["per_class"] == 1 and art.metrics["clips"] == 3
    assert art.manifest["task"] == "avsiam" and task_of(art).name == "avsiam"
    assert art.metrics["parameters"] > 0 and art.metrics["clips_per_second"] > 0
    timing = json.loads((art.path / "timing.json").read_text())
    assert timing["clips"] == 3 and timing["clips_per_second"] == art.metrics["clips_per_second"]
    assert art.manifest["files"]["timing.json"]["log"] is True
    assert "clips_per_second" not in json.loads((art.path / "metrics.json").read_text())
    # The same evaluation again: another measured speed, the same id.
    again = evaluate_clips_artifact(
        ClipsEvalConfig(per_class=1), model, feats, tmp_path / "e2", show_progress=False
    )
    assert again.id == art.id
    # A --task that names another task, and the options the clips evaluation does not have: one line, exit 2.
    for extra in (["--task", "sync"], ["--precision", "fp32"], ["--limit", "2"], ["--protocol", "reference"]):
        assert main([*args, "--out", str(tmp_path / "bad"), *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and len(err.splitlines()) == 1, err
        assert extra[0] in err
        assert not (tmp_path / "bad").exists()


def test_train_through_the_task_and_distill_refused(feats: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ft"
    code = main(["train", "teacher", "--task", "avsiam", "--data", str(feats), "--out", str(out), "--epochs", "1",
                 "--batch-size", "4", "--device", "cpu", "--seed", "1"])  # fmt: skip
    assert code == 0
    model = load_artifact(out)
    assert model.config["modalities"] == "mixed" and model.config["loop"]["seed"] == 1
    assert "best val_acc" in capsys.readouterr().err  # the one-line summary goes to stderr
    code = main(["distill", "--task", "avsiam", "--teacher", str(out), "--data", str(feats), "--out",
                 str(tmp_path / "student")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no distillation methods" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "student").exists()
