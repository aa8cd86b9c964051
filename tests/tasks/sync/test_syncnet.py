"""SyncNet through the sync task: the 31-candidate evaluator scores it as −distance, ``avkd evaluate`` runs it on
a features artifact made with 224x224 crops, and ``avkd train teacher --objective pm | contrastive`` trains it.
(``avkd report`` reads its evaluation like any other; not repeated here, its figures cost ~10 s.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avkd.cli.main import main
from avkd.core.jsonl import read_jsonl
from avkd.data.lrs2.layouts import LAYOUTS
from avkd.data.lrs2.preprocess import LRS2PreprocessConfig, preprocess_lrs2
from avkd.data.lrs2.store import FeatureStore
from avkd.evaluate.sync import predicted_offsets, score_clip, score_clip_naive
from avkd.models import build_model
from avkd.models.io import ModelSpec, load_model, save_weights

THIN = {"embed_dim": 16, "audio_channels": [4, 4, 8, 8, 8, 8], "video_channels": [4, 8, 8, 8, 8, 8]}


@pytest.fixture(scope="module")
def feats224(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("features224") / "feats"
    return preprocess_lrs2(
        LRS2PreprocessConfig(crop_size=224), synth_corpus, out, show_progress=False
    ).artifact


@pytest.fixture(scope="module")
def thin_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = build_model("syncnet", **THIN).eval()
    path = tmp_path_factory.mktemp("syncnet") / "model.pt"
    save_weights(path, model, ModelSpec("syncnet", THIN, "bgr", "byte"))
    return path


def test_scores_are_minus_the_distance_of_each_candidate(feats224, thin_model: Path) -> None:
    model = load_model(thin_model).model
    store = FeatureStore(feats224)
    key = store.keys("pretrain")[0]
    crops, mfcc = store.frames(key), LAYOUTS["syncnet"].clip_audio(store, key)
    scores = score_clip(model, crops, mfcc, pixel_order="bgr", pixel_range="byte")
    n = crops.shape[0]
    assert scores.shape == (n - 5, 31)  # 4N − 1 MFCC columns: N − 5 windows
    # By hand for window 7 at offsets −3 and +2: the official layouts, BGR 0..255, MFCC columns 4·j .. 4·j + 19.
    with torch.inference_mode():
        bgr = torch.from_numpy(crops[..., ::-1].copy()).permute(3, 0, 1, 2).float()
        v = model.encode_video(bgr[:, 7:12].unsqueeze(0))[0, 0]
        for d in (-3, 2):
            a = model.encode_audio(
                torch.from_numpy(mfcc[:, 4 * (7 + d) : 4 * (7 + d) + 20]).view(1, 1, 13, 20)
            )
            assert scores[7, d + 15] == pytest.approx(
                -torch.linalg.vector_norm(v - a[0, 0] + 1e-6).item(), rel=1e-5
            )
    naive = score_clip_naive(model, crops, mfcc, pixel_order="bgr", pixel_range="byte", windows=[0, 7])
    np.testing.assert_allclose(naive[[0, 7]], scores[[0, 7]], rtol=1e-5, atol=1e-5, equal_nan=True)
    assert np.isnan(scores[0, :15]).all() and not np.isnan(scores[0, 15:]).any()
    assert predicted_offsets(scores).shape == (n - 5,)  # the argmax of −distance: the nearest audio window


def test_evaluate_through_the_cli(feats224, features, thin_model: Path, tmp_path: Path, capsys) -> None:
    common = ["evaluate", "--model", str(thin_model), "--split", "pretrain", "--frames", "5,9"]
    assert main([*common, "--data", str(feats224.path), "--out", str(tmp_path / "ev"), "--save-scores"]) == 0
    summary = json.loads((tmp_path / "ev" / "accuracy.json").read_text())
    clips = read_jsonl(tmp_path / "ev" / "clips.jsonl")
    scores = np.load(tmp_path / "ev" / "scores.npz")
    store = FeatureStore(feats224)
    assert summary["clips_evaluated"] == len(clips) == len(store.keys("pretrain"))
    for clip in clips:
        assert (
            scores[clip["key"]].shape
            == (store.info(clip["key"])["n_frames"] - 5, 31)
            == (clip["windows"], 31)
        )
    # The VocaLiST features (96x96 crops) are refused in one line that says how to make SyncNet's.
    capsys.readouterr()
    assert main([*common, "--data", str(features.path), "--out", str(tmp_path / "ev96")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {features.path}: face crops are 96x96") and err.count("\n") == 1
    assert "needs 224x224" in err and "crop_size=224" in err and not (tmp_path / "ev96").exists()


@pytest.mark.parametrize("objective", ["pm", "contrastive"])
def test_train_with_an_embedding_objective(feats224, tmp_path: Path, objective: str, capsys) -> None:
    out = tmp_path / objective
    args = ["train", "teacher", "--data", str(feats224.path), "--out", str(out), "--model", "syncnet"]
    args += ["--objective", objective, "--epochs", "1", "--batch-size", "2", "--samples-per-epoch", "2"]
    args += ["--set", f"model.kwargs={json.dumps(THIN)}", "--set", "val_samples=2", "--set", "pm_steps=3"]
    args += ["--set", "val_split=pretrain"]
    assert main(args) == 0
    assert "best val_acc" in capsys.readouterr().err
    loaded = load_model(out)
    assert loaded.spec.name == "syncnet" and loaded.spec.kwargs == THIN
    row = read_jsonl(out / "metrics.jsonl")[0]
    assert np.isfinite(row["train_loss"]) and np.isfinite(row["val_loss"]) and 0 <= row["val_acc"] <= 1
    assert loaded.artifact.metrics["best_val_acc"] == row["val_acc"]
    manifest = json.loads((out / "avkd.json").read_text())
    assert (
        manifest["config"]["objective"] == objective
        and manifest["config"]["loop"]["select_metric"] == "val_acc"
    )


def test_an_embedding_objective_needs_an_embedding_model(feats224, tmp_path: Path, capsys) -> None:
    args = ["train", "teacher", "--data", str(feats224.path), "--out", str(tmp_path / "m"), "--model"]
    args += ["vocalist_lite", "--objective", "pm", "--epochs", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "needs a model that embeds each window" in err and err.count("\n") == 1
    assert main([*args[:-4], "--objective", "triplet"]) == 2
    assert "objective" in capsys.readouterr().err
    syncnet = [
        *args[:-5],
        "syncnet",
        "--set",
        f"model.kwargs={json.dumps(THIN)}",
    ]  # the default objective: BCE
    assert main(syncnet) == 2
    assert "--objective pm or --objective contrastive" in capsys.readouterr().err


def test_distillation_refuses_a_syncnet(features, thin_model: Path, tmp_path: Path, capsys) -> None:
    # Distillation feeds VocaLiST's windows; a SyncNet teacher is refused before any training.
    args = ["distill", "--teacher", str(thin_model), "--data", str(features.path)]
    args += ["--out", str(tmp_path / "s")]
    assert main([*args, "--method", "kd"]) == 2
    err = capsys.readouterr().err
    assert "teacher 'syncnet' reads syncnet inputs" in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()
