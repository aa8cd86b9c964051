"""``check_corpus`` (``avkd.data.lrs2.check``): missing, extra and unreadable media against a corpus manifest."""

from __future__ import annotations

import shutil
from pathlib import Path

from avkd.data.lrs2.check import check_corpus
from avkd.data.lrs2.layout import list_utterances, write_corpus_manifest


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
