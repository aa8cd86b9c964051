"""``avkd export`` of models beyond VocaLiST and MulT (issue 17, item 1): a SyncNet export's three graphs follow
its input layout (avkd/data/lrs2/layouts.py) and ``avkd evaluate`` runs the export on a 224x224 features artifact
with the model's own predictions.

A thin SyncNet (small channel lists; the 224x224 input stays, its strides need it), exported once per module with
the TorchScript exporter (the fast one; the dynamo path is the same code, covered by tests/models/test_export.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from avkd.cli.main import main
from avkd.core.artifacts import load_artifact
from avkd.data.lrs2.layouts import LAYOUTS, layout_of
from avkd.data.lrs2.preprocess import LRS2PreprocessConfig, preprocess_lrs2
from avkd.models.export import random_sync_inputs
from avkd.models.io import load_model
from avkd.models.onnx_model import load_export
from tests.models.test_export import SYNC, make_model, session

THIN_SYNCNET = {"embed_dim": 16, "audio_channels": [4, 4, 8, 8, 8, 8], "video_channels": [4, 8, 8, 8, 8, 8]}


@pytest.fixture(scope="module")
def feats224(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("features224") / "feats"
    return preprocess_lrs2(
        LRS2PreprocessConfig(crop_size=224), synth_corpus, out, show_progress=False
    ).artifact


@pytest.fixture(scope="module")
def syncnet_export(feats224, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("syncnet-export")
    model = make_model(root, "syncnet", THIN_SYNCNET)
    code = main(["export", str(model), "--format", "onnx", "--out", str(root / "export"), "--data",
                 str(feats224.path), "--split", "pretrain", "--exporter", "torchscript"])  # fmt: skip
    assert code == 0
    return model, root / "export"


def test_a_syncnet_exports_three_graphs_in_its_layout(syncnet_export) -> None:
    model, out = syncnet_export
    art = load_artifact(out, kind="export")
    assert art.manifest["task"] == "sync" and art.manifest["input_layout"] == "syncnet"
    assert art.metrics["inputs"] == "features"
    graphs = art.manifest["graphs"]
    assert list(graphs) == ["video_encoder", "audio_encoder", "fusion_head"]
    assert graphs["video_encoder"]["input_shapes"]["video"] == [2, 3, 5, 224, 224]
    assert graphs["audio_encoder"]["input_shapes"]["mel"] == [2, 1, 13, 20]
    assert graphs["fusion_head"]["input_shapes"] == {"v_emb": [1, 2, 16], "a_emb": [1, 2, 16]}
    assert "20 audio columns, the syncnet layout" in graphs["audio_encoder"]["fixed_axes"]["mel"]
    for name, g in graphs.items():
        assert g["max_abs_diff"] <= g["tolerance"], name
    assert art.metrics["max_abs_diff"]["composed"] <= 1e-4
    # At a batch neither traced (2) nor checked (3, 1), on fresh random windows of the layout.
    net = load_model(model).model
    x = random_sync_inputs(LAYOUTS["syncnet"], 4, seed=5, pixel_range="byte")
    assert x["video"].shape == (4, 3, 5, 224, 224) and float(x["video"].max()) > 1  # BGR 0..255
    with torch.no_grad():
        v_ref, a_ref = net.encode_video(x["video"]), net.encode_audio(x["mel"])
        logits = net(x["video"], x["mel"])
    v = session(out / "video_encoder.onnx").run(None, {"video": x["video"].numpy()})[0]
    a = session(out / "audio_encoder.onnx").run(None, {"mel": x["mel"].numpy()})[0]
    assert v.shape == a.shape == (1, 4, 16)
    np.testing.assert_allclose(v, v_ref.numpy(), atol=1e-4 * max(1.0, float(v_ref.abs().max())), rtol=0)
    np.testing.assert_allclose(a, a_ref.numpy(), atol=1e-4 * max(1.0, float(a_ref.abs().max())), rtol=0)
    fused = session(out / "fusion_head.onnx").run(None, {"v_emb": v, "a_emb": a})[0]
    np.testing.assert_allclose(fused, logits.numpy(), atol=1e-4, rtol=0)
    assert (fused < 0).all()  # −distance
    # The ONNX module reports the layout, so the evaluator cuts SyncNet windows for it.
    assert layout_of(load_export(out).model).name == "syncnet"


def test_avkd_evaluate_on_the_syncnet_export_gives_the_models_scores(
    syncnet_export, feats224, tmp_path
) -> None:
    model, out = syncnet_export
    common = [
        "evaluate",
        "--split",
        "pretrain",
        "--frames",
        "5,9",
        "--data",
        str(feats224.path),
        "--save-scores",
    ]
    assert main([*common, "--model", str(model), "--out", str(tmp_path / "pt")]) == 0
    assert main([*common, "--model", str(out), "--out", str(tmp_path / "ort")]) == 0
    pt, ort = np.load(tmp_path / "pt" / "scores.npz"), np.load(tmp_path / "ort" / "scores.npz")
    assert sorted(pt.files) == sorted(ort.files) and pt.files
    for key in pt.files:
        assert ort[key].shape == pt[key].shape and ort[key].shape[1] == 31
        np.testing.assert_allclose(ort[key], pt[key], atol=1e-4, rtol=0, equal_nan=True)
    a = json.loads((tmp_path / "pt" / "accuracy.json").read_text())
    b = json.loads((tmp_path / "ort" / "accuracy.json").read_text())
    assert b["runtime"] == "onnxruntime" and a["clips_evaluated"] == b["clips_evaluated"] > 0
    assert [i["kind"] for i in load_artifact(tmp_path / "ort").manifest["inputs"]] == [
        "lrs2-features",
        "export",
    ]


AVSIAM = {"size": "toy", "num_classes": 5, "decoder": False}


def test_an_avsiam_exports_one_graph_per_mode_that_matches_pytorch(tmp_path, capsys) -> None:
    model = make_model(tmp_path, "avsiam", AVSIAM)
    assert main(["export", str(model), "--out", str(tmp_path / "e"), "--exporter", "torchscript"]) == 0
    art = load_artifact(tmp_path / "e", kind="export")
    graphs = art.manifest["graphs"]
    assert art.manifest["task"] == "avsiam" and list(graphs) == ["model", "model_a", "model_v"]
    assert graphs["model"]["input_shapes"] == {"audio": [2, 1, 32, 64], "video": [2, 3, 32, 32]}
    assert graphs["model_a"]["inputs"] == ["audio"] and graphs["model_v"]["inputs"] == ["video"]
    for name, g in graphs.items():
        assert g["max_abs_diff"] <= 1e-4 and {c["batch"] for c in g["checks"]} == {3, 1}, name
    net = load_model(model).model
    gen = torch.Generator().manual_seed(9)
    audio, video = torch.randn(4, 1, 32, 64, generator=gen), torch.randn(4, 3, 32, 32, generator=gen)
    with torch.no_grad():
        refs = {
            "model": net(audio, video),
            "model_a": net(audio, None, mode="a"),
            "model_v": net(None, video, mode="v"),
        }
    feeds = {
        "model": {"audio": audio, "video": video},
        "model_a": {"audio": audio},
        "model_v": {"video": video},
    }
    for name, ref in refs.items():
        got = session(tmp_path / "e" / f"{name}.onnx").run(
            None, {k: v.numpy() for k, v in feeds[name].items()}
        )[0]
        assert got.shape == (4, 5)
        np.testing.assert_allclose(got, ref.numpy(), atol=1e-4, rtol=0, err_msg=name)
    assert not np.allclose(
        refs["model_a"].numpy(), refs["model_v"].numpy()
    )  # three heads, not one graph thrice
    # --data is refused in one line (its checks run on seeded random inputs).
    capsys.readouterr()
    assert main(["export", str(model), "--out", str(tmp_path / "e2"), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "drop --data" in err and not (tmp_path / "e2").exists()


def test_an_exported_program_export_reloads_and_matches_pytorch(tmp_path, features, capsys) -> None:
    model = make_model(tmp_path, "vocalist_lite", SYNC)
    out = tmp_path / "ep"
    assert main(["export", str(model), "--format", "exported-program", "--out", str(out)]) == 0
    art = load_artifact(out, kind="export")
    assert art.manifest["format"] == "exported-program" and art.manifest["input_layout"] == "vocalist"
    graphs = art.manifest["graphs"]
    assert list(graphs) == ["video_encoder", "audio_encoder", "fusion_head"]
    for name, g in graphs.items():
        assert g["file"] == f"{name}.pt2" and g["file"] in art.files and g["exporter"] == "torch.export"
        assert {c["batch"] for c in g["checks"]} == {3, 1} and g["max_abs_diff"] <= g["tolerance"], name
    assert art.metrics["max_abs_diff"]["composed"] <= 1e-4
    # Reloaded at batch 5 (neither traced nor checked): the batch axis is dynamic.
    net = load_model(model).model
    x = random_sync_inputs(LAYOUTS["vocalist"], 5, seed=3)
    with torch.no_grad():
        video = torch.export.load(str(out / "video_encoder.pt2")).module()
        audio = torch.export.load(str(out / "audio_encoder.pt2")).module()
        head = torch.export.load(str(out / "fusion_head.pt2")).module()
        got = head(video(x["video"]), audio(x["mel"]))
        ref = net(x["video"], x["mel"])
    assert got.shape == (5,)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=0)
    # The evaluators run ONNX exports only: one line, not a crash; int8 is ONNX only.
    capsys.readouterr()
    args = ["evaluate", "--model", str(out), "--data", str(features.path), "--out", str(tmp_path / "ev")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exported-program export" in err and "--format onnx" in err
    assert not (tmp_path / "ev").exists()
    q = [
        "export",
        str(model),
        "--format",
        "exported-program",
        "--quantize",
        "dynamic",
        "--out",
        str(tmp_path / "q"),
    ]
    assert main(q) == 2 and "ONNX only" in capsys.readouterr().err
