"""``avkd export`` (issue 17, part 1): ONNX graphs that run in ONNX Runtime and match PyTorch, on real inputs.

Tiny models built and saved as artifacts directly (weights need not be trained for a parity check); each export
runs once per module (the dynamo exporter takes ~10 s a graph on 2 cores).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from avkd.cli.main import main  # noqa: E402
from avkd.core.artifacts import load_artifact  # noqa: E402
from avkd.data.lrs2.dataset import SyncDataset, SyncSamplingConfig  # noqa: E402
from avkd.data.lrs2.store import FeatureStore  # noqa: E402
from avkd.data.mosei.dataset import MoseiDataset  # noqa: E402
from avkd.data.mosei.ingest import ingest_mosei  # noqa: E402
from avkd.data.mosei.synthetic import synthesize_mosei  # noqa: E402
from avkd.models import build_model  # noqa: E402
from avkd.models.export import ExportConfig, ExportError, export_model  # noqa: E402
from avkd.models.io import ModelSpec, import_checkpoint, load_model  # noqa: E402
from tests.tasks.emotion.conftest import SHORT  # noqa: E402

SYNC = {"width": 16, "channels": [4, 4, 8, 8, 16]}
MULT = {"d": 10, "layers": 1}


def make_model(root: Path, name: str, kwargs: dict, seed: int = 0) -> Path:
    """A model artifact of ``name(**kwargs)`` with seeded random weights (through ``avkd import``'s library)."""
    torch.manual_seed(seed)
    model = build_model(name, **kwargs)
    if name.startswith("vocalist"):
        # Non-trivial BN statistics, so the exported eval-mode BN is really checked.
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    root.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict()}, root / "weights.pt")
    import_checkpoint(root / "weights.pt", root / "model", ModelSpec(name, kwargs))
    return root / "model"


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def sync_export(features, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sync-export")
    model = make_model(root, "vocalist_lite", SYNC)
    export_model(model, root / "export", ExportConfig(split="test"), data=features.path)
    return model, root / "export"


@pytest.fixture(scope="module")
def mosei_feats(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mosei-export")
    synthesize_mosei(root / "csd")
    return ingest_mosei(SHORT, root / "csd", root / "feats").path


def real_windows(features, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    store = FeatureStore(features.path)
    dataset = SyncDataset(store, "test", SyncSamplingConfig(frames=5), samples=n, seed=seed)
    rows = [dataset[i] for i in range(n)]
    return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])


def test_sync_export_manifest_records_graphs_checks_and_lineage(sync_export, features) -> None:
    model, out = sync_export
    art = load_artifact(out, kind="export")
    assert [i["kind"] for i in art.manifest["inputs"]] == ["model", "lrs2-features"]
    assert art.manifest["inputs"][0]["id"] == load_artifact(model).id
    assert art.metrics["inputs"] == "features" and art.config["inputs"] == "features"
    graphs = art.manifest["graphs"]
    assert list(graphs) == ["video_encoder", "audio_encoder", "fusion_head"]
    for name, g in graphs.items():
        assert (out / g["file"]).is_file() and g["file"] in art.files
        assert g["exporter"] in ("dynamo", "torchscript") and g["attention"] in ("sdpa", "math")
        assert g["traced_batch"] == 2
        assert {c["batch"] for c in g["checks"]} == {3, 1}
        assert g["max_abs_diff"] <= g["tolerance"], name
        assert art.metrics["max_abs_diff"][name] == g["max_abs_diff"]
    assert graphs["video_encoder"]["input_shapes"]["video"] == [2, 15, 48, 96]
    assert graphs["audio_encoder"]["input_shapes"]["mel"] == [2, 1, 80, 16]
    assert art.metrics["max_abs_diff"]["composed"] <= 1e-4
    assert art.manifest["task"] == "sync"


def test_sync_graphs_match_pytorch_at_another_batch_and_compose_to_the_logits(sync_export, features) -> None:
    model_path, out = sync_export
    net = load_model(model_path).model
    video, mel = real_windows(features, 5, seed=11)  # batch 5: neither the traced 2 nor the checked 3 / 1
    with torch.no_grad():
        v_ref, a_ref = net.encode_video(video), net.encode_audio(mel)
        logits = net(video, mel)
        fused = net.fuse(v_ref, a_ref)
    v = session(out / "video_encoder.onnx").run(None, {"video": video.numpy()})[0]
    a = session(out / "audio_encoder.onnx").run(None, {"mel": mel.numpy()})[0]
    assert v.shape == (5, 5, 16) and a.shape == (16, 5, 16)  # (T, B, D)
    np.testing.assert_allclose(v, v_ref.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(a, a_ref.numpy(), atol=1e-4, rtol=0)
    head = session(out / "fusion_head.onnx")
    np.testing.assert_allclose(
        head.run(None, {"v_emb": v_ref.numpy(), "a_emb": a_ref.numpy()})[0], fused.numpy(), atol=1e-4, rtol=0
    )
    composed = head.run(None, {"v_emb": v, "a_emb": a})[0]
    assert composed.shape == (5,)
    np.testing.assert_allclose(composed, logits.numpy(), atol=1e-4, rtol=0)
    # One video window against 7 audio candidates, as the evaluator scores them: encode once, fuse many.
    many = head.run(None, {"v_emb": np.repeat(v[:, :1], 7, axis=1), "a_emb": np.repeat(a[:, :1], 7, axis=1)})[
        0
    ]
    np.testing.assert_allclose(many, np.full(7, composed[0]), atol=1e-5, rtol=0)


def test_mult_export_through_the_cli_matches_pytorch(mosei_feats, tmp_path, capsys) -> None:
    model = make_model(tmp_path, "mult", MULT)
    code = main(["export", str(model), "--format", "onnx", "--out", str(tmp_path / "e"), "--data", str(mosei_feats), "--json"])  # fmt: skip
    assert code == 0
    result = json.loads(
        capsys.readouterr().out
    )  # --json: stdout is the one JSON object, exporter noise aside
    art = load_artifact(tmp_path / "e", kind="export")
    assert result["id"] == art.id and result["metrics"]["inputs"] == "features"
    assert [i["kind"] for i in art.manifest["inputs"]] == ["model", "mosei-features"]
    g = art.manifest["graphs"]["model"]
    assert g["inputs"] == ["text", "audio", "vision"]
    assert g["input_shapes"] == {"text": [2, 4, 300], "audio": [2, 40, 74], "vision": [2, 40, 35]}
    assert set(g["fixed_axes"]) == {"text", "audio", "vision"}  # the lengths are not dynamic: said so
    assert g["max_abs_diff"] <= 1e-4
    dataset = MoseiDataset(mosei_feats, "test")
    rows = [dataset[i] for i in range(min(5, len(dataset)))]
    text, audio, vision = (torch.stack([r[i] for r in rows]) for i in range(3))
    with torch.no_grad():
        ref = load_model(model).model(text, audio, vision)
    got = session(tmp_path / "e" / "model.onnx").run(
        None, {"text": text.numpy(), "audio": audio.numpy(), "vision": vision.numpy()}
    )[0]
    assert got.shape == (len(rows), 7) and len(rows) not in (2,)
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-4, rtol=0)


def test_a_graph_above_the_tolerance_fails_and_commits_nothing(tmp_path) -> None:
    model = make_model(tmp_path, "mult_student", {"d": 10, "layers": 1, "config": 2})
    config = ExportConfig(atol=1e-15, exporter="torchscript")  # TorchScript: the fast exporter, same check
    with pytest.raises(ExportError, match="above the tolerance") as info:
        export_model(model, tmp_path / "e", config)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "e").exists()


