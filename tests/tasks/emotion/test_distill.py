"""Emotion-track distillation end to end on the synthetic CMU-MOSEI corpus: every method, a few steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from avkd.cli.main import main
from avkd.core.artifacts import load_artifact
from avkd.core.errors import UsageError
from avkd.core.jsonl import read_jsonl
from avkd.data.mosei.ingest import MoseiIngestConfig, ingest_mosei
from avkd.data.mosei.synthetic import synthesize_mosei
from avkd.models.io import load_model
from avkd.tasks.emotion.config import EmotionDistillConfig, EmotionModelConfig, EmotionTrainConfig
from avkd.tasks.emotion.distill import EmotionDistillTask, distill_emotion
from avkd.tasks.emotion.methods import METHODS
from avkd.tasks.emotion.train import train_emotion_teacher
from avkd.train.loop import LoopConfig

SMALL = {"d": 10, "layers": 1}


@pytest.fixture(scope="module")
def mosei(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mosei")
    synthesize_mosei(root / "csd")
    feats = ingest_mosei(MoseiIngestConfig(), root / "csd", root / "feats").path
    config = EmotionTrainConfig(
        model=EmotionModelConfig(kwargs={"branch": "complete", "output_dim": 7, **SMALL}),
        loop=LoopConfig(epochs=1, batch_size=8, device="cpu", select_metric="val_acc7"),
    )
    teacher = train_emotion_teacher(config, feats, root / "teacher", show_progress=False).path
    return feats, teacher


def small(method: str) -> EmotionDistillConfig:
    return EmotionDistillConfig(
        method=method,
        config_id=5,
        nce_k=8,
        student_kwargs=dict(SMALL),
        loop=LoopConfig(
            epochs=1, batch_size=8, device="cpu", select_metric="val_acc7", max_steps_per_epoch=2
        ),
    )


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method(method: str, mosei, tmp_path: Path) -> None:
    feats, teacher = mosei
    before = {k: v.clone() for k, v in load_model(teacher).model.state_dict().items()}
    art = distill_emotion(small(method), teacher, feats, tmp_path / "s", show_progress=False)
    row = read_jsonl(tmp_path / "s" / "metrics.jsonl")[0]
    assert art.metrics["method"] == method and 0 <= row["val_acc7"] <= 1
    assert ("train/kd" in row) == (method != "none")
    after = load_model(teacher).model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    student = load_model(tmp_path / "s").model
    assert student(None, None, torch.zeros(2, 500, 35)).shape == (2, 7)


def test_wrong_teacher_branch(mosei, tmp_path: Path) -> None:
    feats, teacher = mosei
    with pytest.raises(UsageError, match="configuration 2 distils from the MulT video branch"):
        distill_emotion(
            EmotionDistillConfig(config_id=2), teacher, feats, tmp_path / "x", show_progress=False
        )


def test_cli(mosei, tmp_path: Path, capsys) -> None:
    feats, teacher = mosei
    args = [
        "distill",
        "--task",
        "mosei",
        "--method",
        "crd-penultimate",
        "--config-id",
        "5",
        "--teacher",
        str(teacher),
    ]
    args += [
        "--data",
        str(feats),
        "--out",
        str(tmp_path / "s"),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--device",
        "cpu",
    ]
    args += ["--set", "nce_k=8", "--set", "student_kwargs.d=10", "--set", "student_kwargs.layers=1", "--json"]
    args += ["--set", "loop.max_steps_per_epoch=2"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["method"] == "crd-penultimate"


def test_student_mirrors_teacher_shape(mosei, tmp_path: Path) -> None:
    feats, teacher = mosei
    config = small("edam-s")
    config.student_kwargs = {}
    distill_emotion(config, teacher, feats, tmp_path / "s", show_progress=False)
    student = load_model(tmp_path / "s").model
    assert (student.d, student.num_heads, student.layers) == (10, 5, 1)


def test_incompatible_lengths_fail_before_training(mosei, tmp_path: Path) -> None:
    """EDAM-S proxies keep the video length; audio at another length cannot be matched map for map."""
    source_feats, teacher = mosei
    feats = ingest_mosei(MoseiIngestConfig(audio_len=250), source_feats.parent / "csd", tmp_path / "feats")
    with pytest.raises(
        UsageError, match=r"feats: cannot distil with 'edam-s': .*\(500, 500\) != teacher \(250, 500\)"
    ):
        distill_emotion(small("edam-s"), teacher, feats.path, tmp_path / "s", show_progress=False)
    assert not (tmp_path / "s").exists()


def test_probe_leaves_banks_and_rng_alone(mosei, monkeypatch) -> None:
    feats, teacher = mosei
    features = load_artifact(feats)

    def build() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        task = EmotionDistillTask(small("crd-final"), load_model(teacher).model, features)
        return task.loss_fn.state_dict(), torch.get_rng_state()

    banks, rng = build()
    monkeypatch.setattr(EmotionDistillTask, "_probe", lambda self, features: None)
    banks_unprobed, rng_unprobed = build()
    assert banks.keys() == banks_unprobed.keys() and any("memory" in k for k in banks)
    assert all(torch.equal(banks[k], banks_unprobed[k]) for k in banks)
    assert torch.equal(rng, rng_unprobed)
