"""``avkd mfh diagnose`` (avkd.mfh.diagnose) on small MOSEI and sync artifacts: the artifact and its metrics, the
freeze check's students, the γ estimate, the verdict's rules, the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avkd.cli.main import main
from avkd.core.artifacts import MFH_DIAGNOSIS, load_artifact
from avkd.core.errors import UsageError
from avkd.mfh.diagnose import (
    FREEZE_MODES,
    STUDENTS,
    DiagnoseConfig,
    GammaEstimate,
    channel_generality,
    decodable_share,
    diagnose,
    estimate_gamma,
    freeze_channels,
    verdict,
)
from avkd.train.loop import LoopConfig
from tests.cli.test_startup import probe

LOOP = LoopConfig(
    epochs=1, batch_size=8, device="cpu", select_metric="val_acc7", max_steps_per_epoch=2, deterministic=True
)


@pytest.mark.parametrize("rank", ["salience", "generality"])
def test_diagnose_writes_gamma_saliences_and_the_freeze_check(mosei_pair, tmp_path: Path, rank: str) -> None:
    teacher, student, features = mosei_pair
    config = DiagnoseConfig(permutations=2, batch_size=16, loop=LOOP, freeze_rank=rank)
    art = diagnose(teacher, student, features, tmp_path / "d", config, show_progress=False)
    assert art.kind == MFH_DIAGNOSIS and {a["kind"] for a in art.manifest["inputs"]} == {
        "mosei-features",
        "model",
    }
    assert {"diagnosis.json", "report.md", "salience.png", "timings.json"} <= set(art.files)
    m = art.metrics
    assert m["track"] == "emotion" and 0 <= m["gamma"] <= 1 and 0 <= m["output_r2"] <= 1
    data = json.loads(art.file("diagnosis.json").read_text())
    # γ̂ reads the student's hidden features (3·d = 30) over the whole train split.
    assert data["gamma"]["samples"] == 41 and data["gamma"]["student_channels"] == 30
    # MulT at d = 10: last_hs is 2·d per query modality (60), the configuration-5 student's 3·d (30).
    assert len(data["teacher"]["salience"]) == m["teacher_channels"] == 60
    assert len(data["student"]["channels"]) == m["student_channels"] == 30
    for side in ("teacher", "student"):
        values = np.asarray(data[side]["salience"])
        assert values.min() == 0 and values.max() == 1
        assert data[side]["samples"] == 41  # the whole train split, not one batch of 16
    # The freeze check: five fresh students, each mode freezing round(0.75 · 60) = 45 channels.
    freeze = data["freeze"]
    assert set(freeze["students"]) == set(STUDENTS) and all(0 <= m[k] <= 1 for k in STUDENTS)
    frozen = freeze["frozen"]
    assert all(len(frozen[mode]) == 45 for mode in FREEZE_MODES)
    side = data["teacher"]
    salience = np.asarray(side["salience"])
    if rank == "generality":  # reliance × generality orders the channels instead
        salience = np.asarray(side["reliance"]) * np.asarray(side["generality"])
    assert freeze["rank"] == rank
    kept_general = np.setdiff1d(np.arange(60), frozen["keep_general"])
    kept_specific = np.setdiff1d(np.arange(60), frozen["keep_specific"])
    assert salience[kept_general].min() >= salience[frozen["keep_general"]].max()
    assert salience[kept_specific].max() <= salience[frozen["keep_specific"]].min()
    report = art.file("report.md").read_text()
    assert data["verdict"] in report and "| keep_general |" in report
    assert not (art.path / "students").exists()  # the students' run folders are gone
    generality = np.asarray(data["teacher"]["generality"])
    assert generality.shape == (60,) and generality.min() >= 0 and generality.max() <= 1
    assert data["student"]["generality"] is None


def test_sync_track_salience_and_gamma(sync_pair, features, tmp_path: Path) -> None:
    teacher, student = sync_pair
    config = DiagnoseConfig(permutations=2, batch_size=8, sync_samples=16, split="train")
    art = diagnose(teacher, student, features.path, tmp_path / "s", config, show_progress=False)
    m = art.metrics
    assert m["track"] == "sync" and m["tap"] == "fusion" and "no_kd" not in m
    assert m["teacher_channels"] == 16 and m["student_channels"] == 8  # VocaLiST's pooled fusion output
    data = json.loads(art.file("diagnosis.json").read_text())
    assert data["freeze"] is None and data["teacher"]["samples"] == 16
    with pytest.raises(UsageError, match="emotion track only"):
        diagnose(teacher, student, features.path, tmp_path / "x", DiagnoseConfig(freeze=True))
    with pytest.raises(UsageError, match="needs a layer tap"):
        diagnose(
            teacher,
            student,
            features.path,
            tmp_path / "x",
            DiagnoseConfig(tap="input", freeze_rank="generality", freeze=True),
        )
    with pytest.raises(UsageError, match="sync models' inputs"):
        diagnose(teacher, student, features.path, tmp_path / "x", DiagnoseConfig(tap="input"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def _latents(n: int, shared: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Teacher logits (n, 3) from four latents and student features holding the first ``shared`` of them among
    six noise channels; the true share of the teacher's class-centred logit variance they carry."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 4))
    w = np.array([[1.0, -0.5, 0.0], [0.0, 1.0, -0.8], [0.6, 0.0, 0.9], [-0.7, 0.7, 0.2]])
    centred = w - w.mean(axis=1, keepdims=True)
    truth = float((centred[:shared] ** 2).sum() / (centred**2).sum())
    features = np.concatenate([z[:, :shared], rng.standard_normal((n, 6))], axis=1)
    return z @ w, features, truth


@pytest.mark.parametrize("shared", [0, 2, 4])
def test_gamma_is_the_share_of_the_teacher_the_student_carries(shared: int) -> None:
    """Known by construction: the student's features hold ``shared`` of the teacher's four latents (β = 0), so
    γ = 1 − α = the share of the teacher's decisive (centred logit) variance in them."""
    teacher, features, truth = _latents(2000, shared)
    estimate = estimate_gamma(teacher, features, features[:, :3])
    assert estimate.gamma == pytest.approx(truth, abs=0.02)
    assert estimate.samples == 2000 and estimate.student_channels == shared + 6
    # Out of fold, six channels of noise read as nothing (in sample they would fit some of it).
    assert decodable_share(teacher, features[:, shared:]) == pytest.approx(0.0, abs=0.02)
    assert decodable_share(np.ones((10, 3)), features[:10]) is None


