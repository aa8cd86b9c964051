"""Exports run by avkd's own evaluators (issue 17, parts 2 and 4): ``avkd evaluate`` and ``avkd sync`` on an export
give the model's predictions (fp32 within 1e-4), int8 graphs are written, checked and chosen by default, and the
evaluation names the export as its input.

One quantised export per model, made with the TorchScript exporter (the fast one; the dynamo exporter's graphs
are covered by tests/models/test_export.py), on the toy VocaLiST student and the video-only MulT student.
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
from avkd.core.errors import UsageError
from avkd.data.lrs2.store import FeatureStore
from avkd.data.lrs2.synthetic import speaker_style, write_utterance
from avkd.evaluate.sync import score_clip
from avkd.models.bench import BenchConfig, bench_models
from avkd.models.export import ExportConfig, export_model
from avkd.models.io import count_parameters, load_model
from avkd.models.onnx_model import OnnxSyncModel, load_export, load_inference_model
from avkd.report.runs import load_evaluations
from avkd.tasks.sync.offset import sync_video
from tests.models.test_export import SYNC, make_model, real_windows

FAST = {"exporter": "torchscript"}


@pytest.fixture(scope="module")
def sync_q(features, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sync-q")
    model = make_model(root, "vocalist_lite", SYNC)
    export_model(model, root / "export", ExportConfig(quantize="dynamic", **FAST), data=features.path)
    return model, root / "export"


def test_a_quantised_export_holds_checked_int8_graphs_and_makes_them_the_default(sync_q) -> None:
    _, out = sync_q
    art = load_artifact(out, kind="export")
    assert art.manifest["precision"] == "int8"
    quantized = art.manifest["quantized"]
    assert list(quantized) == ["video_encoder", "audio_encoder", "fusion_head"]
    for name, q in quantized.items():
        assert q["file"] == f"{name}.int8.onnx" and q["file"] in art.files and (out / q["file"]).is_file()
        assert q["weight_type"] == "QInt8" and {c["batch"] for c in q["checks"]} == {3, 1}
        assert np.isfinite(q["max_abs_diff"])
    # The Linear layers are int8; the convolutional encoders have none (they stay fp32, as in PyTorch's scheme).
    assert quantized["fusion_head"]["int8_matmuls"] > 0
    assert quantized["video_encoder"]["int8_matmuls"] == quantized["audio_encoder"]["int8_matmuls"] == 0
    # int8 really differs from fp32 (it is not a copy), and is recorded, not held to the fp32 tolerance.
    assert quantized["fusion_head"]["max_abs_diff"] > art.manifest["graphs"]["fusion_head"]["max_abs_diff"]
    assert 0 < art.metrics["int8_max_abs_diff"]["composed"] < 0.2
    assert load_export(out).model.precision == "int8"


def test_the_onnx_module_has_the_evaluators_interface_and_matches_pytorch(sync_q, features) -> None:
    model_path, out = sync_q
    net = load_model(model_path).model
    onnx = load_inference_model(out, precision="fp32")
    assert isinstance(onnx.model, OnnxSyncModel) and onnx.artifact.kind == "export"
    assert onnx.spec.name == "vocalist_lite"
    assert count_parameters(onnx.model) == count_parameters(net) > 0
    video, mel = real_windows(features, 5, seed=3)
    with torch.no_grad():
        v, a = net.encode_video(video), net.encode_audio(mel)
        ref = net(video, mel)
    got_v, got_a = onnx.model.encode_video(video), onnx.model.encode_audio(mel)
    assert isinstance(got_v, torch.Tensor) and got_v.shape == v.shape
    torch.testing.assert_close(got_v, v, atol=1e-4, rtol=0)
    torch.testing.assert_close(got_a, a, atol=1e-4, rtol=0)
    torch.testing.assert_close(onnx.model.fuse(v, a), ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(onnx.model(video, mel), ref, atol=1e-4, rtol=0)
    int8 = load_export(out, precision="int8").model(video, mel)
    assert 0 < float((int8 - ref).abs().max()) < 0.2


def test_evaluate_on_an_export_gives_the_models_scores_and_names_the_export(
    sync_q, features, tmp_path, capsys
) -> None:
    model_path, out = sync_q
    common = ["--data", str(features.path), "--limit", "1", "--save-scores", "--frames", "5,9"]
    assert (
        main(
            ["evaluate", "--model", str(out), "--precision", "fp32", "--out", str(tmp_path / "e32"), *common]
        )
        == 0
    )
    assert main(["evaluate", "--model", str(out), "--out", str(tmp_path / "e8"), *common]) == 0
    capsys.readouterr()
    e32, _e8 = (load_artifact(tmp_path / n, kind="evaluation") for n in ("e32", "e8"))
    export = load_artifact(out)
    named = next(i for i in e32.manifest["inputs"] if i["kind"] == "export")
    assert named["id"] == export.id and Path(named["path"]) == out
    summary = json.loads((tmp_path / "e32" / "accuracy.json").read_text())
    assert summary["model"] == {"id": export.id, "kind": "export"}
    assert (summary["runtime"], summary["precision"]) == ("onnxruntime", "fp32")
    assert json.loads((tmp_path / "e8" / "accuracy.json").read_text())["precision"] == "int8"  # the default
    assert summary["parameters"] == count_parameters(load_model(model_path).model)
    # The same clip scored by PyTorch through the same evaluator function.
    store = FeatureStore(features)
    key = store.keys("test")[0]
    crops, mel = store.frames(key), store.mel(key)
    store.close()
    scores32 = np.load(tmp_path / "e32" / "scores.npz")
    (name,) = scores32.files
    assert name == key
    ref = score_clip(load_model(model_path).model, crops, mel)
    np.testing.assert_allclose(scores32[name], ref, atol=1e-4, rtol=0)
    scores8 = np.load(tmp_path / "e8" / "scores.npz")[name]
    assert np.isnan(scores8).sum() == np.isnan(scores32[name]).sum()
    assert 0 < np.nanmax(np.abs(scores8 - scores32[name])) < 0.2
    # The report finds the model behind the export (its config, its parameter count) for both rows.
    runs = load_evaluations([tmp_path / "e32", tmp_path / "e8"])
    assert [r.model_id for _, r in runs] == [load_artifact(model_path).id] * 2
    assert all(r.model_status == "ok" for _, r in runs)


def test_sync_video_on_an_export_gives_the_models_offset(sync_q, tmp_path) -> None:
    model_path, out = sync_q
    video = tmp_path / "clip.mp4"
    write_utterance(video, seed=5, seconds=1.6, style=speaker_style(1), audio_shift_frames=3)
    torch_run = sync_video(video, model_path, detector="fixed")
    onnx_run = sync_video(video, out, detector="fixed", precision="fp32")
    assert (torch_run.runtime, onnx_run.to_json()["runtime"]) == ("pytorch", "onnxruntime fp32")
    torch_result, onnx_result = torch_run.estimate, onnx_run.estimate
    assert onnx_result.offset_frames == torch_result.offset_frames
    assert onnx_result.windows == torch_result.windows > 0
    np.testing.assert_allclose(onnx_result.curve, torch_result.curve, atol=1e-4, rtol=0)
    assert abs(onnx_result.confidence - torch_result.confidence) < 1e-4


def test_an_export_is_refused_where_it_does_not_fit(sync_q, tmp_path) -> None:
    model_path, out = sync_q
    with pytest.raises(UsageError, match="another task's export"):
        load_inference_model(out, inputs=("text", "audio", "vision"))
    with pytest.raises(UsageError, match="needs an export artifact"):
        load_inference_model(model_path, precision="int8")
    with pytest.raises(UsageError, match="choose fp32 or int8"):
        load_export(out, precision="fp16")
    with pytest.raises(UsageError, match="fixed at the traced"):
        load_export(out, precision="fp32").model.encode_video(torch.zeros(1, 15, 48, 48))


def test_bench_of_a_sync_export_scores_one_window_as_the_evaluator_does(sync_q, tmp_path) -> None:
    """(avkd.models.bench on the sync export built above, so as not to export the model twice.)"""
    config = BenchConfig(threads=[1], warmup=0, repeats=1)
    bench_models([sync_q[1]], tmp_path / "b", config, labels=["student"])
    (m,) = json.loads((tmp_path / "b" / "bench.json").read_text())["models"]
    assert m["workloads"]["window"]["batch"] == 31 and m["workloads"]["batch1"]["batch"] == 1
    # One window: the video encoded once, 31 audio windows and 31 fusions; more than one pair, less than 31 pairs.
    assert m["gmacs"]["batch1"] < m["gmacs"]["window"] < 31 * m["gmacs"]["batch1"]
    rows = {(r["backend"], r["precision"], r["workload"]): r for r in m["rows"]}
    assert len(rows) == 8 and all(r["model"] == "student" for r in rows.values())
    assert rows[("onnxruntime", "fp32", "window")]["max_abs_diff_vs_fp32"] < 1e-4
    assert rows[("onnxruntime", "int8", "window")]["max_abs_diff_vs_fp32"] > 0
