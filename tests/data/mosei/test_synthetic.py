"""The synthetic CMU-MOSEI corpus (``avkd.data.mosei.synthetic``): the SDK layout, official fold ids, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from avkd.data.mosei.sdk import load_folds
from avkd.data.mosei.synthetic import synthesize_mosei
from tests.data.mosei.corpus import COVAREP, SYNTH


def test_synthetic_layout_ids_and_determinism(corpus: dict, tmp_path: Path) -> None:
    root = corpus["root"] / "csd"
    folds = load_folds()
    with h5py.File(root / COVAREP, "r") as h5:
        assert list(h5.keys()) == ["COVAREP"]
        meta = h5["COVAREP/metadata"]
        assert json.loads(meta["root name"][0]) == "COVAREP"
        assert "dimension namescomputational sequence version" in meta  # the SDK's missing-comma key (§3.1)
        for vid, group in h5["COVAREP/data"].items():
            assert group["features"].shape[1] == 74
            assert group["intervals"].shape == (group["features"].shape[0], 2)
            assert vid.startswith("synthetic_nofold") or vid in folds
    with h5py.File(root / "labels/CMU_MOSEI_Labels.csd", "r") as h5:
        vids = list(h5["All Labels/data"])
        labels = np.concatenate([h5["All Labels/data"][v]["features"][:, 0] for v in vids])
    assert sum(v in folds for v in vids) == 12 + 4 + 6
    assert np.all(np.abs(labels) <= 3)
    again = synthesize_mosei(tmp_path / "again", SYNTH)
    assert again["segments"] == corpus["summary"]["segments"]
    with h5py.File(tmp_path / "again" / COVAREP, "r") as a, h5py.File(root / COVAREP, "r") as b:
        for vid in a["COVAREP/data"]:
            np.testing.assert_array_equal(
                a["COVAREP/data"][vid]["features"][()], b["COVAREP/data"][vid]["features"][()]
            )
