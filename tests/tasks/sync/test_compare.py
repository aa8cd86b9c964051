"""The comparison chain (``nox -s compare``, avkd.tasks.sync.compare) at the tiniest size: four rows in one report,
each with its parameters, GMACs per window and throughput."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from avkd.core.artifacts import load_artifact
from avkd.core.errors import UsageError
from avkd.models.io import count_parameters, load_model
from avkd.report.sync import report_table
from avkd.tasks.sync.compare import CompareConfig, run_compare
from avkd.tasks.sync.config import SyncModelConfig
from avkd.train.loop import LoopConfig

THIN = {"embed_dim": 16, "audio_channels": [4, 4, 8, 8, 8, 8], "video_channels": [4, 8, 8, 8, 8, 8]}
LABELS = [
    "VocaLiST teacher (vocalist_lite)",
    "MTDVocaLiST student (MTD)",
    "SyncNet v2 (random weights)",
    "SyncNet (PM-trained, thin)",
    "AVSiam (avsiam_sync, 31-way)",
]


def tiny(corpus: Path) -> CompareConfig:
    config = CompareConfig(corpus=str(corpus), workers=1, frames=[5, 15], limit=1)
    config.teacher.model = SyncModelConfig(name="vocalist_lite", width=16, channels=[4, 4, 8, 8, 16])
    config.teacher.loop = LoopConfig(epochs=1, batch_size=8, lr=1e-3, device="cpu")
    config.teacher.samples_per_epoch, config.teacher.val_samples = 16, 8
    config.student.student = SyncModelConfig(name="vocalist_lite", width=8, channels=[4, 4, 8, 8, 8])
    config.student.loop = LoopConfig(epochs=1, batch_size=8, lr=1e-3, device="cpu")
    config.student.samples_per_epoch, config.student.val_samples = 16, 8
    config.pm.model = SyncModelConfig(name="syncnet", kwargs=THIN)
    config.pm.loop = LoopConfig(epochs=1, batch_size=2, lr=1e-3, device="cpu")
    config.pm.samples_per_epoch, config.pm.val_samples, config.pm.pm_steps = 2, 2, 3
    config.avsiam.loop = LoopConfig(epochs=1, batch_size=2, lr=1e-3, device="cpu")
    config.avsiam.samples_per_epoch, config.avsiam.val_samples, config.avsiam.pm_steps = 2, 2, 6
    return config


@pytest.mark.slow  # ~25 s: two features artifacts, four short trainings, five evaluations, the report
def test_compare_chain_at_tiny_size(synth_corpus: Path, tmp_path: Path, capsys) -> None:
    result = run_compare(tmp_path / "cmp", tiny(synth_corpus), show_progress=False)
    report = json.loads((Path(result["report"]) / "report.json").read_text())
    runs = {r["label"]: r for r in report["runs"]}
    assert list(runs) == LABELS
    assert result["syncnet_weights"].startswith("random")
    for label, run in runs.items():
        model = load_model(run["model_path"]).model
        assert run["parameters"] == count_parameters(model), label
        assert math.isfinite(run["gmacs_per_window"]) and run["gmacs_per_window"] > 0, label
        assert run["windows_per_second"] is None, label  # machine-dependent: in speed.json, not in the id
        assert set(run["accuracy"]) == {"5", "15"}
    assert runs[LABELS[2]]["parameters"] == 13_631_616  # the full SyncNet v2, not a thin one
    assert runs[LABELS[2]]["gmacs_per_window"] > 20 * runs[LABELS[3]]["gmacs_per_window"]
    header = result["table"].splitlines()[0]
    assert "GMACs/window" in header and "windows/s" in header
    # The windows/s are a log (speed.json, out of the id); what `avkd report` and the demo print leaves them out.
    art = load_artifact(result["report"])
    speeds = json.loads((art.path / "speed.json").read_text())["windows_per_second"]
    assert set(speeds) == {run["eval_id"] for run in runs.values()}
    assert all(math.isfinite(v) and v > 0 for v in speeds.values())
    assert art.manifest["files"]["speed.json"]["log"] is True
    printed = report_table(art).splitlines()[0]
    assert "GMACs/window" in printed and "windows/s" not in printed
    assert "windows/s" not in (art.path / "report.md").read_text()
    # A second run reuses every artifact and prints the same table.
    capsys.readouterr()
    again = run_compare(tmp_path / "cmp", tiny(synth_corpus), show_progress=False)
    assert again["artifacts"] == result["artifacts"] and again["table"] == result["table"]
    assert capsys.readouterr().err.count("reusing") == 13  # 2 features, 5 models, 5 evaluations, the report


def test_compare_refuses_a_missing_syncnet_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        run_compare(tmp_path / "cmp", CompareConfig(syncnet=str(tmp_path / "nope.model")))
