from __future__ import annotations

from pathlib import Path

import pytest

from avkd.core.errors import AvkdError
from avkd.data.lrs2.layout import (
    list_utterances,
    load_corpus_manifest,
    parse_split_file,
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


def test_malformed_split_line(tmp_path: Path) -> None:
    (tmp_path / "main").mkdir()
    bad = tmp_path / "val.txt"
    bad.write_text("123/00001\njust-one-field\n")
    with pytest.raises(AvkdError, match=r"val.txt:2: expected '<speaker>/<utt>'"):
        list_utterances(tmp_path, ["val"])
