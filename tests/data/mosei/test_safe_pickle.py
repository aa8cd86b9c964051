"""``load_pickle_safely`` (``avkd.data.mosei.safe_pickle``): numpy arrays only, whatever else a pickle holds."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from avkd.core.errors import ArtifactError
from avkd.data.mosei.format import SOURCE_SPLITS, SPLITS
from avkd.data.mosei.ingest import ingest_mosei
from avkd.data.mosei.safe_pickle import load_pickle_safely
from tests.data.mosei.corpus import INGEST, assert_nothing_complete


class Custom:
    """A class a pickle must not be allowed to instantiate."""

    def __init__(self) -> None:
        self.x = 1


class RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("payload", ["os.system", "custom class"])
def test_pickle_with_other_objects_is_refused(payload: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    arrays = {"text": np.zeros((1, 8, 300), np.float32)}
    evil = RunsCode(marker) if payload == "os.system" else Custom()
    data = {SOURCE_SPLITS[s]: {**arrays, "labels": np.zeros((1, 1, 1)), "extra": evil} for s in SPLITS}
    path = tmp_path / "mosei_senti_data_noalign.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    name = f"{os.system.__module__}.system" if payload == "os.system" else f"{__name__}.Custom"
    expected = f"{path}: refusing to load {name} from a pickle (only numpy arrays are allowed)"
    with pytest.raises(ArtifactError) as info:
        load_pickle_safely(path)
    assert str(info.value) == expected
    out = tmp_path / "out"
    with pytest.raises(ArtifactError, match="refusing to load"):
        ingest_mosei(INGEST, path, out)
    assert_nothing_complete(out)
    assert not marker.exists()


def test_safe_unpickler_reads_arrays_of_every_protocol(tmp_path: Path) -> None:
    data = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "id": np.array([["v", "1.5", "2.0"]]),
        "s": np.float64(2),
    }
    for protocol in (2, 3, 4, 5):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        back = load_pickle_safely(path)
        np.testing.assert_array_equal(back["a"], data["a"])
        np.testing.assert_array_equal(back["id"], data["id"])
        assert back["s"] == 2.0