def test_channel_generality_says_which_teacher_channels_the_student_holds() -> None:
    rng = np.random.default_rng(5)
    z = rng.standard_normal((1500, 3))
    channels = np.stack([z[:, 0], z[:, 0] + z[:, 1], z[:, 2], np.ones(1500)], axis=1)  # (N, 4) teacher layer
    student = np.concatenate([z[:, :1], rng.standard_normal((1500, 4))], axis=1)  # holds z0 only
    generality = channel_generality(channels, student)
    assert generality == pytest.approx([1.0, 0.5, 0.0, 0.0], abs=0.03)


def test_freeze_channels() -> None:
    salience = np.array([0.5, 0.0, 1.0, 0.5, 0.2])
    assert freeze_channels(salience, 0.4, "keep_general", 0) == [1, 4]
    assert freeze_channels(salience, 0.4, "keep_specific", 0) == [0, 2]  # a tie goes to the lower channel
    drawn = freeze_channels(salience, 0.6, "random", 3)
    assert len(set(drawn)) == 3 and drawn == freeze_channels(salience, 0.6, "random", 3)
    assert len(freeze_channels(salience, 0.99, "keep_general", 0)) == 4  # at least one channel stays
    with pytest.raises(ValueError, match="not one of"):
        freeze_channels(salience, 0.5, "middle", 0)


def _students(general: float, random: float, specific: float, regular: float, none: float) -> dict:
    values = dict(zip(STUDENTS, (none, regular, general, random, specific), strict=True))
    return {k: {"acc7": v} for k, v in values.items()}


@pytest.mark.parametrize(
    ("students", "gamma", "expected"),
    [
        (_students(0.50, 0.45, 0.40, 0.48, 0.44), 0.6, "likely to help, and focusing"),
        (_students(0.45, 0.42, 0.40, 0.41, 0.43), 0.1, "not worthwhile as it is"),
        (_students(0.40, 0.42, 0.45, 0.48, 0.44), 0.6, "did not add to it"),
        (None, 0.1, "unlikely to help"),
        (None, 0.8, "likely to help here"),
    ],
)
def test_verdict_follows_the_rules(students, gamma: float, expected: str) -> None:
    text = verdict(GammaEstimate(gamma, gamma, 100, 5, 30), students, ["last_hs[3]", "last_hs[7]"])
    assert expected in text and text.endswith("runs mostly through last_hs[3], last_hs[7].")
    if students is not None:
        shows = (
            students["keep_general"]["acc7"] > students["random"]["acc7"] > students["keep_specific"]["acc7"]
        )
        assert ("does not show" in text) != shows


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli(mosei_pair, tmp_path: Path, capsys) -> None:
    teacher, student, features = mosei_pair
    base = ["mfh", "diagnose", "--teacher", str(teacher), "--student", str(student), "--data", str(features)]
    out = tmp_path / "d"
    args = [*base, "--out", str(out), "--no-freeze", "--permutations", "2", "--tap", "hidden"]
    code, stdout, err = run(capsys, *args, "--json")
    assert code == 0, err
    result = json.loads(stdout)
    art = load_artifact(out, kind=MFH_DIAGNOSIS)
    assert result["id"] == art.id and result["tap"] == "hidden" and result["freeze"] is None
    assert result["metrics"]["gamma"] == result["gamma"]["gamma"]
    assert len(result["teacher"]["salience"]) == 60 and result["verdict"].startswith("γ̂ = ")
    assert art.manifest["command"][:3] == ["avkd", "mfh", "diagnose"]
    # The same command again, overwriting: the same content, the same id (seeded permutations).
    code, stdout, err = run(capsys, *args, "--overwrite")
    assert code == 0 and stdout.startswith("# MFH diagnosis (emotion track, tap `hidden`)")
    assert load_artifact(out).id == art.id and f"{out}: γ̂ " in err
    code, stdout, err = run(capsys, *base, "--out", str(tmp_path / "e"), "--freeze-share", "1.5")
    assert code == 2 and err.strip() == "error: --freeze-share: 1.5 must be in (0, 1)"
    code, stdout, err = run(capsys, *base, "--out", str(tmp_path / "e"), "--tap", "pooled", "--no-freeze")
    assert code == 2 and "tap 'pooled': this mult model has taps input, fusion, last_hs, hidden" in err


def test_help_does_not_import_torch() -> None:
    records, stdout, _ = probe(["mfh", "diagnose", "--help"])
    assert all(r["code"] == 0 and not r["torch"] for r in records), records
    assert "--freeze-share" in stdout and "--no-freeze" in stdout