def test_a_bad_model_path_is_one_line_and_a_failing_exit_code(tmp_path, capsys) -> None:
    code = main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("error: ") and "nope" in err
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("package", ["onnx", "onnxruntime"])
def test_a_missing_runtime_package_is_named_in_one_line(package, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, package, None)  # makes `import package` raise ImportError
    code = main(["export", str(tmp_path / "m"), "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and f"'{package}'" in err and "avkd[export]" in err


def test_unknown_format_is_a_usage_error(tmp_path, capsys) -> None:
    code = main(["export", str(tmp_path / "m"), "--format", "tflite", "--out", str(tmp_path / "e")])
    assert code == 2
    assert "tflite" in capsys.readouterr().err


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    """The video-only EDAM-S student (config 5), the model that is meant to ship."""
    return make_model(tmp_path_factory.mktemp("student"), "mult_student", {"d": 10, "layers": 1, "config": 5})


def mosei_rows(features: Path, n: int) -> tuple[torch.Tensor, ...]:
    dataset = MoseiDataset(features, "test")
    rows = [dataset[i] for i in range(min(n, len(dataset)))]
    return tuple(torch.stack([r[i] for r in rows]) for i in range(3))


def test_the_video_only_student_exports_one_vision_graph(student, mosei_feats, tmp_path) -> None:
    art = export_model(student, tmp_path / "e", ExportConfig(), data=mosei_feats)
    g = art.manifest["graphs"]["model"]
    assert g["inputs"] == ["vision"] and g["exporter"] == "dynamo" and g["fallbacks"] == []
    _, _, vision = mosei_rows(mosei_feats, 4)
    with torch.no_grad():
        ref = load_model(student).model(vision=vision)
    got = session(tmp_path / "e" / "model.onnx").run(None, {"vision": vision.numpy()})[0]
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-4, rtol=0)


def test_a_failing_dynamo_export_falls_back_to_torchscript_and_says_so(
    student, tmp_path, monkeypatch
) -> None:
    from avkd.models import export as export_module

    real = export_module._onnx_export

    def no_dynamo(spec, args, path, dynamo, opset):
        if dynamo:
            raise RuntimeError("simulated dynamo failure")
        return real(spec, args, path, dynamo, opset)

    monkeypatch.setattr(export_module, "_onnx_export", no_dynamo)
    art = export_model(student, tmp_path / "e", ExportConfig(attention="sdpa"))
    g = art.manifest["graphs"]["model"]
    assert g["exporter"] == "torchscript" and g["attention"] == "sdpa"
    assert g["fallbacks"] == ["dynamo/sdpa: RuntimeError: simulated dynamo failure"]
    assert art.metrics["inputs"] == "random" and g["input_shapes"] == {"vision": [2, 500, 35]}
    assert g["max_abs_diff"] <= 1e-4
