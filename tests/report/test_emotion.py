"""The emotion report (``avkd.report.emotion``) from hand-made evaluation artifacts (no training): each row's
protocol, the note when rows mix protocols, and seeds sharing a label as one row of mean ± sd."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from avkd.core.artifacts import Artifact, ArtifactWriter
from avkd.report.emotion import build_emotion_report, emotion_row, emotion_rows
from avkd.report.tables import emotion_table

PARAMETERS = 199_747


def make_features(root: Path, name: str = "feats") -> Artifact:
    with ArtifactWriter(root / name, "mosei-features", {"fake": name}) as writer:
        writer.path("index.json").write_text("{}\n")
        return writer.commit()


def make_model(root: Path, name: str, seed: int = 0, method: str | None = "edam-s") -> Artifact:
    config: dict[str, Any] = {"loop": {"epochs": 2, "seed": seed}}
    if method:
        config.update(method=method, config_id=5)
    with ArtifactWriter(root / name, "model", config) as writer:
        writer.path("model.pt").write_bytes(b"not really weights")
        return writer.commit(metrics={"parameters": PARAMETERS})


def make_eval(
    root: Path,
    name: str,
    label: str,
    model: Artifact,
    features: Artifact,
    protocol: str | None = "avkd",
    **metrics: float | None,
) -> Artifact:
    """An evaluation artifact in the layout of ``avkd.tasks.emotion.evaluate``; ``protocol=None`` writes one as
    avkd did before the protocol (and acc5) were recorded."""
    summary: dict[str, Any] = {
        "label": label,
        "task": "emotion",
        "model": model.ref(),
        "parameters": PARAMETERS,
        "ms_per_batch": 12.0,
        "batch_size": 24,
        "acc7": 0.41,
        "acc5": 0.43,
        "f1_weighted": 0.32,
        "acc2": 0.70,
        "f1_binary": 0.69,
        "n": 197,
        "majority_acc7": 0.38,
        "protocol": protocol,
    }
    summary.update(metrics)
    config = {"split": "test", "batch_size": 24, "device": "cpu", "protocol": protocol}
    if protocol is None:
        del summary["protocol"], summary["acc5"], config["protocol"]
    with ArtifactWriter(root / name, "evaluation", config, inputs=[features, model]) as writer:
        writer.path("metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
        return writer.commit(metrics={"acc7": summary["acc7"]}, label=label, task="emotion")


def cells(md: str, label: str) -> dict[str, str]:
    """The runs table's row of ``label`` as header -> cell."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| run | what |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    row = next(line for line in lines[start:] if line.startswith(f"| {label} |"))
    return dict(zip(header, [c.strip() for c in row.strip("|").split("|")], strict=True))


def test_each_row_names_its_protocol_and_mixed_protocols_are_flagged(tmp_path: Path) -> None:
    feats = make_features(tmp_path)
    teacher = make_model(tmp_path, "teacher", method=None)
    ours = make_eval(tmp_path, "e_ours", "mult", teacher, feats)
    ref = make_eval(tmp_path, "e_ref", "mult-ref", teacher, feats, protocol="reference", f1_binary=0.72)
    art = build_emotion_report([ours, ref], tmp_path / "report")
    md = (art.path / "report.md").read_text()
    assert cells(md, "mult")["protocol"] == "avkd" and cells(md, "mult-ref")["protocol"] == "reference"
    assert cells(md, "mult")["F1-bin"] == "69.00" and cells(md, "mult-ref")["F1-bin"] == "72.00"
    assert cells(md, "mult")["what"] == "teacher / trained alone"
    assert (
        "- the runs were computed under different protocols (mult: avkd, mult-ref: reference); their F1-bin is "
        "not directly comparable" in md
    )
    report = json.loads((art.path / "report.json").read_text())
    assert [r["protocol"] for r in report["runs"]] == ["avkd", "reference"]
    assert report["notes"][0].startswith("the runs were computed under different protocols")

    only_ref = (build_emotion_report([ref], tmp_path / "r2").path / "report.md").read_text()
    assert (
        "computed with MulT's eval_mosei_senti convention" in only_ref
        and "different protocols" not in only_ref
    )
    only_ours = (build_emotion_report([ours], tmp_path / "r3").path / "report.md").read_text()
    assert "## Notes" not in only_ours


