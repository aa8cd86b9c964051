"""The synthetic LRS2 corpus: layout, determinism, decodability, and a mouth that follows the voice in time."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import numpy as np
import pytest

from avkd.core.errors import ConfigError, UsageError
from avkd.data.lrs2.synthetic import (
    SynthLRS2Config,
    render_utterance,
    speaker_style,
    synthesize_lrs2,
    write_utterance,
)

CONFIG = SynthLRS2Config(utterances=8, speakers=3, seed=11, min_seconds=1.2, max_seconds=2.0, workers=2)
SPLIT_FILES = ("pretrain.txt", "train.txt", "val.txt", "test.txt")
HOP = 640  # audio samples per video frame at 16 kHz / 25 fps


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, list]:
    root = tmp_path_factory.mktemp("synth") / "lrs2"
    calls: list[tuple[int, int]] = []
    summary = synthesize_lrs2(root, CONFIG, progress=lambda done, total: calls.append((done, total)))
    return root, summary, calls


def decode(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """All RGB frames, all audio samples (mono), and the stream parameters, via PyAV."""
    with av.open(str(path)) as container:
        vs, aus = container.streams.video[0], container.streams.audio[0]
        info = {"fps": float(vs.average_rate), "rate": aus.rate, "channels": aus.channels}
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    with av.open(str(path)) as container:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    return frames, audio, info


def mouth_proxy(frames: np.ndarray) -> np.ndarray:
    """Contrast (grey-level std) inside the lower half of the default fixed face box: rises as the mouth opens."""
    grey = frames[:, 80:140, 30:130].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return grey.std(axis=(1, 2))


def frame_rms(audio: np.ndarray, n: int) -> np.ndarray:
    return np.sqrt((audio[: n * HOP].astype(np.float64).reshape(n, HOP) ** 2).mean(axis=1))


def lag_correlations(video: np.ndarray, audio_rms: np.ndarray, max_lag: int) -> dict[int, float]:
    """Pearson r between video[n] and audio_rms[n + lag]."""
    n = len(video)
    out = {}
    for lag in range(-max_lag, max_lag + 1):
        a = video[max(0, -lag) : n - max(0, lag)]
        b = audio_rms[max(0, lag) : n - max(0, -lag)]
        out[lag] = float(np.corrcoef(a, b)[0, 1])
    return out


def read_lines(root: Path, name: str) -> list[str]:
    return (root / name).read_text().splitlines()


def test_layout_split_files_and_metadata(corpus) -> None:
    root, summary, calls = corpus
    assert sum(summary.counts.values()) == CONFIG.utterances
    assert all(summary.counts[s] >= 1 for s in ("pretrain", "train", "val", "test"))
    assert calls[-1] == (CONFIG.utterances, CONFIG.utterances) and len(calls) == CONFIG.utterances
    listed = set()
    for name in SPLIT_FILES:
        lines = read_lines(root, name)
        assert len(lines) == summary.counts[name[:-4]]
        subset = "pretrain" if name == "pretrain.txt" else "main"
        for line in lines:
            if name == "test.txt":
                assert re.fullmatch(r"\d{19}/\d{5} (NF|MV)", line), line
            else:
                assert re.fullmatch(r"\d{19}/\d{5}", line), line
            path = root / subset / f"{line.split()[0]}.mp4"
            assert path.is_file() and path.stat().st_size > 0
            listed.add(path)
    assert set(root.rglob("*.mp4")) == listed  # no extra or temporary files
    assert not list(root.rglob(".*"))
    meta = json.loads((root / "synth.json").read_text())
    assert meta["avkd_version"]  # and its "config" rebuilds the corpus (test_same_seed_same_corpus_...)
    assert len(meta["utterances"]) == CONFIG.utterances
    for u in meta["utterances"]:
        assert (root / u["path"]).is_file() and u["audio_shift_frames"] == 0
        assert u["n_frames"] == round(u["seconds"] * 25)
        assert CONFIG.min_seconds - 0.02 <= u["seconds"] <= CONFIG.max_seconds + 0.02
    assert abs(summary.seconds - sum(u["seconds"] for u in meta["utterances"])) < 1e-6
    assert (root / "lrs2.yaml").is_file()


def test_heldout_speakers_are_disjoint(corpus) -> None:
    root = corpus[0]
    speakers = {name: {line.split("/")[0] for line in read_lines(root, name)} for name in SPLIT_FILES}
    seen = speakers["pretrain.txt"] | speakers["train.txt"]
    assert not seen & (speakers["val.txt"] | speakers["test.txt"])


def test_same_seed_same_corpus_whatever_the_worker_count(corpus, tmp_path: Path) -> None:
    """The config recorded in synth.json, run with another worker count, rebuilds the corpus byte for byte."""
    root = corpus[0]
    again = tmp_path / "again"
    recorded = json.loads((root / "synth.json").read_text())["config"]
    config = SynthLRS2Config(**{**recorded, "workers": 1})
    assert CONFIG.workers != 1
    synthesize_lrs2(again, config)
    for name in SPLIT_FILES:
        assert (root / name).read_bytes() == (again / name).read_bytes()
    meta_a = json.loads((root / "synth.json").read_text())["utterances"]
    meta_b = json.loads((again / "synth.json").read_text())["utterances"]
    assert meta_a == meta_b
    clip = "main/" + read_lines(root, "val.txt")[0] + ".mp4"
    frames_a, audio_a, _ = decode(root / clip)
    frames_b, audio_b, _ = decode(again / clip)
    assert np.array_equal(audio_a, audio_b)
    # write_mp4 encodes with one x264 thread, so the same frames give the same bytes (threaded libx264 does not).
    assert np.array_equal(frames_a, frames_b)
    assert (root / clip).read_bytes() == (again / clip).read_bytes()


def test_rendering_is_deterministic() -> None:
    style = speaker_style(4)
    a = render_utterance(9, 1.0, style)
    b = render_utterance(9, 1.0, style)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert speaker_style(4) == style and speaker_style(5) != style


def test_other_seed_other_corpus(corpus, tmp_path: Path) -> None:
    other = tmp_path / "other"
    synthesize_lrs2(other, SynthLRS2Config(**{**CONFIG.__dict__, "seed": 12, "workers": 1, "utterances": 4}))
    assert read_lines(corpus[0], "val.txt")[0] != read_lines(other, "val.txt")[0]


def test_decodes_with_pyav(corpus) -> None:
    root = corpus[0]
    meta = json.loads((root / "synth.json").read_text())
    for u in meta["utterances"][:3]:
        frames, audio, info = decode(root / u["path"])
        assert info == {"fps": 25.0, "rate": 16000, "channels": 1}
        assert frames.shape == (u["n_frames"], 160, 160, 3)
        # AAC pads the last frame of 1024 samples; the clip's own audio is n_frames * 640 samples.
        assert u["n_frames"] * HOP <= len(audio) < u["n_frames"] * HOP + 1024


def test_decodes_with_decord(corpus) -> None:
    decord = pytest.importorskip("decord")
    root = corpus[0]
    u = json.loads((root / "synth.json").read_text())["utterances"][0]
    vr = decord.VideoReader(str(root / u["path"]))
    assert len(vr) == u["n_frames"] and vr.get_avg_fps() == 25.0 and vr[0].shape == (160, 160, 3)
    ar = decord.AudioReader(str(root / u["path"]), sample_rate=16000, mono=True)
    assert ar.shape[0] == 1 and ar.shape[1] >= u["n_frames"] * HOP
    _, audio, _ = decode(root / u["path"])
    assert np.allclose(ar[:].asnumpy()[0, : len(audio)], audio[: ar.shape[1]], atol=1e-5)


def test_mouth_follows_the_audio_envelope_at_zero_lag(corpus) -> None:
    root = corpus[0]
    meta = json.loads((root / "synth.json").read_text())
    for u in meta["utterances"][::3]:
        frames, audio, _ = decode(root / u["path"])
        r = lag_correlations(mouth_proxy(frames), frame_rms(audio, len(frames)), 5)
        assert r[0] > 0.5, (u["path"], r[0])
        assert max(r, key=r.get) == 0, r


@pytest.mark.parametrize("shift", [3, -4])
def test_audio_shift_moves_the_peak(tmp_path: Path, shift: int) -> None:
    style = speaker_style(5)
    path = tmp_path / "shifted.mp4"
    write_utterance(path, 21, 3.0, style, audio_shift_frames=shift)
    frames, audio, _ = decode(path)
    r = lag_correlations(mouth_proxy(frames), frame_rms(audio, len(frames)), 6)
    assert max(r, key=r.get) == shift, r
    # Only the audio moves: the frames are those of the unshifted clip.
    base_frames, base_audio = render_utterance(21, 3.0, style)
    shifted_frames, shifted_audio = render_utterance(21, 3.0, style, audio_shift_frames=shift)
    assert np.array_equal(base_frames, shifted_frames) and len(shifted_audio) == len(base_audio)


def test_render_shapes_and_levels() -> None:
    frames, audio = render_utterance(3, 1.5, speaker_style(1))
    assert frames.shape == (38, 160, 160, 3) and frames.dtype == np.uint8
    assert audio.shape == (38 * HOP,) and audio.dtype == np.float32
    assert 0.4 < np.abs(audio).max() < 0.9
    # Pauses: some frames are near-silent (background noise only), so timing carries information.
    assert (frame_rms(audio, 38) < 0.01).any()


def test_refuses_a_non_empty_output_and_bad_configs(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(UsageError, match="exists and is not empty"):
        synthesize_lrs2(tmp_path, SynthLRS2Config(utterances=4, speakers=3, workers=1))
    with pytest.raises(ConfigError):
        synthesize_lrs2(tmp_path / "a", SynthLRS2Config(speakers=2))
    with pytest.raises(ConfigError):
        synthesize_lrs2(tmp_path / "b", SynthLRS2Config(utterances=3))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
