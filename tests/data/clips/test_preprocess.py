"""``avkd preprocess clips`` end to end at toy size: what is stored, bad clips in the failures list, resume,
AudioSet CSVs, and the command line."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from avkd.cli.main import main
from avkd.core.errors import AvkdError
from avkd.core.jsonl import read_jsonl
from avkd.data.clips import preprocess as pre
from avkd.data.clips.audio import clip_fbank
from avkd.data.clips.layout import parse_vggsound, read_class_labels
from avkd.data.clips.preprocess import frame_indices, preprocess_clips, resize_frames
from avkd.data.clips.store import ClipStore
from avkd.data.failures import check_failure_share, read_failures
from avkd.media.encode import write_mp4
from avkd.media.video import decode
from tests.data.clips.conftest import SMALL


def test_frame_indices() -> None:
    assert frame_indices(250, 10).tolist() == [0, 27, 55, 83, 110, 138, 166, 193, 221, 249]
    assert frame_indices(10, 10).tolist() == list(range(10))
    assert frame_indices(4, 10).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]  # repeats when short
    assert frame_indices(300, 1).tolist() == [0]


def test_what_is_stored(clip_features, clip_corpus: Path) -> None:
    art = clip_features
    assert art.kind == "clips-features" and art.metrics["clips"] == 9 and art.metrics["failures"] == 0
    assert art.metrics["per_split"] == {"train": 6, "test": 3} and art.manifest["format"] == "vggsound"
    store = ClipStore(art)
    rows = {r.key: r for r in parse_vggsound(clip_corpus / "vggsound.csv")}
    assert list(store) == list(rows)  # the CSV's order
    names = [c["name"] for c in store.classes]
    key = next(iter(store))
    info = store.info(key)
    frames, fbank = store.frames(key), store.fbank(key)
    assert frames.shape == (10, 32, 32, 3) and frames.dtype == np.uint8
    assert fbank.shape == (32, 64) and fbank.dtype == np.float32
    assert names[store.labels(key)[0]] == rows[key].labels[0]
    assert info["source"] == f"video/{key.split('/')[1]}.mp4" and info["mel_valid"] == 64
    # The same numbers from the mp4 by hand: frames at floor(linspace(0, N-1, 10)), resized; the fbank.
    media = decode(clip_corpus / info["source"])
    index = np.floor(np.linspace(0, media.n_frames - 1, 10)).astype(int)
    assert np.array_equal(frames, resize_frames(media.frames[index], 32))
    expected, _ = clip_fbank(media.audio, media.sample_rate, num_mel_bins=32, target_length=64)
    np.testing.assert_allclose(fbank, expected, rtol=1e-6)
    with h5py.File(art.path / info["part"]) as h5:
        group = h5[key]
        assert np.allclose(group.attrs["times"], index / 25.0)
        assert group["frames"].chunks == (1, 32, 32, 3) and group["frames"].attrs["codec"] == "raw"


def test_resize_is_antialiased_bicubic_of_the_whole_frame() -> None:
    frame = np.zeros((1, 48, 64, 3), np.uint8)
    frame[:, :, 32:] = 255  # right half white: stays the right half after squeezing 64 -> 32 columns
    out = resize_frames(frame, 32)
    assert out.shape == (1, 32, 32, 3)
    assert (out[0, :, :14] == 0).all() and (out[0, :, 18:] == 255).all() and 0 < out[0, 0, 16, 0] < 255


def broken_copy(corpus: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the corpus with four bad clips; returns the root and each bad key's expected reason."""
    root = tmp_path / "broken"
    shutil.copytree(corpus, root)
    keys = [r.key for r in parse_vggsound(root / "vggsound.csv")]
    video = root / "video"

    def path(key: str) -> Path:
        return video / f"{key.split('/')[1]}.mp4"

    path(keys[1]).unlink()
    data = path(keys[3]).read_bytes()
    path(keys[3]).write_bytes(data[: len(data) // 2])  # cut short
    write_mp4(path(keys[5]), np.full((30, 48, 64, 3), 90, np.uint8), 25.0)  # no audio
    t = np.arange(8000) / 16000
    write_mp4(path(keys[7]), np.full((12, 48, 64, 3), 90, np.uint8), 25.0, 0.3 * np.sin(2 * np.pi * 500 * t))
    return root, {
        keys[1]: "file missing",
        keys[3]: "trunc|corrupt|cannot",
        keys[5]: "no audio",
        keys[7]: "too short",
    }


def test_bad_clips_are_listed_and_the_rest_goes_on(clip_corpus: Path, tmp_path: Path) -> None:
    root, bad = broken_copy(clip_corpus, tmp_path)
    config = dataclasses.replace(SMALL, decoder="pyav")
    result = preprocess_clips(config, root, root / "vggsound.csv", tmp_path / "feats", show_progress=False)
    art = result.artifact
    assert result.processed == 9 and result.failed == 4 and art.metrics["clips"] == 5
    failures = read_failures(art)
    assert [f["key"] for f in failures] == list(bad)  # in CSV order
    for failure in failures:
        assert any(word in failure["reason"] for word in bad[failure["key"]].split("|")), failure
    assert failures[3]["reason"].startswith("too short: 0.48 s of video")
    assert not set(bad) & set(ClipStore(art))
    with pytest.raises(AvkdError, match=r"4 of 9 clips failed \(44.4% > 1%\)"):
        check_failure_share(art, config.max_failures, unit="clips")
    check_failure_share(art, 0.5, unit="clips")


def killed_after(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    real = pre._process
    calls = {"n": 0}

    def dying(job):
        calls["n"] += 1
        if calls["n"] == n + 1:
            raise KeyboardInterrupt  # a kill after n clips
        return real(job)

    monkeypatch.setattr(pre, "_process", dying)


def test_resume_skips_finished_parts(clip_features, clip_corpus: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "feats"
    labels = clip_corpus / "vggsound.csv"
    killed_after(monkeypatch, 6)  # one part of 4 on disk, two clips in flight
    with pytest.raises(KeyboardInterrupt):
        preprocess_clips(SMALL, clip_corpus, labels, out, show_progress=False)
    parts = Path(f"{out}.partial") / "parts"
    assert [p.name for p in parts.glob("part-*.h5")] == ["part-00000.h5"]
    kept = (parts / "part-00000.h5").read_bytes()
    monkeypatch.undo()
    with pytest.raises(AvkdError, match="--resume"):
        preprocess_clips(SMALL, clip_corpus, labels, out, show_progress=False)
    with pytest.raises(AvkdError, match="config differs"):
        preprocess_clips(dataclasses.replace(SMALL, size=16), clip_corpus, labels, out, resume=True)
    result = preprocess_clips(SMALL, clip_corpus, labels, out, resume=True, show_progress=False)
    assert result.skipped == 4 and result.processed == 5
    assert (out / "parts" / "part-00000.h5").read_bytes() == kept  # not written again
    fresh = ClipStore(clip_features)
    resumed = ClipStore(result.artifact)
    strip = ("part",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in read_jsonl(out / "clips.jsonl")] == [
        {k: v for k, v in r.items() if k not in strip} for r in read_jsonl(clip_features.path / "clips.jsonl")
    ]
    for key in fresh:
        assert np.array_equal(fresh.frames(key), resumed.frames(key))
        assert np.array_equal(fresh.fbank(key), resumed.fbank(key))
    assert result.artifact.id == clip_features.id  # the same bytes as a run that was never killed
    again = preprocess_clips(SMALL, clip_corpus, labels, out, resume=True, show_progress=False)
    assert again.processed == 0 and again.artifact.id == result.artifact.id


def test_audioset_csv_multi_label_jpeg(clip_corpus: Path, tmp_path: Path) -> None:
    """An AudioSet segment CSV over the same files (unpadded names, as some AudioSet copies have), with a
    second label on some clips, read with its class table; frames stored as JPEG."""
    rows = parse_vggsound(clip_corpus / "vggsound.csv")[:4]
    root = tmp_path / "as"
    root.mkdir()
    for r in rows:
        shutil.copy(clip_corpus / "video" / f"{r.name}.mp4", root / f"{r.ytid}_{int(r.start)}.mp4")
    classes = [c["name"] for c in read_class_labels(clip_corpus / "classes.csv")]
    mids = {name: f"/m/{i}" for i, name in enumerate(classes)}
    lines = [
        "# Segments csv created by a test",
        "# num_ytids=4",
        "# YTID, start_seconds, end_seconds, positive_labels",
    ]
    for i, r in enumerate(rows):
        labels = [mids[r.labels[0]]] + (["/m/extra"] if i % 2 else [])
        lines.append(f'{r.ytid}, {r.start:.3f}, {r.start + 10:.3f}, "{",".join(labels)}"')
    (tmp_path / "eval_segments.csv").write_text("\n".join(lines) + "\n")
    table = "index,mid,display_name\n" + "".join(f'{i},{m},"{n}"\n' for i, (n, m) in enumerate(mids.items()))
    (tmp_path / "class_labels_indices.csv").write_text(table + f"{len(mids)},/m/extra,Extra\n")
    config = dataclasses.replace(SMALL, frame_codec="jpeg", templates=["{id}_{start}"])
    art = preprocess_clips(
        config,
        root,
        tmp_path / "eval_segments.csv",
        tmp_path / "out",
        classes_file=tmp_path / "class_labels_indices.csv",
        show_progress=False,
    ).artifact
    assert art.manifest["multi_label"] and art.manifest["format"] == "audioset"
    assert art.metrics["per_split"] == {"test": 4} and art.metrics["classes"] == 4
    store = ClipStore(art)
    assert [store.labels(k) for k in store] == [
        [classes.index(r.labels[0])] + ([3] if i % 2 else []) for i, r in enumerate(rows)
    ]
    frames = store.frames(next(iter(store)))
    assert frames.shape == (10, 32, 32, 3) and frames.dtype == np.uint8


def test_command_line(clip_corpus: Path, tmp_path: Path, capsys) -> None:
    root, _ = broken_copy(clip_corpus, tmp_path)
    args = ["preprocess", "clips", str(root), "--labels", str(root / "vggsound.csv"), "--size", "32"]
    args += ["--mel-frames", "64", "--frames", "4", "--decoder", "pyav", "--out"]
    assert main([*args, str(tmp_path / "a")]) == 1  # 4 of 9 failed: over --max-failures 0.01
    err = capsys.readouterr().err
    assert "5 clips (" in err and "of 3 classes" in err and "failed: " in err and "44.4% > 1%" in err
    assert main([*args, str(tmp_path / "b"), "--max-failures", "0.5"]) == 0
    store = ClipStore(tmp_path / "b")
    assert store.frames(next(iter(store))).shape == (4, 32, 32, 3) and store.fbank(
        next(iter(store))
    ).shape == (128, 64)
    synth = [
        "data",
        "synth",
        "clips",
        "--out",
        str(tmp_path / "s"),
        "--classes",
        "2",
        "--clips-per-class",
        "2",
    ]
    assert main([*synth, "--seconds", "1", "--set", "width=32", "--set", "height=32", "--workers", "1"]) == 0
    assert len(parse_vggsound(tmp_path / "s" / "vggsound.csv")) == 4
    assert main(["data", "synth", "clips", "--out", str(tmp_path / "t"), "--classes", "1"]) == 2
