"""Small artifacts for ``avkd mfh diagnose``: the emotion tests' short-length synthetic CMU-MOSEI features with a
MulT teacher and a video-only student trained one epoch on them, and two tiny VocaLiST-lite models for the sync
track (their weights as initialised: the diagnosis only needs models and data, not good ones)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avkd.models.io import ModelSpec, import_checkpoint
from avkd.tasks.emotion.config import EmotionDistillConfig, EmotionModelConfig, EmotionTrainConfig
from avkd.tasks.emotion.distill import distill_emotion
from avkd.tasks.emotion.train import train_emotion_teacher
from avkd.train.loop import LoopConfig
from tests.tasks.emotion import conftest as emotion

SMALL = {"d": 10, "layers": 1}

#: The emotion tests' short-length features (tests/tasks/emotion/conftest.py), for the tests here too.
mosei_features = emotion.mosei_features


def _loop() -> LoopConfig:
    return LoopConfig(epochs=1, batch_size=8, device="cpu", select_metric="val_acc7", deterministic=True)


@pytest.fixture(scope="session")
def mosei_pair(mosei_features: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(teacher, student, features): MulT (complete, d 10, 1 layer) and its configuration-5 student, 1 epoch."""
    root = tmp_path_factory.mktemp("mfh-pair")
    teacher = train_emotion_teacher(
        EmotionTrainConfig(
            model=EmotionModelConfig(kwargs={"branch": "complete", "output_dim": 7, **SMALL}), loop=_loop()
        ),
        mosei_features,
        root / "teacher",
        show_progress=False,
    ).path
    student = distill_emotion(
        EmotionDistillConfig(method="none", student_kwargs=dict(SMALL), loop=_loop()),
        teacher,
        mosei_features,
        root / "student",
        show_progress=False,
    ).path
    return teacher, student, mosei_features


@pytest.fixture(scope="session")
def sync_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(teacher, student) model artifacts: VocaLiST-lite at widths 16 and 8, seeded initial weights."""
    root = tmp_path_factory.mktemp("mfh-sync")
    paths = []
    for name, width, channels in (("teacher", 16, [4, 4, 8, 8, 16]), ("student", 8, [4, 4, 8, 8, 8])):
        spec = ModelSpec("vocalist_lite", {"width": width, "channels": channels, "num_layers": 1})
        torch.manual_seed(width)
        checkpoint = root / f"{name}.pth"
        torch.save({"state_dict": spec.build().state_dict()}, checkpoint)
        paths.append(import_checkpoint(checkpoint, root / name, spec).path)
    return paths[0], paths[1]
