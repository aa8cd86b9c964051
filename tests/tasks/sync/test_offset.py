"""``avkd sync VIDEO`` (``avkd.tasks.sync.offset``) on real mp4 files, with the envelope oracle as the model: known
offsets are recovered; on videos that are not LRS2 crops the face is found and the crop and detector are reported;
short or silent clips are flagged instead of answered confidently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avkd.cli.main import main
from avkd.data.lrs2.synthetic import speaker_style, write_utterance
from avkd.media.audio import resample
from avkd.media.encode import write_mp4
from avkd.media.video import decode
from tests.oracle import oracle_model


@pytest.mark.parametrize("shift", [0, 4, -6])
def test_sync_cli_recovers_a_known_offset(tmp_path: Path, capsys, shift: int) -> None:
    video = tmp_path / f"shift{shift}.mp4"
    write_utterance(video, seed=11, seconds=4.0, style=speaker_style(3), audio_shift_frames=shift)
    model = oracle_model(tmp_path / "oracle.pt")
    code = main(["sync", str(video), "--model", str(model), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    # A face-centred clip (as LRS2's are) keeps the fixed LRS2 box under --detector auto, though a face is found.
    assert out["detector"] == "fixed" and out["detector_reason"].startswith("the face fills the centre")
    assert out["crop_box"] == [30, 20, 130, 140]
    assert abs(out["offset_frames"] - shift) <= 1
    assert len(out["curve"]) == 31 and out["confidence"] > 0


def test_sync_cli_bad_video(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope")
    code = main(["sync", str(bad), "--model", str(oracle_model(tmp_path / "o.pt"))])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"error: {bad}: ") and err.count("\n") == 1


def in_the_wild(src: Path, dst: Path, fps: float = 30.0, rate: int = 44100) -> tuple[int, int]:
    """The clip's face placed off-centre in a 320x240 frame, re-timed to ``fps``, audio as 44.1 kHz stereo."""
    media = decode(src)
    n = int(media.n_frames * fps / media.fps)
    picked = media.frames[np.minimum((np.arange(n) * media.fps / fps).astype(int), media.n_frames - 1)]
    canvas = np.full((n, 240, 320, 3), 90, np.uint8)
    x0, y0 = 150, 60
    canvas[:, y0 : y0 + 160, x0 : x0 + 160] = picked
    wave = resample(media.audio[0], media.sample_rate, rate)
    write_mp4(dst, canvas, fps, np.stack([wave, wave]), sample_rate=rate)
    return x0, y0


def test_faces_are_found_in_a_video_that_is_not_a_face_crop(tmp_path: Path, capsys) -> None:
    src = tmp_path / "clip.mp4"
    write_utterance(src, seed=11, seconds=4.0, style=speaker_style(3), audio_shift_frames=4)
    x0, y0 = in_the_wild(src, tmp_path / "wild.mp4")
    model = oracle_model(tmp_path / "oracle.pt")
    assert main(["sync", str(tmp_path / "wild.mp4"), "--model", str(model), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["detector"] == "haar" and out["frame_size"] == [320, 240]
    assert out["detector_reason"] == "face found off-centre or small"
    bx0, by0, bx1, by1 = out["crop_box"]
    assert x0 <= bx0 < bx1 <= x0 + 160 and y0 <= by0 < by1 <= y0 + 170  # around the placed face
    assert abs(out["offset_frames"] - 4) <= 1
    assert out["windows"] >= 90 and out["candidates"] == sum(out["support"])
    # Forced onto the fixed LRS2 box, the crop is not the face: the report says which crop it used.
    assert (
        main(["sync", str(tmp_path / "wild.mp4"), "--model", str(model), "--detector", "fixed", "--json"])
        == 0
    )
    fixed = json.loads(capsys.readouterr().out)
    assert fixed["detector"] == "fixed" and fixed["crop_box"][0] < x0  # the centre of the frame, not the face


def test_a_face_crop_without_a_detectable_face_falls_back_to_the_fixed_box(tmp_path: Path, capsys) -> None:
    frames = np.full((40, 160, 160, 3), 128, np.uint8)  # no face at all
    write_mp4(tmp_path / "blank.mp4", frames, 25.0, 0.1 * np.sin(np.arange(40 * 640) / 9.0), 16000)
    assert (
        main(["sync", str(tmp_path / "blank.mp4"), "--model", str(oracle_model(tmp_path / "o.pt")), "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["detector"] == "fixed" and out["detector_reason"] == "no face found"
    assert out["crop_box"] == [30, 20, 130, 140]


def test_short_and_silent_clips_are_flagged(tmp_path: Path, capsys) -> None:
    write_utterance(tmp_path / "long.mp4", seed=5, seconds=2.0, style=speaker_style(1), audio_shift_frames=0)
    media = decode(tmp_path / "long.mp4")
    model = str(oracle_model(tmp_path / "o.pt"))
    write_mp4(tmp_path / "short.mp4", media.frames[:12], 25.0, media.audio[0][: 12 * 640], 16000)  # 0.5 s
    write_mp4(tmp_path / "silent.mp4", media.frames, 25.0, np.zeros(media.n_frames * 640), 16000)
    assert main(["sync", str(tmp_path / "short.mp4"), "--model", model, "--json"]) == 0
    short = json.loads(capsys.readouterr().out)
    assert short["low_confidence"] and "short_clip" in short["flags"] and short["windows"] == 8
    assert main(["sync", str(tmp_path / "silent.mp4"), "--model", model]) == 0
    text = capsys.readouterr().out
    assert "LOW CONFIDENCE" in text and "silent_audio" in text and "candidates scored" in text
