from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from avkd.core.errors import AvkdError
from avkd.data.lrs2.check import check_corpus
from avkd.data.lrs2.layout import (
    list_utterances,
    load_corpus_manifest,
    parse_split_file,
    write_corpus_manifest,
)
from avkd.data.manifests import manifest_dir


def test_official_manifest_matches_the_shipped_lists() -> None:
    manifest = load_corpus_manifest()
    counts = {split: spec["count"] for split, spec in manifest["splits"].items()}
    assert counts == {"pretrain": 96318, "train": 45839, "val": 1082, "test": 1243}
    for split, spec in manifest["splits"].items():
        utts = parse_split_file(manifest_dir() / spec["list"], split, Path("/lrs2"))
        assert len(utts) == spec["count"]
    test = parse_split_file(manifest_dir() / "lrs2_splits/test.txt", "test", Path("/lrs2"))
    assert {u.tag for u in test} == {"NF", "MV"}
    assert test[0].path == Path("/lrs2/main/6330311066473698535/00011.mp4")
    assert test[0].key == "test/6330311066473698535/00011"


def test_keys_and_paths(synth_corpus: Path) -> None:
    utts = list_utterances(synth_corpus)
    assert len({u.key for u in utts}) == len(utts)
    for u in utts:
        assert u.path.is_file()
        assert u.path.parent.parent.name == ("pretrain" if u.split == "pretrain" else "main")
        assert (u.tag is not None) == (u.split == "test")


def test_check_reports_missing_extra_and_unreadable(synth_corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "c"
    shutil.copytree(synth_corpus, root)
    manifest = write_corpus_manifest(root)
    assert check_corpus(root, manifest).ok
    utts = list_utterances(root, ["test", "val"])
    utts[0].path.unlink()  # missing
    utts[1].path.write_bytes(b"\x00" * 100)  # unreadable
    extra = root / "main" / utts[1].speaker / "99999.mp4"
    shutil.copy(utts[2].path, extra)
    report = check_corpus(root, manifest)
    assert not report.ok
    by_split = {s.split: s for s in report.splits}
    missing = [s.missing_media for s in report.splits if s.missing_media]
    unreadable = [s.unreadable for s in report.splits if s.unreadable]
    assert missing == [[utts[0].source_key]]
    assert list(unreadable[0]) == [utts[1].source_key]
    assert report.extra_media == [f"main/{utts[1].speaker}/99999"]
    assert by_split["pretrain"].ok


def test_check_against_the_official_manifest(synth_corpus: Path) -> None:
    report = check_corpus(synth_corpus, probe_media=False)
    by_split = {s.split: s for s in report.splits}
    assert by_split["test"].expected == 1243 and by_split["test"].count < 1243
    assert by_split["test"].not_in_official  # synthetic ids are not LRS2 ids
    assert len(by_split["test"].missing_from_list) == 1243
    assert not report.ok


def test_malformed_split_line(tmp_path: Path) -> None:
    (tmp_path / "main").mkdir()
    bad = tmp_path / "val.txt"
    bad.write_text("123/00001\njust-one-field\n")
    with pytest.raises(AvkdError, match=r"val.txt:2: expected '<speaker>/<utt>'"):
        list_utterances(tmp_path, ["val"])
