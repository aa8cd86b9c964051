"""The emotion track's distillation under ``torchrun --nproc-per-node 2`` against one process (tests/ddp.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avkd.core.artifacts import load_artifact
from avkd.tasks.emotion.config import EmotionModelConfig, EmotionTrainConfig
from avkd.tasks.emotion.train import EmotionTeacherTask
from avkd.train.loop import LoopConfig
from tests.ddp import NO_DROPOUT_MULT, avkd_run, same_training, sets, unused_parameters


@pytest.mark.slow
def test_two_processes_distill_emotion_with_crd_as_one(mosei_features: Path, tmp_path: Path) -> None:
    small = {"d": 10, "layers": 1, **NO_DROPOUT_MULT}
    teacher = tmp_path / "teacher"
    teacher_sets = {"model.kwargs": {"branch": "complete", "output_dim": 7, **small}}
    loop = ["--epochs", "2", "--batch-size", "8", "--device", "cpu"]
    args = ["train", "teacher", "--task", "emotion", "--data", str(mosei_features), "--out", str(teacher)]
    avkd_run([*args, *loop, *sets(teacher_sets)], 1, tmp_path)
    runs = {}
    for procs in (1, 2):
        runs[procs] = tmp_path / f"p{procs}" / "crd"
        runs[procs].parent.mkdir()
        args = ["distill", "--task", "emotion", "--method", "crd-penultimate", "--teacher", str(teacher)]
        extra = sets({"nce_k": 8, "student_kwargs": small, "loop.max_steps_per_epoch": 4})
        args += ["--data", str(mosei_features), "--out", str(runs[procs])]
        avkd_run([*args, *loop, *extra], procs, tmp_path)
    # CRD's memory banks are updated with the whole global batch on both ranks, and its normaliser is the global
    # first batch's mean: without both the two runs part after the first step.
    same_training(runs[1], runs[2], atol=1e-4)


@pytest.mark.parametrize("branch", ["complete", "video", "audio", "language"])
def test_a_teacher_branch_declares_the_parameters_it_leaves_unused(mosei_features: Path, branch: str) -> None:
    config = EmotionTrainConfig(
        model=EmotionModelConfig(kwargs={"branch": branch, "output_dim": 7, "d": 10, "layers": 1}),
        loop=LoopConfig(epochs=1, batch_size=4, device="cpu", select_metric="val_acc7"),
    )
    task = EmotionTeacherTask(config, load_artifact(mosei_features))
    try:
        assert task.find_unused_parameters == bool(unused_parameters(task))
    finally:
        task.close()
