"""AVSiam on the emotion track (avkd/models/avsiam_emotion.py through the emotion stages): mixed-modality training,
video-only evaluation, a report row next to an EDAM student, distillation with AVSiam on either side, and the
initialisation from a pre-trained AVSiam artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from avkd.cli.main import main
from avkd.core.artifacts import MODEL, load_artifact
from avkd.core.errors import ConfigError, UsageError
from avkd.core.jsonl import read_jsonl
from avkd.data.mosei.dataset import MoseiDataset
from avkd.data.mosei.labels import label7
from avkd.models import build_model
from avkd.models.avsiam_emotion import AVSiamEmotion
from avkd.models.io import ModelSpec, import_checkpoint, load_model
from avkd.report.emotion import build_emotion_report
from avkd.tasks.emotion.config import (
    EmotionDistillConfig,
    EmotionEvalConfig,
    EmotionModelConfig,
    EmotionTrainConfig,
)
from avkd.tasks.emotion.distill import EmotionDistillTask, distill_emotion
from avkd.tasks.emotion.evaluate import evaluate_emotion_artifact
from avkd.tasks.emotion.train import EmotionTeacherTask, train_emotion_teacher
from avkd.train.checkpoint import seed_everything
from avkd.train.loop import LoopConfig

SMALL_MULT = {"d": 10, "layers": 1}
#: 16-pixel patches over the 40-step test features: 15 audio and 9 vision tokens.
PATCH = {"patch_size": 16}


def loop(epochs: int = 1, steps: int | None = 2) -> LoopConfig:
    return LoopConfig(
        epochs=epochs, batch_size=8, device="cpu", select_metric="val_acc7", max_steps_per_epoch=steps
    )


@pytest.fixture(scope="module")
def avsiam(mosei_features: Path, tmp_path_factory) -> Path:
    """avsiam_emotion trained with mixed modalities through the command line (4 epochs of the whole split)."""
    out = tmp_path_factory.mktemp("avsiam-emotion") / "model"
    args = [
        "train",
        "teacher",
        "--task",
        "emotion",
        "--model",
        "avsiam_emotion",
        "--data",
        str(mosei_features),
    ]
    args += ["--out", str(out), "--epochs", "4", "--batch-size", "8", "--device", "cpu"]
    assert main([*args, "--set", "model.kwargs.patch_size=16"]) == 0
    return out


@pytest.fixture(scope="module")
def mult_teacher(mosei_features: Path, tmp_path_factory) -> Path:
    config = EmotionTrainConfig(
        model=EmotionModelConfig(kwargs={"branch": "complete", "output_dim": 7, **SMALL_MULT}), loop=loop()
    )
    out = tmp_path_factory.mktemp("emotion-mult") / "teacher"
    return train_emotion_teacher(config, mosei_features, out, show_progress=False).path


def train_loss(model: torch.nn.Module, features: Path, mode: str) -> float:
    data = MoseiDataset(features, "train")
    batch = [data[i] for i in range(len(data))]
    text, audio, vision = (torch.stack([b[j] for b in batch]) for j in range(3))
    labels = label7(torch.stack([b[3] for b in batch]))
    with torch.no_grad():
        return float(F.cross_entropy(model.eval()(text, audio, vision, mode=mode), labels))


def test_mixed_training_lowers_the_loss_of_every_head_and_selects_video_only(
    avsiam: Path, mosei_features: Path
) -> None:
    loaded = load_model(avsiam)
    assert isinstance(loaded.model, AVSiamEmotion)
    # The MulT defaults of the model section were left out; the maps took the features' lengths.
    assert loaded.spec.kwargs == {"patch_size": 16, "audio_len": 40, "vision_len": 40}
    seed_everything(0)  # the stage builds its model right after seeding with loop.seed (0)
    initial = build_model("avsiam_emotion", **loaded.spec.kwargs)
    for mode in ("v", "a", "av"):
        assert train_loss(loaded.model, mosei_features, mode) < train_loss(initial, mosei_features, mode), (
            mode
        )
    rows = read_jsonl(avsiam / "metrics.jsonl")
    steps = {m: sum(r[f"mode_{m}"] for r in rows) for m in ("av", "a", "v")}
    assert all(share > 0 for share in steps.values()), steps  # all three heads were trained
    assert int(loaded.model.mode_draws[1]) > 0 and loaded.model.eval_mode == "v"


def test_evaluation_gives_a_video_only_acc7_row(avsiam: Path, mosei_features: Path, tmp_path: Path) -> None:
    art = evaluate_emotion_artifact(
        EmotionEvalConfig(), avsiam, mosei_features, tmp_path / "e", label="AVSiam mixed", show_progress=False
    )
    summary = json.loads((art.path / "metrics.json").read_text())
    assert 0.0 <= art.metrics["acc7"] <= 1.0 and summary["label"] == "AVSiam mixed"
    assert art.metrics["parameters"] == sum(p.numel() for p in load_model(avsiam).model.parameters())
    # modality=v is the model's own eval mode: the same numbers; a MulT has one way to run.
    v = evaluate_emotion_artifact(
        EmotionEvalConfig(modality="v"), avsiam, mosei_features, tmp_path / "v", show_progress=False
    )
    assert v.config["modality"] == "v" and {k: v.metrics[k] for k in ("acc7", "mae", "f1_weighted")} == {
        k: art.metrics[k] for k in ("acc7", "mae", "f1_weighted")
    }


def test_modality_is_refused_for_mult(mult_teacher: Path, mosei_features: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="modality 'a': this model has one way to run"):
        evaluate_emotion_artifact(
            EmotionEvalConfig(modality="a"), mult_teacher, mosei_features, tmp_path / "e", show_progress=False
        )
    with pytest.raises(ConfigError, match="modality"):
        evaluate_emotion_artifact(
            EmotionEvalConfig(modality="x"), mult_teacher, mosei_features, tmp_path / "e", show_progress=False
        )


def test_report_has_the_avsiam_row_next_to_the_edam_student(
    avsiam: Path, mult_teacher: Path, mosei_features: Path, tmp_path: Path
) -> None:
    config = EmotionDistillConfig(method="edam-s", student_kwargs=dict(SMALL_MULT), loop=loop())
    student = distill_emotion(config, mult_teacher, mosei_features, tmp_path / "s", show_progress=False)
    evals = [
        evaluate_emotion_artifact(
            EmotionEvalConfig(), model, mosei_features, tmp_path / f"e{i}", label=label, show_progress=False
        )
        for i, (model, label) in enumerate(
            [(student.path, "edam-s student"), (avsiam, "AVSiam mixed, video-only")]
        )
    ]
    report = build_emotion_report(evals, tmp_path / "r")
    text = (report.path / "report.md").read_text()
    assert "edam-s student" in text and "AVSiam mixed, video-only" in text
    rows = json.loads((report.path / "report.json").read_text())["runs"]
    assert [r["label"] for r in rows] == ["edam-s student", "AVSiam mixed, video-only"]


@pytest.mark.parametrize("method", ["crd-final", "crd-penultimate"])
def test_distil_an_avsiam_student_from_mult(
    method: str, mult_teacher: Path, mosei_features: Path, tmp_path: Path
) -> None:
    config = EmotionDistillConfig(
        method=method, nce_k=8, student_model="avsiam_emotion", student_kwargs=dict(PATCH), loop=loop()
    )
    art = distill_emotion(config, mult_teacher, mosei_features, tmp_path / "s", show_progress=False)
    row = read_jsonl(tmp_path / "s" / "metrics.jsonl")[0]
    assert "train/kd" in row and 0 <= row["val_acc7"] <= 1
    loaded = load_model(art.path)
    assert isinstance(loaded.model, AVSiamEmotion) and loaded.spec.kwargs["train_mode"] == "v"
    assert loaded.spec.kwargs["vision_len"] == 40 and art.metrics["student_model"] == "avsiam_emotion"


def test_distil_mult_from_an_avsiam_teacher_runs_it_audio_visually(
    avsiam: Path, mosei_features: Path
) -> None:
    teacher = load_model(avsiam).model
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    config = EmotionDistillConfig(
        method="crd-penultimate", nce_k=8, student_kwargs=dict(SMALL_MULT), loop=loop()
    )
    task = EmotionDistillTask(config, teacher, load_artifact(mosei_features))
    try:
        # The teacher's "hidden" is its fusion head's input: 2 × 96 wide (the video-only head's would be 96).
        assert teacher.eval_mode == "av" and task.loss_fn.embed_t["penultimate"].linear.in_features == 192
        loss, logs = task.loss(
            next(iter(torch.utils.data.DataLoader(task.train, batch_size=4))), torch.device("cpu")
        )
        loss.backward()
        assert torch.isfinite(loss) and "train/kd" in logs
    finally:
        task.close()
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # frozen, no draws


def test_distil_from_an_avsiam_teacher_artifact(avsiam: Path, mosei_features: Path, tmp_path: Path) -> None:
    config = EmotionDistillConfig(method="crd-final", nce_k=8, student_kwargs=dict(SMALL_MULT), loop=loop())
    art = distill_emotion(config, avsiam, mosei_features, tmp_path / "s", show_progress=False)
    assert load_model(art.path).spec.name == "mult_student"
    assert load_artifact(avsiam).id in [i["id"] for i in art.manifest["inputs"]]


def test_attention_methods_with_an_avsiam_are_one_line_errors(
    avsiam: Path, mult_teacher: Path, mosei_features: Path, tmp_path: Path
) -> None:
    student = EmotionDistillConfig(
        method="edam-s", student_model="avsiam_emotion", student_kwargs=dict(PATCH)
    )
    with pytest.raises(
        UsageError, match=r"--method edam-s: the student \(AVSiamEmotion\) has no tap 'a_with_v"
    ) as e:
        distill_emotion(student, mult_teacher, mosei_features, tmp_path / "a", show_progress=False)
    assert "\n" not in str(e.value)
    teacher = EmotionDistillConfig(method="crd-attention", nce_k=8, student_kwargs=dict(SMALL_MULT))
    with pytest.raises(UsageError, match=r"--method crd-attention: the teacher \(AVSiamEmotion\) has no tap"):
        distill_emotion(teacher, avsiam, mosei_features, tmp_path / "b", show_progress=False)
    mixed = EmotionDistillConfig(
        method="crd-penultimate",
        student_model="avsiam_emotion",
        student_kwargs={**PATCH, "train_mode": "mixed"},
    )
    with pytest.raises(UsageError, match=r"widths \[96, 192\]"):
        distill_emotion(mixed, mult_teacher, mosei_features, tmp_path / "c", show_progress=False)
    assert not any(p.exists() for p in (tmp_path / "a", tmp_path / "b", tmp_path / "c"))


def test_init_from_a_pretrained_avsiam_artifact(mosei_features: Path, tmp_path: Path) -> None:
    torch.manual_seed(5)
    source = build_model("avsiam", size="toy", num_classes=3)  # a clips model: RGB frames, 32 × 64 fbanks
    torch.save({"state_dict": source.state_dict()}, tmp_path / "pre.pt")
    pre = import_checkpoint(
        tmp_path / "pre.pt", tmp_path / "pre", ModelSpec("avsiam", {"size": "toy", "num_classes": 3})
    )
    config = EmotionTrainConfig(
        model=EmotionModelConfig(name="avsiam_emotion"), loop=loop(1, 1), init=str(pre.path)
    )
    task = EmotionTeacherTask(config, load_artifact(mosei_features), pre)
    try:
        for key in ("blocks.0.attn.qkv.weight", "blocks.3.norm1_a.bias", "fusion.0.mlp.fc1.weight"):
            assert torch.equal(task.model.state_dict()[key], source.state_dict()[key]), key
    finally:
        task.close()
    art = train_emotion_teacher(config, mosei_features, tmp_path / "m", show_progress=False)
    assert pre.id in [i["id"] for i in art.manifest["inputs"]] and art.metrics["init"] == pre.id
    mult = EmotionTrainConfig(loop=loop(1, 1), init=str(pre.path))
    with pytest.raises(UsageError, match="init loads a pre-trained AVSiam into an AVSiam model"):
        train_emotion_teacher(mult, mosei_features, tmp_path / "x", show_progress=False)
    assert load_artifact(pre.path, kind=MODEL).id == pre.id


def test_pretraining_on_mosei_features_then_init_of_the_emotion_model(
    mosei_features: Path, tmp_path: Path
) -> None:
    """The MOSEI adapter of ``avkd pretrain`` (avkd.tasks.avsiam.inputs): the maps the emotion model reads, the
    contrastive loss falls, and the pre-trained model initialises ``avsiam_emotion`` on the same grids."""
    from avkd.tasks.avsiam.config import AVSiamPretrainConfig, pretrain_loop
    from avkd.tasks.avsiam.inputs import MoseiMaps
    from avkd.tasks.avsiam.pretrain import pretrain_avsiam

    run = pretrain_loop()
    run.epochs, run.batch_size, run.lr, run.device, run.seed, run.max_steps_per_epoch = (
        3,
        4,
        1e-3,
        "cpu",
        0,
        6,
    )
    pre = pretrain_avsiam(
        AVSiamPretrainConfig(loop=run, val_split="val"), mosei_features, tmp_path / "pre", show_progress=False
    )
    model = load_model(pre.path).model
    assert isinstance(model, AVSiamEmotion) and model.decoder is not None
    rows = read_jsonl(tmp_path / "pre" / "metrics.jsonl")
    assert rows[-1]["contrastive"] < rows[0]["contrastive"]
    assert all(torch.isfinite(torch.tensor(r["val_rec_audio"])) for r in rows)
    # Items are exactly the model's maps of the segments, in a per-epoch order.
    segments = MoseiDataset(mosei_features, "train")
    maps = MoseiMaps(segments, model, seed=0)
    a, v, y = maps[0]
    _, audio, vision, label, _ = segments[int(maps.order[0])]
    torch.testing.assert_close(a, model.audio_map(audio[None])[0])
    torch.testing.assert_close(v, model.vision_map(vision[None])[0])
    assert int(y) == int(label7(torch.as_tensor(label)))
    first = maps.order.copy()
    maps.set_epoch(1)
    assert sorted(maps.order) == sorted(first) and list(maps.order) != list(first)
    # The pre-trained grids are the emotion model's: the encoder is copied as is.
    config = EmotionTrainConfig(
        model=EmotionModelConfig(name="avsiam_emotion"), loop=loop(1, 1), init=str(pre.path)
    )
    task = EmotionTeacherTask(config, load_artifact(mosei_features), load_artifact(pre.path))
    try:
        for key in ("pos_embed_a", "pos_embed_v", "patch_embed_v.proj.weight", "blocks.1.mlp.fc2.weight"):
            assert torch.equal(task.model.state_dict()[key], model.state_dict()[key]), key
    finally:
        task.close()