def test_an_evaluation_from_before_the_protocol_reads_as_avkd(tmp_path: Path) -> None:
    feats = make_features(tmp_path)
    old = make_eval(tmp_path, "e_old", "old", make_model(tmp_path, "m"), feats, protocol=None)
    row = emotion_row(old)
    assert row["protocol"] == "avkd" and row["acc5"] is None and row["seed"] == 0
    assert row["description"] == "edam-s (config 5)" and row["data_id"] == feats.id and row["split"] == "test"
    assert "| avkd |" in emotion_table([row])


def test_seeds_sharing_a_label_are_one_row_of_mean_and_sd(tmp_path: Path) -> None:
    feats = make_features(tmp_path)
    teacher = make_eval(tmp_path, "e_t", "teacher", make_model(tmp_path, "t", method=None), feats, acc7=0.49)
    arts = [teacher]
    # acc7 0.40, 0.42, 0.44 -> 42.00 ± 2.00; F1 0.30, 0.33, 0.36 -> 33.00 ± 3.00;
    # acc2 0.70, 0.74, NaN (written as null) -> 72.00 ± sqrt(2 · 0.02²) = 2.83 (n=2); ms 10, 12, 14 -> 12.0
    for seed, (acc7, f1, acc2, ms) in enumerate(
        [(0.40, 0.30, 0.70, 10), (0.42, 0.33, 0.74, 12), (0.44, 0.36, None, 14)]
    ):
        model = make_model(tmp_path, f"s{seed}", seed=seed)
        arts.append(
            make_eval(
                tmp_path,
                f"e_s{seed}",
                "EDAM-S student",
                model,
                feats,
                acc7=acc7,
                f1_weighted=f1,
                acc2=acc2,
                ms_per_batch=ms,
            )
        )
    art = build_emotion_report(arts, tmp_path / "report")
    md = (art.path / "report.md").read_text()
    row = cells(md, "EDAM-S student")
    assert (row["Acc7"], row["F1"], row["Acc2"]) == (
        "42.00 ± 2.00 (n=3)",
        "33.00 ± 3.00 (n=3)",
        "72.00 ± 2.83 (n=2)",
    )
    assert row["F1-bin"] == "69.00 ± 0.00 (n=3)" and row["ms / batch"] == "12.0 (batch 24)"
    assert row["evaluation"] == ", ".join(f"`{a.id}`" for a in arts[1:])
    assert cells(md, "teacher")["Acc7"] == "49.00"  # seen once: a plain row
    assert md.index("| teacher |") < md.index("| EDAM-S student |")

    report = json.loads((art.path / "report.json").read_text())
    assert [r["evaluation_id"] for r in report["runs"]] == [a.id for a in arts]  # every single run is kept
    (mean,) = report["aggregates"]
    assert (mean["label"], mean["runs"], mean["seeds"]) == ("EDAM-S student", 3, [0, 1, 2])
    assert mean["metrics"]["acc7"] == {"mean": pytest.approx(0.42), "sd": pytest.approx(0.02), "n": 3}
    assert mean["metrics"]["acc2"]["sd"] == pytest.approx(math.sqrt(2 * 0.02**2))
    assert mean["metrics"]["acc2"]["n"] == 2
    assert art.metrics["runs"] == 4 and art.metrics["rows"] == 2


def test_a_label_under_two_protocols_is_kept_apart(tmp_path: Path) -> None:
    feats = make_features(tmp_path)
    model = make_model(tmp_path, "m")
    arts = [
        make_eval(tmp_path, "e_a", "student", model, feats),
        make_eval(tmp_path, "e_b", "student", model, feats, protocol="reference"),
        make_eval(tmp_path, "e_c", "student", model, make_features(tmp_path, "other")),
    ]
    rows, notes = emotion_rows([emotion_row(a) for a in arts])
    assert [r["protocol"] for r in rows] == ["avkd", "reference", "avkd"] and not any(
        "stats" in r for r in rows
    )
    assert len(notes) == 1 and notes[0].startswith(
        "'student' is 3 rows, not averaged: its evaluations differ in"
    )
    assert "protocol (avkd, reference)" in notes[0] and "features (" in notes[0]
    md = (build_emotion_report(arts, tmp_path / "report").path / "report.md").read_text()
    assert notes[0] in md and "evaluated on different feature artifacts" in md
