"""``avkd mfh sweep`` (avkd.mfh.gamma_sweep) at toy size: one γ, one seed, one short epoch per model. It runs the
whole chain through the command line, writes the artifact with the table, and a second run reuses every run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avkd.cli.main import main
from avkd.core.artifacts import MFH_GAMMA_SWEEP, load_artifact
from avkd.core.errors import ConfigError, UsageError
from avkd.mfh.gamma_sweep import GammaSweepConfig, sweep_gamma
from avkd.tasks.emotion.demo import EmotionDemoConfig

TINY = """
emotion:
  corpus: {train_videos: 10, val_videos: 3, test_videos: 4, seed: 2}
  features: {text_len: 4, audio_len: 40, vision_len: 40}
  teacher:
    model: {kwargs: {branch: complete, output_dim: 7, d: 10, num_heads: 5, layers: 1}}
    loop: {epochs: 1, batch_size: 8, max_steps_per_epoch: 2, device: cpu}
  student_loop: {epochs: 1, batch_size: 8, max_steps_per_epoch: 2, device: cpu}
"""


def test_sweep_runs_the_chain_and_writes_the_table(tmp_path: Path, capsys) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY)
    out, work = tmp_path / "sweep", tmp_path / "runs"
    args = ["mfh", "sweep", "--out", str(out), "--work", str(work), "--gammas", "0.5", "--seeds", "1"]
    code = main([*args, "--config", str(tmp_path / "tiny.yaml"), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    art = load_artifact(out, kind=MFH_GAMMA_SWEEP)
    assert result["id"] == art.id and {"sweep.json", "report.md"} <= set(art.files)
    (row,) = result["rows"]
    assert row["gamma"] == 0.5 and row["gamma_effective"] == 0.5 and row["shared_latents"] == 2
    for key in ("teacher", "none", "crd-penultimate", "edam-s"):
        assert 0.0 <= row[key] <= 100.0 and row[f"{key}_std"] is None  # one seed: no sd
    assert row["delta_edam-s"] == pytest.approx(row["edam-s"] - row["none"])
    # mfh diagnose ran on the seed's teacher and no-KD student: its γ̂ is a share, its logit r² a square.
    assert 0.0 <= row["diagnose_gamma"] <= 1.0 and 0.0 <= row["diagnose_output_r2"] <= 1.0
    assert row["per_seed"]["diagnose_gamma"] == [row["diagnose_gamma"]]
    # The artifact traces back to the four evaluations (teacher and three students) and the diagnosis.
    kinds = sorted(i["kind"] for i in art.manifest["inputs"])
    assert kinds == ["evaluation"] * 4 + ["mfh-diagnosis"]
    assert (work / "gamma-0.500" / "corpus" / "gamma.json").is_file()
    table = art.file("report.md").read_text()
    assert (
        "| γ | teacher | no-KD | crd-penultimate | EDAM-S | Δ crd-penultimate | Δ EDAM-S | γ̂ (mfh diagnose) |"
        in table
    )
    assert table.count("\n| 0.50 |") == 1
    # An existing artifact is refused before any work; --overwrite reuses every run and gives the same id.
    assert main([*args, "--config", str(tmp_path / "tiny.yaml")]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--config", str(tmp_path / "tiny.yaml"), "--overwrite"]) == 0
    assert capsys.readouterr().err.count("reusing") >= 10
    assert load_artifact(out).id == art.id


def test_sweep_refuses_bad_configs(tmp_path: Path, capsys) -> None:
    with pytest.raises(UsageError, match="'none'"):
        sweep_gamma(GammaSweepConfig(emotion=EmotionDemoConfig(methods=["edam-s"])), tmp_path / "s")
    with pytest.raises(ConfigError, match="gammas"):
        sweep_gamma(GammaSweepConfig(gammas=[0.0, 1.5]), tmp_path / "s")
    assert main(["mfh", "sweep", "--out", str(tmp_path / "s"), "--gammas", "a,b"]) == 2
    assert "--gammas" in capsys.readouterr().err
    assert not (tmp_path / "s").exists() and not (tmp_path / "s-runs").exists()
    # A corpus of another γ where this γ's runs go is refused, not measured under the wrong γ.
    stale = tmp_path / "w" / "gamma-0.500" / "corpus"
    stale.mkdir(parents=True)
    (stale / "gamma.json").write_text(json.dumps({"gamma": 0.25}))
    with pytest.raises(UsageError, match="another γ"):
        sweep_gamma(GammaSweepConfig(gammas=[0.5]), tmp_path / "s", work=tmp_path / "w")
