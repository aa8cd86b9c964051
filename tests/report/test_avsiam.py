"""The avsiam report (``avkd.report.avsiam``): its two tables from real (untrained, tiny) evaluation artifacts and
from hand-made rows, seeds of one label as mean ± sd, speed kept out of the id, and ``avkd report`` choosing it."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from avkd.cli.main import main
from avkd.core.artifacts import load_artifact
from avkd.evaluate.avsiam import ClipsEvalConfig, evaluate_clips_artifact
from avkd.report.avsiam import avsiam_rows, build_avsiam_report, classification_table, retrieval_table
from avkd.tasks import task_of
from tests.tasks.avsiam.corpus import pretrain_features
from tests.tasks.avsiam.test_task import toy_model


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three evaluations on the 3 test clips: two models labelled "random" (one recipe, two seeds), one "other"."""
    feats = pretrain_features(tmp_path_factory)
    base = tmp_path_factory.mktemp("avsiam-report")
    paths = []
    for i, label in enumerate(("random", "random", "other")):
        model = toy_model(base / f"m{i}.pt", seed=i)
        art = evaluate_clips_artifact(ClipsEvalConfig(), model, feats, base / f"e{i}", label=label,
                                      show_progress=False)  # fmt: skip
        paths.append(art.path)
    return paths


def test_the_tables_of_hand_made_rows() -> None:
    row = {
        "label": "a|b",
        "description": "pre-trained (heads untrained)",
        **{f"a2v_r@{k}": v for k, v in ((1, 0.5), (5, 0.75), (10, 1.0))},
        "a2v_mr": 2.5,
        **{f"v2a_r@{k}": v for k, v in ((1, 0.25), (5, 1.0), (10, 1.0))},
        "v2a_mr": 3.0,
        "acc_av": 0.5,
        "acc_audio_only": 1.0,
        "acc_video_only": 0.125,
        "clips": 4,
        "chance_r@1": 0.25,
        "chance_acc": 0.5,
        "parameters": 1_054_921,
        "clips_per_second": 123.4,
        "evaluation_id": "e1",
        "model_id": "m1",
    }
    retrieval = retrieval_table([row]).splitlines()
    assert retrieval[2] == (
        "| a\\|b | pre-trained (heads untrained) | 50.00 | 75.00 | 100.00 | 2.50 | 25.00 | 100.00 | 100.00 | 3.00 "
        "| 25.00 | 4 | 1.05 | 123 | `e1` | `m1` |"
    )
    assert "clips/s" in retrieval[0] and "clips/s" not in retrieval_table([row], throughput=False)
    classification = classification_table([row]).splitlines()
    assert classification[2].startswith(
        "| a\\|b | pre-trained (heads untrained) | accuracy | 50.00 | 100.00 | 12.50 | 50.00 | 4 |"
    )
    multi = {k: v for k, v in row.items() if not k.startswith("acc_")}
    multi.update(map_av=0.3, map_audio_only=0.2, map_video_only=0.1, chance_acc=None)  # a multi-label corpus
    assert "| mAP | 30.00 | 20.00 | 10.00 | – |" in classification_table([multi])
    # Two runs of one label: one row of mean ± sd (n=2).
    other = {**row, "a2v_r@1": 0.25, "evaluation_id": "e2", "model_id": "m2"}
    facts = {"data_id": "d", "split": "test", "per_class": None, "seed": None}
    rows, notes = avsiam_rows([{**row, **facts}, {**other, **facts}])
    assert len(rows) == 1 and notes == [] and rows[0]["stats"]["a2v_r@1"].mean == pytest.approx(0.375)
    assert f"| 37.50 ± {100 * statistics.stdev([0.5, 0.25]):.2f} (n=2) |" in retrieval_table(rows)
    assert "`e1`, `e2`" in retrieval_table(rows)


def test_the_report_of_real_evaluations(evaluations: list[Path], tmp_path: Path) -> None:
    report = build_avsiam_report(evaluations, tmp_path / "r", title="t")
    assert report.kind == "report" and report.metrics == {"runs": 3, "rows": 2, "task": "avsiam"}
    assert task_of(report).name == "avsiam"
    md = (report.path / "report.md").read_text()
    assert (
        md.startswith("# t\n") and "## Retrieval" in md and "## Classification with missing modalities" in md
    )
    arts = [load_artifact(p) for p in evaluations]
    random_rows = [line for line in md.splitlines() if line.startswith("| random |")]
    assert len(random_rows) == 2 and all("(n=2)" in line for line in random_rows)  # one row in each table
    assert all("33.33" in line for line in random_rows[:1])  # chance R@1 = 1/3 clips
    payload = json.loads((report.path / "report.json").read_text())
    assert [r["a2v_r@1"] for r in payload["runs"]] == [a.metrics["a2v_r@1"] for a in arts]
    assert [r["acc_video_only"] for r in payload["runs"]] == [a.metrics["acc_video_only"] for a in arts]
    (agg,) = payload["aggregates"]
    assert agg["label"] == "random" and agg["evaluation_ids"] == [arts[0].id, arts[1].id]
    expected = statistics.fmean(a.metrics["acc_audio_only"] for a in arts[:2])
    assert agg["metrics"]["acc_audio_only"]["mean"] == pytest.approx(expected)
    # Speed: in speed.json (a log) and report.md (a log), never in report.json; the id does not depend on it.
    speed = json.loads((report.path / "speed.json").read_text())["clips_per_second"]
    assert set(speed) == {a.id for a in arts} and all(v > 0 for v in speed.values())
    assert "clips_per_second" not in json.dumps(payload["runs"]) + json.dumps(payload["aggregates"])
    files = report.manifest["files"]
    assert (
        files["speed.json"].get("log")
        and files["report.md"].get("log")
        and not files["report.json"].get("log")
    )
    # The same model evaluated again: another measured speed, the same evaluation id and the same report id.
    feats = arts[0].manifest["inputs"][0]["path"]
    model = arts[0].path.parent / "m0.pt"  # the fixture's first model (its path is in metrics.json)
    again = evaluate_clips_artifact(ClipsEvalConfig(), model, feats, tmp_path / "e0", label="random",
                                    show_progress=False)  # fmt: skip
    assert again.id == arts[0].id
    first = build_avsiam_report([arts[0]], tmp_path / "r-a", title="t")
    second = build_avsiam_report([again], tmp_path / "r-b", title="t")
    assert first.id == second.id
    speeds = [
        json.loads((r.path / "speed.json").read_text())["clips_per_second"][again.id] for r in (first, second)
    ]
    assert speeds == [
        json.loads((a.path / "timing.json").read_text())["clips_per_second"] for a in (arts[0], again)
    ]


def test_avkd_report_finds_the_avsiam_report(evaluations: list[Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "r"
    assert main(["report", *map(str, evaluations), "--out", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["metrics"]["task"] == "avsiam" and "report.md" in got["files"]
    assert [r["label"] for r in got["runs"]] == ["random", "random", "other"]
    assert [a["label"] for a in got["aggregates"]] == ["random"]
    assert main(["report", str(evaluations[2]), "--out", str(tmp_path / "r1")]) == 0
    printed = capsys.readouterr().out
    assert "| other |" in printed and "A→V R@1" in printed and "audio only" in printed
