"""The avsiam demo chain end to end at a tiny size: every stage runs, a second run reuses every artifact, the
artifacts name R@1 and the audio-only / video-only results, and ``avkd demo --task avsiam`` adds a seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avkd.cli.main import main
from avkd.core.artifacts import load_artifact
from avkd.tasks.avsiam.demo import AVSiamDemoConfig, run_avsiam_demo

#: The tiny sizes, as ``--set`` values (the CLI test) and as a config (the library test): 3 classes x 4 clips of
#: 1.2 s (half of each class in the test split: 6 train, 6 test clips), 2 frames a clip, one epoch of each
#: training stage.
TINY = {
    "corpus.classes": 3,
    "corpus.clips_per_class": 4,
    "corpus.seconds": 1.2,
    "corpus.seed": 3,
    "features.part_size": 4,
    "features.frames": 2,
    "pretrain.loop.epochs": 1,
    "pretrain.loop.batch_size": 4,
    "finetune.loop.epochs": 1,
    "finetune.loop.batch_size": 4,
}
LABELS = {"pre-trained", "fine-tuned, mixed", "fine-tuned, av only"}


def tiny() -> AVSiamDemoConfig:
    """The demo's config with :data:`TINY` applied, as ``--set`` applies it."""
    config = AVSiamDemoConfig()
    for key, value in TINY.items():
        *parents, name = key.split(".")
        target = config
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)
    return config


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("avsiam-demo") / "demo"
    return out, run_avsiam_demo(out, tiny(), show_progress=False)


def test_the_chain_names_r1_and_the_missing_modality_results(demo: tuple[Path, dict]) -> None:
    out, summary = demo
    names = {"corpus", "features", "pretrained", "finetune-mixed", "finetune-av", "eval-pretrained", "eval-mixed",
             "eval-av", "report"}  # fmt: skip
    assert names <= {p.name for p in out.iterdir()}
    for key in ("a2v_r@1", "v2a_r@1", "acc_av", "acc_audio_only", "acc_video_only"):
        assert set(summary[key]) == LABELS, key
        assert all(0.0 <= v <= 1.0 for v in summary[key].values()), key
    assert summary["chance_r@1"] == pytest.approx(1 / 6)
    kinds = {name: a["kind"] for name, a in summary["artifacts"].items()}
    assert kinds == {"features": "clips-features", "pretrained": "model", "finetune-mixed": "model",
                     "finetune-av": "model", "eval-pretrained": "evaluation", "eval-mixed": "evaluation",
                     "eval-av": "evaluation"}  # fmt: skip
    assert (
        "A→V R@1" in summary["table"]
        and "audio only" in summary["table"]
        and "clips/s" not in summary["table"]
    )
    # Each evaluation's JSON metrics name R@1 and the audio-only / video-only accuracies.
    for name in ("eval-pretrained", "eval-mixed", "eval-av"):
        metrics = json.loads((out / name / "metrics.json").read_text())
        assert {"a2v_r@1", "v2a_r@1", "acc_audio_only", "acc_video_only"} <= set(metrics)
    # Both fine-tunes start from the pre-trained model, with their own inputs and the last epoch kept.
    pre = load_artifact(out / "pretrained")
    for modalities in ("mixed", "av"):
        ft = load_artifact(out / f"finetune-{modalities}")
        assert ft.config["modalities"] == modalities and ft.metrics["init"] == pre.id
        assert ft.config["loop"]["select_metric"] == "epoch"
    assert pre.config["combine"] == "sum" and pre.config["size"] == "toy"
    report = json.loads((out / "report" / "report.json").read_text())
    assert [r["label"] for r in report["runs"]] == ["pre-trained", "fine-tuned, mixed", "fine-tuned, av only"]
    md = (out / "report" / "report.md").read_text()
    assert "fine-tuned, audio-visual only (from pre-trained)" in md and "pre-trained (heads untrained)" in md


def test_a_second_run_reuses_everything(demo: tuple[Path, dict], capsys) -> None:
    out, summary = demo
    capsys.readouterr()
    again = run_avsiam_demo(out, tiny(), show_progress=False)
    assert again["artifacts"] == summary["artifacts"] and again["table"] == summary["table"]
    # corpus, features, pre-training, two fine-tunes, three evaluations, report
    assert capsys.readouterr().err.count("reusing") == 9


def test_the_command_adds_a_seed_and_refuses_other_tasks_flags(demo: tuple[Path, dict], capsys) -> None:
    out, summary = demo
    sets = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]
    code = main(["demo", "--task", "avsiam", "--out", str(out), "--seeds", "2", "--deterministic", *sets,
                 "--json"])  # fmt: skip
    assert code == 0
    got = json.loads(capsys.readouterr().out)
    for name in ("features", "pretrained", "finetune-mixed", "eval-av"):
        assert got["artifacts"][name] == summary["artifacts"][name], name  # seed 0 reused
    assert got["artifacts"]["seed-1/finetune-av"]["kind"] == "model"
    assert got["a2v_r@1"] == summary["a2v_r@1"]  # the summary's numbers are seed 0's
    assert load_artifact(out / "seed-1" / "finetune-mixed").config["loop"]["seed"] == 1
    rows = [line for line in got["table"].splitlines() if line.startswith("| fine-tuned, mixed |")]
    assert len(rows) == 2 and all("(n=2)" in row for row in rows)
    code = main(["demo", "--task", "avsiam", "--out", str(out / "x"), "--utterances", "5"])
    err = capsys.readouterr().err
    assert (
        code == 2 and "--utterances does not apply to demo in the avsiam task" in err and err.count("\n") == 1
    )
    assert not (out / "x").exists()
