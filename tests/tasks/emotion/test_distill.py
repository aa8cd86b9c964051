"""Emotion-track distillation end to end on the synthetic CMU-MOSEI corpus: every method, a few steps."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from avkd.cli.main import main
from avkd.core.artifacts import load_artifact
from avkd.core.errors import UsageError
from avkd.core.jsonl import read_jsonl
from avkd.data.mosei.ingest import MoseiIngestConfig, ingest_mosei
from avkd.models.io import load_model
from avkd.tasks.emotion.config import (
    EmotionDistillConfig,
    EmotionModelConfig,
    EmotionTrainConfig,
    emotion_loop,
)
from avkd.tasks.emotion.distill import EmotionDistillTask, distill_emotion
from avkd.tasks.emotion.methods import METHODS
from avkd.tasks.emotion.train import train_emotion_teacher
from avkd.train.loop import LoopConfig

SMALL = {"d": 10, "layers": 1}


@pytest.fixture(scope="module")
def mosei(mosei_features: Path, tmp_path_factory) -> tuple[Path, Path]:
    """The short-length features (tests/tasks/emotion/conftest.py) and a MulT teacher trained one epoch on them."""
    config = EmotionTrainConfig(
        model=EmotionModelConfig(kwargs={"branch": "complete", "output_dim": 7, **SMALL}),
        loop=LoopConfig(epochs=1, batch_size=8, device="cpu", select_metric="val_acc7"),
    )
    out = tmp_path_factory.mktemp("emotion-teacher") / "teacher"
    return mosei_features, train_emotion_teacher(config, mosei_features, out, show_progress=False).path


def small(method: str, **kwargs) -> EmotionDistillConfig:
    return EmotionDistillConfig(
        method=method,
        config_id=5,
        nce_k=8,
        student_kwargs=dict(SMALL),
        loop=LoopConfig(
            epochs=1, batch_size=8, device="cpu", select_metric="val_acc7", max_steps_per_epoch=2
        ),
        **kwargs,
    )


def lengths(features: Path) -> tuple[int, int, int]:
    config = load_artifact(features).config
    return config["text_len"], config["audio_len"], config["vision_len"]


def method_config(method: str, features: Path) -> EmotionDistillConfig:
    return small(method)  # crd-attention sizes its heads from the features' lengths by itself


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method(method: str, mosei, tmp_path: Path) -> None:
    feats, teacher = mosei
    before = {k: v.clone() for k, v in load_model(teacher).model.state_dict().items()}
    distill_emotion(method_config(method, feats), teacher, feats, tmp_path / "s", show_progress=False)
    row = read_jsonl(tmp_path / "s" / "metrics.jsonl")[0]
    assert 0 <= row["val_acc7"] <= 1
    assert ("train/kd" in row) == (method != "none")
    after = load_model(teacher).model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    loaded = load_model(tmp_path / "s")
    # EDAM-T compares maps of different sizes, so its student keeps every proxy at the video length.
    assert loaded.spec.kwargs["proxy"] == ("same" if method == "edam-t" else "edam_s")
    t_v = lengths(feats)[2]
    assert loaded.model(None, None, torch.zeros(2, t_v, 35)).shape == (2, 7)


def test_crd_attention_sizes_its_heads_from_the_features(mosei, tmp_path: Path) -> None:
    feats, teacher = mosei
    distill_emotion(small("crd-attention"), teacher, feats, tmp_path / "s", show_progress=False)


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
    args += ["--set", "loop.max_steps_per_epoch=2", "--set", "loop.select_metric=val_acc7"]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    # The flags make the same run as the library call with the same settings: the same artifact id. The loop
    # flags change only what they name: the rest of the loop is the task's recipe (MulT's lr 1e-3, clip 0.8).
    config = small("crd-penultimate")
    config.loop = dataclasses.replace(
        emotion_loop(), epochs=1, batch_size=8, device="cpu", max_steps_per_epoch=2
    )
    api = distill_emotion(config, teacher, feats, tmp_path / "api", show_progress=False)
    assert printed["id"] == load_artifact(tmp_path / "s").id == api.id


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
    t_l, t_a, t_v = lengths(source_feats)
    config = MoseiIngestConfig(text_len=t_l, audio_len=t_a // 2, vision_len=t_v)
    feats = ingest_mosei(config, source_feats.parent / "csd", tmp_path / "feats")
    with pytest.raises(
        UsageError,
        match=rf"feats: cannot distil with 'edam-s': .*\({t_a}, {t_v}\) != teacher \({t_a // 2}, {t_v}\)",
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
