"""``avkd data check mosei``: a CMU-MOSEI source described without ingesting it."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import h5py
import pytest

from avkd.cli.main import main
from avkd.core.errors import ArtifactError
from avkd.data.mosei.check import check_mosei
from avkd.data.mosei.ingest import MoseiIngestConfig
from avkd.data.mosei.synthetic import SynthMoseiConfig, synthesize_mosei

COVAREP = "acoustic/CMU_MOSEI_COVAREP.csd"
FACET = "visual/CMU_MOSEI_VisualFacet42.csd"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("mosei-check")
    summary = synthesize_mosei(root / "csd", SynthMoseiConfig(seed=5), pickle_path=root / "data.pkl")
    return root / "csd", root / "data.pkl", summary


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "csd"
    shutil.copytree(src, dst)
    return dst


def test_good_csd_folder(source) -> None:
    csd, _, summary = source
    report = check_mosei(csd)
    assert report.ok and report.route == "csd"
    by_name = {s.name: s for s in report.sequences}
    assert {n: by_name[n].dim for n in by_name} == {"text": 300, "audio": 74, "vision": 35, "labels": 7}
    assert by_name["labels"].root == "All Labels"
    videos = summary["videos"]
    assert {s: report.splits[s]["labelled"] for s in videos} == videos
    assert report.splits["train"]["fold"] == 2249 and report.splits["test"]["fold"] == 678
    # The generator leaves COVAREP out for one train video: its segments would fail.
    assert report.splits["train"]["missing"]["audio"] == len(summary["missing_audio_videos"]) == 1
    assert report.splits["train"]["missing_examples"]["audio"] == summary["missing_audio_videos"]
    assert report.videos_without_fold == summary["nofold_videos"] == 1


def test_wrong_dimension_and_corrupted_file_are_reported(source, tmp_path: Path) -> None:
    src = _copy(source[0], tmp_path)
    with h5py.File(src / COVAREP, "a") as h5:
        vid = sorted(h5["COVAREP/data"])[0]
        group = h5["COVAREP/data"][vid]
        features = group["features"][()]
        del group["features"]
        group.create_dataset("features", data=features[:, :73])
    (src / FACET).write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(2000))
    report = check_mosei(src)
    by_name = {s.name: s for s in report.sequences}
    assert not report.ok
    assert by_name["audio"].bad_dim == [f"{vid}: 73 features per frame"] and by_name["audio"].dim is None
    assert "CMU_MOSEI_VisualFacet42.csd: not a readable HDF5 file" in by_name["vision"].error
    assert by_name["text"].ok and by_name["labels"].ok


def test_openface_file_through_the_config(source, tmp_path: Path) -> None:
    """A missing file is named; the ingest config picks an alternative vision file and its dimension."""
    src = _copy(source[0], tmp_path)
    (src / FACET).rename(src / "visual" / "CMU_MOSEI_VisualOpenFace2.csd")
    report = check_mosei(src)
    assert not report.ok and "modality file missing" in {s.name: s for s in report.sequences}["vision"].error
    config = MoseiIngestConfig(vision_file="CMU_MOSEI_VisualOpenFace2.csd", vision_dim=35)
    assert check_mosei(src, config).ok


def test_pickle_route(source, tmp_path: Path) -> None:
    _, pkl, summary = source
    report = check_mosei(pkl)
    assert report.ok and report.route == "pickle"
    assert {s: report.splits[s]["segments"] for s in summary["pickle_segments"]} == summary["pickle_segments"]
    with open(pkl, "rb") as handle:
        data = pickle.load(handle)
    data["valid"]["vision"] = data["valid"]["vision"][:, :, :30]
    del data["test"]["text"]
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(data, protocol=4))
    report = check_mosei(bad)
    by_name = {s.name: s for s in report.sequences}
    assert not report.ok
    assert by_name["valid/vision"].bad_dim == ["30 features per frame"]
    assert by_name["test/text"].error == f"{bad}: test lacks the array 'text'"


def test_missing_source_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="nothing: no such file or folder"):
        check_mosei(tmp_path / "nothing")


def test_cli_exit_codes(source, tmp_path: Path, capsys) -> None:
    assert main(["data", "check", "mosei", str(source[0])]) == 0
    assert "source OK" in capsys.readouterr().err
    src = _copy(source[0], tmp_path)
    (src / COVAREP).unlink()
    assert main(["data", "check", "mosei", str(src)]) == 1
    err = capsys.readouterr().err
    assert "audio: " in err and "modality file missing" in err
    assert err.strip().splitlines()[-1] == f"error: {src}: CMU-MOSEI source has problems (see above)"
