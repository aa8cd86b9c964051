"""``avkd report``: tables, JSON and figures from hand-made evaluation and model artifacts (no training)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from avkd.core.artifacts import Artifact, ArtifactWriter, load_artifact, register_kind
from avkd.core.errors import ArtifactError, UsageError
from avkd.report.figures import layer_runs
from avkd.report.published import PUBLISHED
from avkd.report.runs import Run, RunMean, load_runs, table_rows
from avkd.report.sync import build_sync_report
from avkd.report.tables import table_markdown

register_kind("evaluation", 1)
register_kind("model", 1)
register_kind("lrs2-features", 1)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STUDENT = 13_280_961


def make_features(root: Path) -> Artifact:
    with ArtifactWriter(root / "feats", "lrs2-features", {"fake": True}) as writer:
        (writer.path("index.json")).write_text("{}\n")
        return writer.commit()


def make_model(
    root: Path,
    name: str,
    config: dict[str, Any],
    parameters: int = STUDENT,
    history: list[dict[str, Any]] | None = None,
) -> Artifact:
    """A model artifact as the trainers leave it: config, parameter count, ``metrics.jsonl``."""
    with ArtifactWriter(root / name, "model", config) as writer:
        writer.path("model.pt").write_bytes(b"not really weights")
        if history is not None:
            writer.path("metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
        return writer.commit(metrics={"parameters": parameters}, logs="metrics.jsonl")


def make_eval(
    root: Path,
    name: str,
    label: str,
    model: Artifact,
    accuracy: dict[int, float | None],
    features: Artifact,
    parameters: int = STUDENT,
    split: str = "test",
) -> Artifact:
    """An evaluation artifact in the layout of ``avkd.tasks.sync.evaluate``."""
    frames = sorted(accuracy)
    config = {"split": split, "frames": frames, "tolerance": 1, "limit": None}
    with ArtifactWriter(root / name, "evaluation", config, inputs=[features, model]) as writer:
        summary = {
            "label": label,
            "model": model.ref(),
            "parameters": parameters,
            "protocol": {"candidates": 31, "tolerance_frames": 1},
            "frames": frames,
            "accuracy": {str(k): v for k, v in accuracy.items()},
            "clips_evaluated": 12,
            "skipped": [],
        }
        writer.path("accuracy.json").write_text(json.dumps(summary, indent=2) + "\n")
        metrics = {
            "accuracy": summary["accuracy"],
            "clips": 12,
            "skipped": 0,
            "parameters": parameters,
        }
        return writer.commit(metrics=metrics, label=label)


def student(method: str, weighting: str = "uniform", layers: str = "all", seed: int = 0) -> dict[str, Any]:
    return {
        "model": {"name": "vocalist", "width": 200},
        "loop": {"epochs": 3, "seed": seed},
        "method": method,
        "weighting": weighting,
        "layers": layers,
    }


HISTORY = [
    {"epoch": 1, "train_loss": 1.0, "val_f1": 0.6, "val/mtd": 4.0, "val/last_mtd": 2.0, "val/fitnets": 0.5},
    {"epoch": 2, "train_loss": 0.8, "val_f1": 0.7, "val/mtd": 2.0, "val/last_mtd": 1.5, "val/fitnets": 0.4},
    {"epoch": 3, "train_loss": 0.7, "val_f1": 0.8, "val/mtd": 1.0, "val/last_mtd": 0.5, "val/fitnets": 0.45},
]


@pytest.fixture
def evals(tmp_path: Path) -> dict[str, Artifact]:
    """BCE, KD (evaluated at fewer K) and MTD (with validation monitor losses), plus two layer variants."""
    feats = make_features(tmp_path)
    bce = make_model(tmp_path, "m_bce", student("bce"))
    kd = make_model(tmp_path, "m_kd", student("kd"))
    mtd = make_model(tmp_path, "m_mtd", student("mtd", "uw25", "all"), history=HISTORY)
    f4 = make_model(tmp_path, "m_f4", student("nmtd", "uniform", "fusion4"))
    return {
        "bce": make_eval(tmp_path, "e_bce", "BCE", bce, {5: 0.3722, 7: 0.5, 9: 0.61255, 15: 0.9}, feats),
        "kd": make_eval(tmp_path, "e_kd", "KD", kd, {5: 0.4, 9: None}, feats),
        "mtd": make_eval(tmp_path, "e_mtd", "MTD", mtd, {5: 0.9146, 7: 0.9574, 9: 0.98, 15: 0.9968}, feats),
        "f4": make_eval(tmp_path, "e_f4", "nmtd-f4", f4, {5: 0.8, 7: 0.9}, feats),
    }


def read_png(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    from PIL import Image

    with Image.open(path) as image:
        image.verify()
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(pixels[..., :3].std()) > 0.01, f"{path} is blank"
    return pixels.shape[1], pixels.shape[0]


def test_table_rows_columns_and_ids(evals: dict[str, Artifact]) -> None:
    runs = load_runs([evals["bce"].path, evals["kd"].path, evals["mtd"].path])
    assert [r.label for r in runs] == ["BCE", "KD", "MTD"]
    frames = sorted({k for r in runs for k in r.accuracy})
    assert frames == [5, 7, 9, 15]
    lines = table_markdown(runs, frames).splitlines()
    assert lines[0] == (
        "| run | K5 | K7 | K9 | K15 | params (M) | GMACs/window | windows/s | clips | evaluation | model |"
    )
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert cells[0][:9] == ["BCE", "37.22", "50.00", "61.26", "90.00", "13.28", "–", "–", "12"]
    assert cells[1][:5] == ["KD", "40.00", "–", "–", "–"]  # K7/K15 not evaluated, K9 NaN
    assert cells[2][:5] == ["MTD", "91.46", "95.74", "98.00", "99.68"]
    for row, name in zip(cells, ["bce", "kd", "mtd"], strict=True):
        art = evals[name]
        model_id = json.loads((art.path / "accuracy.json").read_text())["model"]["id"]
        assert row[9] == f"`{art.id}`" and row[10] == f"`{model_id}`"
    assert runs[2].history == HISTORY and runs[2].config["method"] == "mtd"


def test_report_artifact_json_markdown_and_pngs(evals: dict[str, Artifact], tmp_path: Path) -> None:
    order = ["bce", "kd", "mtd", "f4"]
    art = build_sync_report([evals[n].path for n in order], tmp_path / "report", title="Fake runs")
    assert load_artifact(art.path, kind="report").id == art.id
    assert [i["id"] for i in art.manifest["inputs"]] == [evals[n].id for n in order]
    report = json.loads((art.path / "report.json").read_text())
    runs = [Run.from_json(r) for r in report["runs"]]
    assert runs == load_runs([evals[n].path for n in order])
    assert [r.to_json() for r in runs] == report["runs"]
    assert report["frames"] == [5, 7, 9, 15] and report["title"] == "Fake runs"
    assert [p["name"] for p in report["published"]] == [p["name"] for p in PUBLISHED]
    assert report["published"][-1]["accuracy"]["5"] == 91.46

    md = (art.path / "report.md").read_text()
    assert md.startswith("# Fake runs")
    assert "| SyncNet (published, LRS2) | 13.6 | 75.8 |" in md
    assert "| MTDVocaLiST (published, LRS2) | 13.28 | 91.46 |" in md
    assert "| AVST (published, LRS2) | 42.4 | 92.0 | 95.5 |" in md
    assert md.index("## Runs") < md.index("## Published") < md.index("| SyncNet")
    for name in order:
        assert evals[name].id in md

    figures = report["figures"]
    assert figures == {
        "accuracy_vs_frames": "accuracy_vs_frames.png",
        "size_vs_accuracy": "size_vs_accuracy.png",
        "layers": "layers.png",  # MTD (uw25, all layers) and F4: two layer/weighting variants
        "loss_ratio": "loss_ratio.png",
    }
    for file in filter(None, figures.values()):
        assert file in art.files and f"({file})" in md
        width, height = read_png(art.path / file)
        assert width > 300 and height > 200
    assert [r.variant for r in layer_runs(runs)] == ["BCE", "F4", "UW-25D"]  # paper order, KD left out
    ratios = report["loss_ratio"][evals["mtd"].id]
    assert ratios["val/mtd"] == [[1, 1.0], [2, 0.5], [3, 0.25]]


def test_layers_figure_and_missing_model(tmp_path: Path) -> None:
    feats = make_features(tmp_path)
    variants = [
        ("bce", student("bce"), 0.71),
        ("f4", student("nmtd", "uniform", "fusion4"), 0.85),
        ("av1", student("nmtd", "uniform", "av1"), 0.84),
        ("va1", student("nmtd", "uniform", "va1"), 0.80),
        ("uw25", student("mtd", "uw25", "all"), 0.9145),
    ]
    paths = []
    for name, config, acc in variants:
        model = make_model(tmp_path, f"m_{name}", config)
        paths.append(make_eval(tmp_path, f"e_{name}", name, model, {5: acc}, feats).path)
    shutil.rmtree(tmp_path / "m_va1")  # moved away after evaluation
    runs = load_runs(paths)
    assert [r.variant for r in runs] == ["BCE", "F4", "AV1", "va1", "UW-25D"]
    assert runs[3].model_status == "missing" and runs[3].config is None and runs[3].model_id
    art = build_sync_report(paths, tmp_path / "report")
    md = (art.path / "report.md").read_text()
    assert "(missing)" in md and "va1: model artifact" in md
    assert "loss_ratio.png (Fig. 4) not drawn" in md
    assert art.metrics["figures"] == ["accuracy_vs_frames", "layers", "size_vs_accuracy"]
    read_png(art.path / "layers.png")


def test_replaced_model_is_not_read(evals: dict[str, Artifact], tmp_path: Path) -> None:
    """A model retrained in place after the evaluation: the row keeps the evaluated id, the new logs are ignored."""
    summary = json.loads((evals["mtd"].path / "accuracy.json").read_text())
    (model_path,) = [i["path"] for i in evals["mtd"].manifest["inputs"] if i["kind"] == "model"]
    with ArtifactWriter(model_path, "model", student("kd"), overwrite=True) as writer:
        writer.path("model.pt").write_bytes(b"other weights")
        new = writer.commit(metrics={"parameters": STUDENT})
    (run,) = load_runs([evals["mtd"].path])
    assert run.model_id == summary["model"]["id"] != new.id
    assert run.model_status == f"changed (now {new.id})" and run.config is None and run.history == []
    assert run.variant == "MTD"  # the evaluation's label


def test_errors(evals: dict[str, Artifact], tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        build_sync_report([], tmp_path / "r")
    (model_path,) = [Path(i["path"]) for i in evals["bce"].manifest["inputs"] if i["kind"] == "model"]
    with pytest.raises(ArtifactError, match=r"m_bce: is a 'model' artifact, expected 'evaluation'"):
        build_sync_report([evals["bce"].path, model_path], tmp_path / "r")
    assert not (tmp_path / "r").exists()
    build_sync_report([evals["bce"].path], tmp_path / "r")
    with pytest.raises(ArtifactError, match="already exists"):
        build_sync_report([evals["bce"].path], tmp_path / "r")
    build_sync_report([evals["bce"].path], tmp_path / "r", overwrite=True)


def test_cli(evals: dict[str, Artifact], tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from avkd.cli.report import report

    app = typer.Typer()
    app.command()(report)
    app.command("noop")(lambda: None)  # two commands, so "report" is a subcommand as in avkd's app
    runner = CliRunner()
    out = tmp_path / "rep"
    result = runner.invoke(
        app, ["report", str(evals["bce"].path), str(evals["mtd"].path), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["path"] == str(out) and data["id"] == load_artifact(out).id
    assert [r["label"] for r in data["runs"]] == ["BCE", "MTD"]
    assert data["metrics"]["figures"] == ["accuracy_vs_frames", "loss_ratio", "size_vs_accuracy"]
    assert "layers.png (Fig. 3) not drawn" in (out / "report.md").read_text()  # one variant is no layer study
    result = runner.invoke(app, ["report", str(evals["kd"].path), "--out", str(tmp_path / "rep2")])
    assert result.exit_code == 0 and "| KD | 40.00 |" in result.stdout


def test_seeds_sharing_a_label_are_one_row_of_mean_and_sd(tmp_path: Path) -> None:
    """Three MTD seeds and two F4 seeds become one row each (mean ± sample sd, n per K); BCE, seen once, stays
    a plain row; every single run stays in report.json beside the aggregates."""
    feats = make_features(tmp_path)
    mtd = [(0, {5: 0.40, 7: 0.50, 9: 0.9}), (1, {5: 0.42, 7: 0.60, 9: 0.9}), (2, {5: 0.44, 7: None, 9: 0.9})]
    paths = []
    for seed, acc in mtd:
        model = make_model(tmp_path, f"m_mtd{seed}", student("mtd", "uw25", seed=seed), history=HISTORY)
        paths.append(make_eval(tmp_path, f"e_mtd{seed}", "MTD", model, acc, feats).path)
    bce = make_model(tmp_path, "m_bce", student("bce"))
    paths.insert(1, make_eval(tmp_path, "e_bce", "BCE", bce, {5: 0.3722, 7: 0.5, 9: 0.61255}, feats).path)
    for seed, k5 in ((3, 0.80), (4, 0.86)):
        model = make_model(tmp_path, f"m_f4{seed}", student("nmtd", "uniform", "fusion4", seed=seed))
        paths.append(make_eval(tmp_path, f"e_f4{seed}", "F4", model, {5: k5, 7: 0.9, 9: 0.95}, feats).path)
    art = build_sync_report(paths, tmp_path / "report")
    ids = [load_artifact(p).id for p in paths]
    md = (art.path / "report.md").read_text()
    # MTD K5: 0.40, 0.42, 0.44 -> mean 42.00, sd sqrt((0.02² + 0 + 0.02²) / 2) = 2.00; K7: 0.5, 0.6 (the third
    # is NaN) -> 55.00 ± sqrt(2 · 0.05²) = 7.07 (n=2); K9: 90.00 ± 0.00. F4 K5: 0.80, 0.86 -> 83.00 ± 4.24.
    assert "| MTD | 42.00 ± 2.00 (n=3) | 55.00 ± 7.07 (n=2) | 90.00 ± 0.00 (n=3) | 13.28 | – | 12 |" in md
    assert "| BCE | 37.22 | 50.00 | 61.26 | 13.28 | – | 12 |" in md
    assert "| F4 | 83.00 ± 4.24 (n=2) | 90.00 ± 0.00 (n=2) | 95.00 ± 0.00 (n=2) |" in md
    assert md.index("| MTD |") < md.index("| BCE |") < md.index("| F4 |")  # first-seen order
    mtd_row = next(line for line in md.splitlines() if line.startswith("| MTD |"))
    assert all(f"`{ids[i]}`" in mtd_row for i in (0, 2, 3))

    report = json.loads((art.path / "report.json").read_text())
    assert [r["label"] for r in report["runs"]] == ["MTD", "BCE", "MTD", "MTD", "F4", "F4"]
    assert [r["eval_id"] for r in report["runs"]] == ids
    mtd_mean, f4_mean = report["aggregates"]
    assert (mtd_mean["label"], mtd_mean["n"], mtd_mean["seeds"]) == ("MTD", 3, [0, 1, 2])
    assert mtd_mean["evaluations"] == [ids[0], ids[2], ids[3]]
    assert mtd_mean["accuracy"]["5"] == {"mean": pytest.approx(0.42), "sd": pytest.approx(0.02), "n": 3}
    assert mtd_mean["accuracy"]["7"] == {"mean": pytest.approx(0.55), "sd": pytest.approx(0.0707107), "n": 2}
    assert f4_mean["accuracy"]["5"]["sd"] == pytest.approx(math.sqrt(2 * 0.03**2))
    assert art.metrics["runs"] == 6 and art.metrics["rows"] == 3

    rows, notes = table_rows(load_runs(paths))
    assert [type(r) for r in rows] == [RunMean, Run, RunMean] and notes == []
    # Fig. 3 plots the rows, each variant once at its mean; the loss ratios each seed's own log.
    assert [(r.variant, r.accuracy[5]) for r in layer_runs(rows)] == [
        ("BCE", 0.3722),
        ("F4", pytest.approx(0.83)),
        ("UW-25D", pytest.approx(0.42)),
    ]
    assert art.metrics["figures"] == ["accuracy_vs_frames", "layers", "loss_ratio", "size_vs_accuracy"]
    for file in report["figures"].values():
        read_png(art.path / file)
    assert list(report["loss_ratio"]) == [ids[0], ids[2], ids[3]]
    from avkd.tasks import get_task

    assert "| MTD | 42.00 ± 2.00 (n=3) |" in get_task("sync").report_text(art)  # what `avkd report` prints


def test_a_label_with_different_splits_is_kept_apart(tmp_path: Path) -> None:
    feats = make_features(tmp_path)
    teacher = make_model(tmp_path, "m_teacher", {"model": {"name": "vocalist"}, "loop": {"seed": 0}})
    paths = [
        make_eval(tmp_path, "e_test", "teacher", teacher, {5: 0.6}, feats).path,
        make_eval(tmp_path, "e_val", "teacher", teacher, {5: 0.7}, feats, split="val").path,
    ]
    art = build_sync_report(paths, tmp_path / "report")
    md = (art.path / "report.md").read_text()
    assert "| teacher | 60.00 |" in md and "| teacher | 70.00 |" in md and "(n=" not in md
    assert "'teacher' is 2 rows, not averaged: its evaluations differ in split (test, val)" in md
    assert "teacher: evaluated on split 'val', not 'test'" in md
    assert json.loads((art.path / "report.json").read_text())["aggregates"] == []
