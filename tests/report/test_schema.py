"""A report refuses an evaluation written by a newer avkd, as every stage refuses newer models and features."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from avkd.core.artifacts import MANIFEST, SCHEMAS
from avkd.core.errors import ArtifactError
from avkd.report.sync import build_sync_report
from avkd.tasks.sync.config import SyncEvalConfig
from avkd.tasks.sync.evaluate import evaluate_sync_artifact
from tests.oracle import EnvelopeOracle  # noqa: F401  (registers test_envelope_oracle)


def test_an_evaluation_of_a_newer_schema_is_refused(features, tmp_path: Path) -> None:
    from avkd.models import build_model
    from avkd.models.io import ModelSpec, save_weights

    model = tmp_path / "oracle.pt"
    save_weights(model, build_model("test_envelope_oracle"), ModelSpec("test_envelope_oracle", {}))
    evaluation = evaluate_sync_artifact(
        SyncEvalConfig(split="pretrain", frames=[5]),
        model,
        features.path,
        tmp_path / "e",
        show_progress=False,
    )
    newer = tmp_path / "newer"
    shutil.copytree(evaluation.path, newer)
    manifest = json.loads((newer / MANIFEST).read_text())
    manifest["schema"] = SCHEMAS["evaluation"] + 1
    (newer / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"evaluation schema 2 is newer than this avkd"):
        build_sync_report([newer], tmp_path / "r")
    assert not (tmp_path / "r").exists() and not (tmp_path / "r.partial").exists()
