"""``avkd data check lrs2`` agrees with ``avkd preprocess lrs2`` on which files are broken: the default reads each
file's packets (finding files cut short), ``--deep`` runs the preprocessing's own reader on each."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from avkd.cli.main import main
from avkd.core.errors import MediaError
from avkd.data.lrs2.check import check_corpus
from avkd.data.lrs2.layout import write_corpus_manifest
from avkd.data.lrs2.preprocess import LRS2PreprocessConfig, read_clip
from tests.clips import remux_faststart


@pytest.fixture(scope="module")
def damaged(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """The corpus with two test clips damaged the way a hostile user did: a faststart file cut inside its media
    data, and a file with a third of its bytes zeroed in the middle."""
    root = tmp_path_factory.mktemp("damaged") / "lrs2"
    shutil.copytree(synth_corpus, root)
    clips = sorted((root / "main").rglob("*.mp4"))
    cut, zeroed = clips[0], clips[1]
    remux_faststart(cut, cut.with_suffix(".tmp.mp4"))
    data = cut.with_suffix(".tmp.mp4").read_bytes()
    cut.with_suffix(".tmp.mp4").unlink()
    cut.write_bytes(data[: int(len(data) * 0.6)])  # moov kept, mdat cut
    data = bytearray(zeroed.read_bytes())
    third = len(data) // 3
    data[third : 2 * third] = bytes(third)
    zeroed.write_bytes(bytes(data))
    write_corpus_manifest(root)  # the manifest describes the lists, not the bytes
    return root, {"cut": cut, "zeroed": zeroed}


def rejected_by_preprocess(path: Path) -> bool:
    try:
        read_clip(path, LRS2PreprocessConfig())
    except MediaError:
        return True
    return False


def flagged(report, path: Path) -> bool:
    key = f"{path.parent.parent.name}/{path.parent.name}/{path.stem}"  # <subset>/<speaker>/<utt>
    return any(key in s.unreadable or key in s.off_format for s in report.splits)


def test_deep_check_rejects_what_preprocessing_rejects(damaged) -> None:
    root, files = damaged
    config = LRS2PreprocessConfig()
    report = check_corpus(root, root / "lrs2.yaml", reader=lambda p: read_clip(p, config))
    for path in sorted(root.rglob("*.mp4")):
        assert flagged(report, path) == rejected_by_preprocess(path), path
    assert rejected_by_preprocess(files["cut"]) and flagged(report, files["cut"])
    assert not report.ok


def test_the_fast_check_finds_a_file_cut_short(damaged) -> None:
    root, files = damaged
    report = check_corpus(root, root / "lrs2.yaml")  # packets read, nothing decoded
    assert flagged(report, files["cut"])
    reason = next(s.unreadable for s in report.splits if s.unreadable)
    assert "truncated" in next(iter(reason.values()))


def test_cli_deep_exits_1_naming_the_files(damaged, capsys: pytest.CaptureFixture[str]) -> None:
    root, files = damaged
    code = main(
        ["data", "check", "lrs2", str(root), "--manifest", str(root / "lrs2.yaml"), "--deep", "--json"]
    )
    assert code == 1
    data = json.loads(capsys.readouterr().out)
    unreadable = {k for s in data["splits"].values() for k in s.get("examples", {}).get("unreadable", {})}
    assert f"main/{files['cut'].parent.name}/{files['cut'].stem}" in unreadable
