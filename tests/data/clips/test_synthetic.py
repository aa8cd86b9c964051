"""The synthetic clip corpus: VGGSound's layout, deterministic by seed, the class in both audio and video."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from avkd.core.errors import ConfigError, UsageError
from avkd.data.clips.audio import FBANK_MEAN, FBANK_STD
from avkd.data.clips.layout import list_clips, parse_vggsound, read_class_labels
from avkd.data.clips.store import ClipStore
from avkd.data.clips.synthetic import class_style, render_clip, synthesize_clips
from avkd.media.video import decode, probe
from tests.data.clips.conftest import TINY


def test_layout_and_streams(clip_corpus: Path) -> None:
    rows = parse_vggsound(clip_corpus / "vggsound.csv")
    assert len(rows) == 9 and [r.ytid for r in rows] == sorted(r.ytid for r in rows)
    names = [s["name"] for s in read_class_labels(clip_corpus / "classes.csv")]
    assert names == [class_style(i, 3).name for i in range(3)] and "," in names[0]
    for name in names:  # two train clips and one test clip per class
        assert sorted(r.split for r in rows if r.labels == (name,)) == ["test", "train", "train"]
    corpus = list_clips(clip_corpus, clip_corpus / "vggsound.csv", classes_file=clip_corpus / "classes.csv")
    assert all(c.path.is_file() and c.path.parent.name == "video" for c in corpus.clips)
    info = probe(corpus.clips[0].path)
    assert (info["video_codec"], info["audio_codec"], info["width"], info["height"]) == (
        "h264",
        "aac",
        64,
        48,
    )
    assert info["fps"] == 25 and info["sample_rate"] == 16000 and info["n_frames"] == 30
    meta = json.loads((clip_corpus / "synth.json").read_text())
    assert meta["config"]["seed"] == TINY.seed and len(meta["clips"]) == 9


def test_same_seed_same_files_other_seed_other_corpus(clip_corpus: Path, tmp_path: Path) -> None:
    small = dataclasses.replace(TINY, classes=2, clips_per_class=2)
    a = synthesize_clips(tmp_path / "a", small)
    b = synthesize_clips(tmp_path / "b", small)
    files = sorted(p.relative_to(a.root) for p in a.root.rglob("*.mp4"))
    assert len(files) == 4 and files == sorted(p.relative_to(b.root) for p in b.root.rglob("*.mp4"))
    assert all((a.root / f).read_bytes() == (b.root / f).read_bytes() for f in files)
    assert (a.root / "vggsound.csv").read_text() == (b.root / "vggsound.csv").read_text()
    c = synthesize_clips(tmp_path / "c", dataclasses.replace(small, seed=4))
    assert (c.root / "vggsound.csv").read_text() != (a.root / "vggsound.csv").read_text()
    with pytest.raises(UsageError, match="not empty"):
        synthesize_clips(tmp_path / "a", small)
    with pytest.raises(ConfigError, match="even"):
        synthesize_clips(tmp_path / "d", dataclasses.replace(small, width=65))


def shape_hue(frames: np.ndarray) -> float:
    """Median OpenCV hue (0..180) of the saturated pixels: the class shape (the background is dull)."""
    hsv = cv2.cvtColor(frames.reshape(-1, 1, 3), cv2.COLOR_RGB2HSV).reshape(-1, 3)
    return float(np.median(hsv[hsv[:, 1] > 150, 0]))


def test_the_class_shows_in_video_and_in_audio(clip_features) -> None:
    """Through mp4 encoding and preprocessing: the shape's hue names the class, and so does the audio's
    loudest mel bin (the tone rises with the class), each on its own."""
    store = ClipStore(clip_features)
    hues = [class_style(i, 3).color for i in range(3)]
    expected = [float(cv2.cvtColor(np.uint8([[c]]), cv2.COLOR_RGB2HSV)[0, 0, 0]) for c in hues]
    peaks: dict[int, set[int]] = {0: set(), 1: set(), 2: set()}
    for key in store:
        label = store.labels(key)[0]
        hue = shape_hue(store.frames(key))
        distance = [min(abs(hue - e), 180 - abs(hue - e)) for e in expected]
        assert int(np.argmin(distance)) == label, (key, hue, expected)
        fbank = store.fbank(key)[:, : store.info(key)["mel_valid"]]
        power = np.exp(fbank * FBANK_STD + FBANK_MEAN)  # undo the normalisation and the log
        peaks[label].add(int(power.mean(axis=1).argmax()))
    assert max(peaks[0]) < min(peaks[1]) and max(peaks[1]) < min(peaks[2])


def test_shape_pulses_with_the_sound() -> None:
    frames, audio = render_clip(11, class_style(1, 4), dataclasses.replace(TINY, seconds=3.0))
    assert frames.shape == (75, 48, 64, 3) and audio.shape == (48000,) and np.abs(audio).max() < 1.0
    loud = np.array([np.sqrt(np.mean(audio[640 * i : 640 * (i + 1)] ** 2)) for i in range(75)])
    hsv = cv2.cvtColor(frames.reshape(-1, 64, 3), cv2.COLOR_RGB2HSV).reshape(75, -1, 3)
    area = (hsv[..., 1] > 150).sum(axis=1)
    assert np.corrcoef(loud, area)[0, 1] > 0.5


def test_frames_decode_as_rendered(clip_corpus: Path) -> None:
    meta = json.loads((clip_corpus / "synth.json").read_text())["clips"][0]
    frames, _ = render_clip(meta["seed"], class_style(meta["class"], 3), TINY)
    decoded = decode(clip_corpus / meta["path"], decoder="pyav").frames
    assert decoded.shape == frames.shape and np.abs(decoded.astype(int) - frames).mean() < 4
