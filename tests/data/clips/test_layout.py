"""Label CSVs: VGGSound rows, AudioSet segment CSVs and class tables; bad rows name their file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from avkd.core.errors import AvkdError, UsageError
from avkd.data.clips.layout import (
    detect_format,
    list_clips,
    parse_audioset,
    parse_vggsound,
    read_class_labels,
)

VGG = (
    "---g-f_I2yQ,1,people marching,test\n"
    '--0PQM4-hqg,30,"cattle, bovinae cowbell",train\n'
    "\n"
    "--56QUhyDQM,185,playing tennis,valid\n"
)
# AudioSet's layout: three comment lines, ", " separators, quoted comma-separated MIDs.
AUDIOSET = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=3, num_segs=3, num_unique_labels=3, num_positive_labels=4\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
    '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"\n'
    '--ZhevVpy1s, 50.000, 60.000, "/m/012xff"\n'
    '--aE2O5G5WE, 0.000, 10.000, "/m/09x0r"\n'
)
CLASSES = 'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/t/dd00088,"Gush"\n2,/m/012xff,"Toothbrush"\n'


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_vggsound_rows(tmp_path: Path) -> None:
    clips = parse_vggsound(write(tmp_path, "vggsound.csv", VGG))
    assert [(c.ytid, c.start, c.labels, c.split, c.line) for c in clips] == [
        ("---g-f_I2yQ", 1.0, ("people marching",), "test", 1),
        ("--0PQM4-hqg", 30.0, ("cattle, bovinae cowbell",), "train", 2),  # quoted comma kept
        ("--56QUhyDQM", 185.0, ("playing tennis",), "val", 4),  # 'valid' is val; the blank line counted
    ]
    assert clips[0].key == "test/---g-f_I2yQ_000001"
    header = parse_vggsound(write(tmp_path, "h.csv", "youtube_id,start_seconds,label,split\n" + VGG))
    assert [c.line for c in header] == [2, 3, 5]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("a,1,dog,train\nb,2,dog\n", 2, "expected 4 fields"),
        ("a,1,dog,train\nb,2.5,dog,train\n", 2, "not a whole number"),
        ("a,-3,dog,train\n", 1, "not a whole number"),
        ("a,1,dog,train\n\nb,2,dog,holdout\n", 3, "split 'holdout'"),
        ("a,1,,train\n", 1, "empty label"),
    ],
)
def test_bad_vggsound_rows_name_the_line(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = write(tmp_path, "vggsound.csv", text)
    with pytest.raises(AvkdError, match=rf"^{path}:{line}: .*{reason}"):
        parse_vggsound(path)


def test_audioset_segments(tmp_path: Path) -> None:
    path = write(tmp_path, "eval_segments.csv", AUDIOSET)
    assert detect_format(path) == "audioset"
    assert detect_format(write(tmp_path, "v.csv", VGG)) == "vggsound"
    clips = parse_audioset(path)
    assert [(c.ytid, c.start, c.end, c.labels, c.split, c.line) for c in clips] == [
        ("--PJHxphWEs", 30.0, 40.0, ("/m/09x0r", "/t/dd00088"), "test", 4),
        ("--ZhevVpy1s", 50.0, 60.0, ("/m/012xff",), "test", 5),
        ("--aE2O5G5WE", 0.0, 10.0, ("/m/09x0r",), "test", 6),
    ]
    train = write(tmp_path, "balanced_train_segments.csv", AUDIOSET)
    assert {c.split for c in parse_audioset(train)} == {"train"}
    assert {c.split for c in parse_audioset(train, split="validation")} == {"val"}
    bad = write(tmp_path, "x.csv", AUDIOSET + '--x, 20.000, 10.000, "/m/09x0r"\n')
    with pytest.raises(AvkdError, match=rf"^{bad}:7: end_seconds 10.000 is not after"):
        parse_audioset(bad)
    empty = write(tmp_path, "y.csv", AUDIOSET + '--y, 1.000, 2.000, ""\n')
    with pytest.raises(AvkdError, match=rf"^{empty}:7: no positive_labels"):
        parse_audioset(empty)


def test_class_table_and_lookup(tmp_path: Path) -> None:
    table = write(tmp_path, "class_labels_indices.csv", CLASSES)
    assert read_class_labels(table)[1] == {"index": 1, "mid": "/t/dd00088", "name": "Gush"}
    root = tmp_path / "media"
    root.mkdir()
    corpus = list_clips(root, write(tmp_path, "eval_segments.csv", AUDIOSET), classes_file=table)
    assert corpus.multi_label and corpus.format == "audioset"
    assert [corpus.label_indices(c) for c in corpus.clips] == [[0, 1], [2], [0]]
    unknown = write(tmp_path, "u.csv", AUDIOSET + '--z, 1.000, 2.000, "/m/nope"\n')
    with pytest.raises(AvkdError, match=rf"^{unknown}:7: label '/m/nope' is not in"):
        list_clips(root, unknown, classes_file=table)
    gap = write(tmp_path, "gap.csv", "index,mid,display_name\n0,/m/a,A\n2,/m/b,B\n")
    with pytest.raises(AvkdError, match=r"indices must be 0\.\.1"):
        read_class_labels(gap)
    with pytest.raises(AvkdError, match=r":1: expected the header"):
        read_class_labels(write(tmp_path, "nohead.csv", "0,/m/a,A\n"))


def test_media_paths_classes_and_duplicates(tmp_path: Path) -> None:
    root = tmp_path / "vgg"
    (root / "video").mkdir(parents=True)
    (root / "video" / "--0PQM4-hqg_30.mp4").write_bytes(b"x")  # the unpadded name, found second
    (root / "video" / "---g-f_I2yQ_000001.mp4").write_bytes(b"x")
    labels = write(tmp_path, "vggsound.csv", VGG + "---g-f_I2yQ,1,people marching,test\n")
    corpus = list_clips(root, labels)
    assert corpus.format == "vggsound" and not corpus.multi_label and corpus.duplicates == 1
    assert [c.path.name for c in corpus.clips] == [
        "---g-f_I2yQ_000001.mp4",
        "--0PQM4-hqg_30.mp4",
        "--56QUhyDQM_000185.mp4",  # missing: the first candidate, for the failures list
    ]
    assert [c["name"] for c in corpus.classes] == [
        "cattle, bovinae cowbell",
        "people marching",
        "playing tennis",
    ]
    assert [corpus.label_indices(c) for c in corpus.clips] == [[1], [0], [2]]
    assert [c.split for c in list_clips(root, labels, splits=["test", "val"]).clips] == ["test", "val"]
    clash = write(tmp_path, "clash.csv", VGG + "---g-f_I2yQ,1,dog barking,test\n")
    with pytest.raises(AvkdError, match=r"clash.csv:5: clip ---g-f_I2yQ_000001 is listed again .*line 1"):
        list_clips(root, clash)
    with pytest.raises(UsageError, match="unknown split"):
        list_clips(root, labels, splits=["nope"])
    with pytest.raises(UsageError, match="template"):
        list_clips(root, labels, templates=["{ytid}"])
