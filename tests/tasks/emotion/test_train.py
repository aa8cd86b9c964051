"""Emotion-track teacher training on the synthetic CMU-MOSEI corpus."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from avkd.core.artifacts import load_artifact
from avkd.core.config import resolve_config
from avkd.core.jsonl import read_jsonl
from avkd.models.io import count_parameters, load_model
from avkd.tasks.emotion.config import EmotionModelConfig, EmotionTrainConfig, emotion_loop
from avkd.tasks.emotion.train import EpochShuffle, train_emotion_teacher
from avkd.train.loop import LoopConfig

TINY = {"branch": "complete", "output_dim": 7, "d": 10, "layers": 1}


def lengths(features: Path) -> tuple[int, int, int]:
    config = load_artifact(features).config
    return config["text_len"], config["audio_len"], config["vision_len"]


def tiny_config(epochs: int = 2, **kwargs) -> EmotionTrainConfig:
    return EmotionTrainConfig(
        model=EmotionModelConfig(name="mult", kwargs=dict(TINY, **kwargs)),
        loop=LoopConfig(
            epochs=epochs, batch_size=8, lr=1e-3, device="cpu", grad_clip=0.8, select_metric="val_acc7"
        ),
    )


def test_teacher_trains_and_loads(mosei_features: Path, tmp_path: Path) -> None:
    art = train_emotion_teacher(tiny_config(), mosei_features, tmp_path / "t", show_progress=False)
    history = read_jsonl(tmp_path / "t" / "metrics.jsonl")
    assert len(history) == 2 and {"val_acc7", "val_f1", "val_loss"} <= set(history[0])
    assert art.metrics["best_val_acc7"] == max(r["val_acc7"] for r in history)
    model = load_model(tmp_path / "t").model
    t_l, t_a, t_v = lengths(mosei_features)
    out = model(torch.zeros(2, t_l, 300), torch.zeros(2, t_a, 74), torch.zeros(2, t_v, 35))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


def test_video_branch(mosei_features: Path, tmp_path: Path) -> None:
    """The saved model is MulT's video-only mode: only the video query's crossmodal blocks, a 2·d head."""
    train_emotion_teacher(
        tiny_config(epochs=1, branch="video"), mosei_features, tmp_path / "v", show_progress=False
    )
    model = load_model(tmp_path / "v").model
    blocks = {k.split(".")[0] for k in model.state_dict() if k.startswith("trans_")}
    # MulT keeps all three mem encoders in a partial mode (reference l.58-60), but only v_mem runs.
    assert blocks == {"trans_v_with_l", "trans_v_with_a", "trans_l_mem", "trans_a_mem", "trans_v_mem"}
    assert model.out_layer.in_features == 2 * TINY["d"]
    inputs = [torch.zeros(1, n, dim) for n, dim in zip(lengths(mosei_features), (300, 74, 35), strict=True)]
    ran = {name.split(".")[0] for name in model(*inputs, taps="*").taps if "_with_" in name or "_mem" in name}
    assert ran == {"v_with_l", "v_with_a", "v_mem"}


def test_a_loop_flag_keeps_the_mult_recipe() -> None:
    # What `avkd train teacher --task mosei --epochs 1` resolves (the flags are dotted config keys).
    loop = resolve_config(EmotionTrainConfig, None, ["loop.epochs=1"]).loop
    assert loop == dataclasses.replace(emotion_loop(), epochs=1)


def test_epoch_shuffle_is_a_function_of_seed_and_epoch() -> None:
    data = list(range(10))
    a, b = EpochShuffle(data, seed=1), EpochShuffle(data, seed=1)
    a.set_epoch(3)
    b.set_epoch(3)
    assert [a[i] for i in range(10)] == [b[i] for i in range(10)] and sorted(a[i] for i in range(10)) == data
    b.set_epoch(4)
    assert [a[i] for i in range(10)] != [b[i] for i in range(10)]


def test_train_and_evaluate_cli(mosei_features: Path, tmp_path: Path, capsys) -> None:
    import json

    from avkd.cli.main import main

    args = [
        "train",
        "teacher",
        "--task",
        "mosei",
        "--data",
        str(mosei_features),
        "--out",
        str(tmp_path / "t"),
    ]
    args += ["--branch", "video", "--epochs", "1", "--batch-size", "8", "--device", "cpu"]
    args += ["--set", "model.kwargs.d=10", "--set", "model.kwargs.layers=1"]
    assert main(args) == 0
    capsys.readouterr()
    code = main(["evaluate", "--task", "mosei", "--model", str(tmp_path / "t"), "--data", str(mosei_features), "--out", str(tmp_path / "e"), "--json"])  # fmt: skip
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert code == 0 and 0.0 <= metrics["acc7"] <= 1.0
    assert metrics["parameters"] == count_parameters(load_model(tmp_path / "t").model)
    summary = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert sum(summary["histogram"]) == summary["n"] and summary["majority_from"] == "train"
    # Evaluating the same model again gives the same id, whatever the timing (metrics.json is a log).
    capsys.readouterr()
    assert main(["evaluate", "--task", "mosei", "--model", str(tmp_path / "t"), "--data", str(mosei_features), "--out", str(tmp_path / "e2"), "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["id"] == load_artifact(tmp_path / "e").id
    assert main(["train", "teacher", "--task", "mosei", "--data", str(mosei_features), "--out", str(tmp_path / "x"), "--width", "3"]) == 2  # fmt: skip
    # MulT's convention (binary F1 weighted by the predicted classes) is recorded in both files and the manifest.
    capsys.readouterr()
    assert main(["evaluate", "--task", "mosei", "--model", str(tmp_path / "t"), "--data", str(mosei_features), "--out", str(tmp_path / "ref"), "--protocol", "reference"]) == 0  # fmt: skip
    ref = json.loads((tmp_path / "ref" / "metrics.json").read_text())
    assert ref["protocol"] == "reference" and summary["protocol"] == "avkd"
    assert load_artifact(tmp_path / "ref").metrics["protocol"] == "reference"
    assert (tmp_path / "ref" / "metrics.md").read_text().rstrip().endswith("| reference |")
    assert ref["acc7"] == summary["acc7"] and ref["acc2"] == summary["acc2"]  # the same predictions
    capsys.readouterr()
    assert main(["evaluate", "--task", "mosei", "--model", str(tmp_path / "t"), "--data", str(mosei_features), "--out", str(tmp_path / "bad"), "--protocol", "official"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert (
        "--protocol: 'official' is not a protocol: expected avkd or reference" in err
        and len(err.splitlines()) == 1
    )
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.partial").exists()
    # The report gains the emotion track's Table-1-shaped table.
    capsys.readouterr()
    assert main(["report", str(tmp_path / "e"), "--out", str(tmp_path / "r")]) == 0
    report = (tmp_path / "r" / "report.md").read_text()
    acc7 = json.loads((tmp_path / "e" / "metrics.json").read_text())["acc7"]
    assert (
        f"| t | teacher / trained alone | {100 * acc7:.2f} |" in report
        and "EDAM-S on attention maps (best)" in report
    )


def test_two_identical_runs_share_an_id(mosei_features: Path, tmp_path: Path) -> None:
    """Single-threaded training is bit-reproducible; the per-epoch log (with its timings) does not enter the id."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        arts = [
            train_emotion_teacher(tiny_config(epochs=1), mosei_features, tmp_path / name, show_progress=False)
            for name in ("a", "b")
        ]
    finally:
        torch.set_num_threads(threads)
    assert arts[0].files["model.pt"]["sha256"] == arts[1].files["model.pt"]["sha256"]
    assert arts[0].files["metrics.jsonl"]["log"] is True
    assert arts[0].id == arts[1].id
