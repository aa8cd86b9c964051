"""The check and the ingest agree on a labels file without label columns: both refuse it, naming the file."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from avkd.core.errors import ArtifactError
from avkd.data.mosei.check import check_mosei
from avkd.data.mosei.ingest import MoseiIngestConfig, ingest_mosei
from avkd.data.mosei.synthetic import SynthMoseiConfig, synthesize_mosei


def test_labels_without_columns(tmp_path: Path) -> None:
    synthesize_mosei(tmp_path / "csd", SynthMoseiConfig())
    labels = next((tmp_path / "csd").rglob("CMU_MOSEI_Labels.csd"))
    with h5py.File(labels, "r+") as h5:
        data = h5[next(iter(h5.keys()))]["data"]
        for entry in data:
            n = data[entry]["features"].shape[0]
            del data[entry]["features"]
            data[entry].create_dataset("features", data=np.zeros((n, 0), np.float32))
    report = check_mosei(tmp_path / "csd")
    assert not report.ok
    bad = next(s for s in report.sequences if s.name == "labels")
    assert bad.bad_dim and "the labels have no columns" in bad.bad_dim[0]
    with pytest.raises(ArtifactError, match=r"CMU_MOSEI_Labels\.csd: entry .*: the labels have no columns"):
        ingest_mosei(
            MoseiIngestConfig(text_len=6, audio_len=60, vision_len=60), tmp_path / "csd", tmp_path / "f"
        )
