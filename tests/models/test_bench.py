"""``avkd bench`` and the emotion side of running exports (issue 17, parts 2 and 3), on the video-only MulT
student: its quantised export evaluated by the emotion evaluator (fp32 = the model's metrics), benched against
PyTorch, and the bench shown by ``avkd report`` beside the evaluations. No timing thresholds: the rows' shape,
their order statistics and their outputs against PyTorch fp32 are checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from avkd.cli.main import main
from avkd.core.artifacts import load_artifact
from avkd.core.errors import UsageError
from avkd.data.mosei.ingest import ingest_mosei
from avkd.data.mosei.synthetic import synthesize_mosei
from avkd.models.bench import BenchConfig, bench_models, time_call
from avkd.models.export import ExportConfig, export_model
from tests.models.test_export import make_model
from tests.tasks.emotion.conftest import SHORT

STUDENT = {"d": 10, "layers": 1, "config": 5}
QUICK = BenchConfig(threads=[1], warmup=0, repeats=2, exporter="torchscript")


@pytest.fixture(scope="module")
def mosei_feats(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mosei-bench")
    synthesize_mosei(root / "csd")
    return ingest_mosei(SHORT, root / "csd", root / "feats").path


@pytest.fixture(scope="module")
def student_q(mosei_feats, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("student-q")
    model = make_model(root, "mult_student", STUDENT)
    config = ExportConfig(quantize="dynamic", exporter="torchscript")
    export_model(model, root / "export", config, data=mosei_feats)
    return model, root / "export"


@pytest.fixture(scope="module")
def evaluations(student_q, mosei_feats, tmp_path_factory) -> dict[str, Path]:
    model, export = student_q
    root = tmp_path_factory.mktemp("student-evals")
    runs = {"model": [str(model)], "fp32": [str(export), "--precision", "fp32"], "int8": [str(export)]}
    for name, args in runs.items():
        code = main(["evaluate", "--task", "emotion", "--model", *args, "--data", str(mosei_feats), "--out",
                     str(root / name), "--label", name])  # fmt: skip
        assert code == 0
    return {name: root / name for name in runs}


def test_the_emotion_evaluator_on_an_export_gives_the_models_metrics(evaluations, student_q) -> None:
    metrics = {n: json.loads((p / "metrics.json").read_text()) for n, p in evaluations.items()}
    for key in ("acc7", "f1_weighted", "acc2", "predicted_histogram", "parameters"):
        assert metrics["fp32"][key] == metrics["model"][key], key
    assert metrics["fp32"]["mae"] == pytest.approx(metrics["model"]["mae"], abs=1e-5)
    assert (metrics["fp32"]["precision"], metrics["int8"]["precision"]) == ("fp32", "int8")
    assert "precision" not in metrics["model"]  # a PyTorch evaluation's results are as before
    export = load_artifact(student_q[1])
    art = load_artifact(evaluations["int8"], kind="evaluation")
    assert [i["kind"] for i in art.manifest["inputs"]] == ["mosei-features", "export"]
    assert art.manifest["inputs"][1]["id"] == export.id and art.metrics["precision"] == "int8"
    q = export.manifest["quantized"]["model"]
    assert q["int8_matmuls"] > 0 and 0 < q["max_abs_diff"] < 0.5


def test_bench_of_an_export_times_every_backend_and_counts_its_size(student_q, tmp_path) -> None:
    model, export = student_q
    art = bench_models([export], tmp_path / "b", QUICK)
    assert art.kind == "bench" and [i["kind"] for i in art.manifest["inputs"]] == ["export", "model"]
    payload = json.loads((tmp_path / "b" / "bench.json").read_text())
    (m,) = payload["models"]
    assert (
        len(payload["machine"]["load_average"]) == 2
        and "load average" in (tmp_path / "b" / "bench.md").read_text()
    )
    assert m["task"] == "emotion" and m["parameters"] == load_artifact(model).metrics["parameters"]
    assert m["weights_bytes"] > 0 and m["onnx_bytes"]["fp32"] > 0 and m["onnx_bytes"]["int8"] > 0
    assert 0 < m["gmacs"]["batch1"] < m["gmacs"]["batch31"]
    assert m["gmacs"]["batch31"] == pytest.approx(31 * m["gmacs"]["batch1"], rel=0.01)  # per-segment cost
    keys = {(r["backend"], r["precision"], r["workload"]) for r in m["rows"]}
    backends = {("pytorch", "fp32"), ("pytorch", "int8"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")}
    assert keys == {(b, p, w) for b, p in backends for w in ("batch1", "batch31")}
    for row in m["rows"]:
        assert row["threads"] == 1 and row["repeats"] == 2
        assert 0 < row["min_ms"] <= row["p50_ms"] <= row["p90_ms"]
        assert row["throughput_per_s"] == pytest.approx(row["batch"] * 1000 / row["mean_ms"])
        exact = (row["backend"], row["precision"]) in {("pytorch", "fp32"), ("onnxruntime", "fp32")}
        assert row["max_abs_diff_vs_fp32"] < (1e-4 if exact else 0.5)
    assert all(
        r["max_abs_diff_vs_fp32"] > 0
        for r in m["rows"]
        if r["backend"] == "onnxruntime" and r["precision"] == "int8"
    )
    table = (tmp_path / "b" / "bench.md").read_text()
    assert "| export | onnxruntime | int8 | cpu |" in table and "batch31 p50 ms (1 thr)" in table


def test_report_shows_the_bench_beside_the_evaluations(evaluations, student_q, tmp_path, capsys) -> None:
    bench_models([student_q[1]], tmp_path / "b", QUICK)
    paths = [str(evaluations[n]) for n in ("model", "fp32", "int8")] + [str(tmp_path / "b")]
    assert main(["report", "--out", str(tmp_path / "r"), *paths]) == 0
    text = capsys.readouterr().out
    report = load_artifact(tmp_path / "r", kind="report")
    assert [i["kind"] for i in report.manifest["inputs"]] == ["evaluation"] * 3 + ["bench"]
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Speed (avkd bench)" in md and "| export | pytorch | int8 | cpu |" in md
    assert md.index("| int8 |") < md.index("## Speed")  # the accuracy rows, then the speed table
    payload = json.loads((tmp_path / "r" / "report.json").read_text())
    assert payload["bench"][0]["models"][0]["model"] == "export"
    # The export rows describe the model the export was made from (its id, its method), as the PyTorch row does.
    model_id = load_artifact(student_q[0]).id
    assert [r["model_id"] for r in payload["runs"]] == [model_id] * 3
    assert "int8" in text


def test_time_call_orders_its_statistics() -> None:
    calls = []
    stats = time_call(lambda: calls.append(1), warmup=2, repeats=5)
    assert len(calls) == 7 and stats["repeats"] == 5
    assert 0 <= stats["min_ms"] <= stats["p50_ms"] <= stats["p90_ms"]
    assert np.isfinite(stats["mean_ms"])


def test_bad_bench_input_is_one_line(tmp_path, capsys) -> None:
    with pytest.raises(UsageError, match="not a registered model"):
        bench_models([tmp_path / "nope"], tmp_path / "b", QUICK)
    code = main(["bench", "no-such-model", "--out", str(tmp_path / "b"), "--threads", "1,x"])
    err = capsys.readouterr().err
    assert code == 2 and "1,x" in err
    assert not (tmp_path / "b").exists()
