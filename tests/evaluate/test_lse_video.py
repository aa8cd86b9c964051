"""``avkd lse``'s video front-end (avkd.evaluate.lse_video): 25 fps conversion, SyncNet's face crops, real-format
files, per-video errors, and offsets that agree with ``avkd sync`` on clips with a known audio delay."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from avkd.core.errors import MediaError, UsageError
from avkd.evaluate.lse_video import (
    LseConfig,
    convert_frames,
    expand_videos,
    lse_videos,
    prepare_video,
    syncnet_crops,
)
from avkd.media.encode import write_mp4
from avkd.tasks.sync.offset import sync_video
from tests.evaluate.lse_helpers import lse_oracle_model, talking_head
from tests.oracle import oracle_model

#: (fps, audio delay in frames of that fps): 25 fps as SyncNet reads it, and 30 fps, converted (6 frames at
#: 30 fps = 200 ms = 5 frames at 25 fps).
DELAYS = [(25, -7), (25, 4), (30, -6), (30, 12)]
SEED = 4


@pytest.fixture(scope="module")
def delayed(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, int], Path]:
    """Real-format clips (44.1 kHz stereo AAC, face off-centre in 320x240) with the voice delayed."""
    root = tmp_path_factory.mktemp("lse_delay")
    return {
        (fps, d): talking_head(root / f"d{fps}_{d}.mp4", fps=fps, shift=d, seed=SEED, seconds=2.0)
        for fps, d in DELAYS
    }


def test_convert_frames_nearest_timestamp() -> None:
    frames = np.arange(30)[:, None, None, None].astype(np.uint8) * np.ones((1, 2, 2, 3), np.uint8)
    out = convert_frames(frames, 30.0)  # 1 s at 30 fps -> 25 frames; frame n shows source round(1.2 n)
    assert out.shape[0] == 25
    assert out[:7, 0, 0, 0].tolist() == [0, 1, 2, 4, 5, 6, 7]
    slow = convert_frames(frames[:22], 22.0)  # 1 s at 22 fps -> 25 frames, some repeated
    assert slow.shape[0] == 25 and slow[-1, 0, 0, 0] == 21
    assert sorted(set(slow[:, 0, 0, 0].tolist())) == list(range(22))
    assert convert_frames(frames, 25.0) is frames


def test_syncnet_crop_geometry() -> None:
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[40:60, 40:60] = 255  # the face box
    boxes = np.array([[40, 40, 60, 60]] * 3)
    crops = syncnet_crops(np.stack([frame] * 3), boxes, size=224)
    # s = 10, centre (50, 50): rows [40, 68), columns [36, 64), a 28 px square scaled by 8
    crop = crops[1, :, :, 0]
    assert crop[4:156, 36:188].min() == 255  # the box: crop rows 0..20, columns 4..24
    assert crop[170:, :].max() == 0 and crop[:, :28].max() == 0  # below the box and left of it: the frame
    # near the frame's corner the crop reaches outside the frame: grey 110 there
    corner = syncnet_crops(np.stack([frame] * 3), np.array([[0, 0, 20, 20]] * 3), size=56)
    assert corner[0, 10, 2, 0] == 110 and corner[0, 10, 20, 0] == 0


def test_syncnet_crop_smooths_the_box_track() -> None:
    frames = np.zeros((20, 120, 120, 3), np.uint8)
    frames[:, 40:80, 40:80] = 200
    boxes = np.array([[40, 40, 80, 80]] * 20)
    jumpy = boxes.copy()
    jumpy[9] = [0, 0, 30, 30]  # one wrong detection
    np.testing.assert_array_equal(syncnet_crops(frames, jumpy), syncnet_crops(frames, boxes))
    assert not np.array_equal(syncnet_crops(frames, jumpy, smoothing=1)[9], syncnet_crops(frames, boxes)[9])
    # a face moving left 2 px a frame: at the first frame, the reference's zero-padded medfilt takes the 7th
    # smallest of (6 zeros, x_0 > ... > x_6) = x_6, the box of frame 6; repeating the ends keeps x_0
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (20, 120, 120, 3), dtype=np.uint8)
    moving = np.array([[60 - 2 * i, 40, 100 - 2 * i, 80] for i in range(20)])
    zeros = syncnet_crops(noisy, moving, ends="zeros")
    np.testing.assert_array_equal(zeros[0], syncnet_crops(noisy[:1], moving[6:7], smoothing=1)[0])
    np.testing.assert_array_equal(
        syncnet_crops(noisy, moving)[0], syncnet_crops(noisy[:1], moving[:1], smoothing=1)[0]
    )
    np.testing.assert_array_equal(zeros[10], syncnet_crops(noisy, moving)[10])  # the middle is the same


def test_prepare_real_format_video(tmp_path: Path) -> None:
    clip = talking_head(tmp_path / "talk.mp4", fps=30, sample_rate=44100, seconds=1.2, at=(150, 60))
    video = prepare_video(clip, LseConfig().build_detector())
    assert video.frames == 30  # 36 frames at 30 fps = 1.2 s = 30 frames at 25 fps
    assert video.crops.shape == (30, 224, 224, 3) and video.crops.dtype == np.uint8
    assert video.mfcc.shape == (13, 4 * 30 - 1)  # 100 MFCC steps per second of the 640·30 samples
    info = video.info
    assert (info["source_fps"], info["source_sample_rate"], info["source_channels"]) == (30.0, 44100, 2)
    assert info["frame_size"] == [320, 240] and info["detector"] == "haar"
    x0, y0, x1, y1 = info["face_box"]
    assert (
        150 < (x0 + x1) / 2 < 310 and 60 < (y0 + y1) / 2 < 220
    )  # on the face pasted at x 150..310, y 60..220


def test_small_faces_need_a_smaller_min_face(tmp_path: Path) -> None:
    clip = talking_head(tmp_path / "far.mp4", seconds=0.4, canvas=(800, 600), at=(500, 300))
    with pytest.raises(MediaError, match="no face found by the haar detector"):
        prepare_video(clip, LseConfig().build_detector())  # a 160 px face is 0.27 of 600 px, under 0.3
    video = prepare_video(clip, LseConfig(min_face=0.2).build_detector())
    x0, y0, x1, y1 = video.info["face_box"]
    assert 500 < (x0 + x1) / 2 < 660 and 300 < (y0 + y1) / 2 < 460


def test_delay_offsets_agree_with_avkd_sync(delayed: dict[tuple[int, int], Path], tmp_path: Path) -> None:
    """The LSE offset of a clip whose voice is delayed by d frames is d·25/fps, positive = audio lags, as the
    offset ``avkd sync`` gives for the same file (with the hand-built oracles, no training)."""
    paths = [delayed[key] for key in DELAYS]
    report = lse_videos(paths, lse_oracle_model(tmp_path / "lse.pt"), LseConfig())
    envelope = oracle_model(tmp_path / "sync.pt")
    for (fps, d), row in zip(DELAYS, report.rows, strict=True):
        assert row.result is not None, row.error
        expected = round(d * 25 / fps)
        assert row.result.offset == expected, (fps, d, row.result.curve)
        assert row.result.offset_reference == -expected
        assert sync_video(row.video, envelope).estimate.offset_frames == expected
        assert row.result.lse_c > 0.2 and row.result.windows == 45  # 2 s = 50 frames at 25 fps


def test_no_face_is_a_per_video_error(tmp_path: Path, delayed: dict[tuple[int, int], Path]) -> None:
    blank = talking_head(tmp_path / "blank.mp4", fps=25, seconds=1.2, face=False)
    mute = tmp_path / "mute.mp4"
    write_mp4(mute, np.full((10, 64, 64, 3), 90, np.uint8), 25.0)
    model = lse_oracle_model(tmp_path / "lse.pt")
    report = lse_videos([blank, mute, delayed[DELAYS[0]]], model, LseConfig())
    bad, silent, good = report.rows
    assert bad.result is None and bad.error.startswith(
        f"{blank}: no face found by the haar detector in 30 frames"
    )
    assert silent.error == f"{mute}: no audio stream"
    assert good.result is not None and math.isfinite(good.result.lse_d)
    assert (report.summary.scored, report.summary.failed, report.all_failed) == (1, 2, False)
    assert report.summary.lse_d == good.result.lse_d
    # the fixed box needs no face, nor do boxes from a file (keyed by the file's stem): the same video is scored
    assert lse_videos([blank], model, LseConfig(detector="fixed")).rows[0].result is not None
    listed = tmp_path / "boxes.txt"
    listed.write_text("key,frame,x0,y0,x1,y1\nblank,0,150,60,270,190\n")
    row = lse_videos([blank], model, LseConfig(detector="boxes", boxes_file=str(listed))).rows[0]
    assert (
        row.result is not None
        and row.info["face_box"] == [150, 60, 270, 190]
        and row.info["detector"] == "boxes"
    )


def test_expand_videos(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/2.mp4", "a/b/1.MOV", "a/notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert expand_videos([tmp_path / "a"]) == [tmp_path / "a/2.mp4", tmp_path / "a/b/1.MOV"]
    with pytest.raises(UsageError, match="no such file"):
        expand_videos([tmp_path / "missing.mp4"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no video files"):
        expand_videos([tmp_path / "empty"])


def test_bad_settings_are_usage_errors(tmp_path: Path) -> None:
    model = lse_oracle_model(tmp_path / "lse.pt")
    with pytest.raises(UsageError, match="--detector 'dlib'"):
        lse_videos([model], model, LseConfig(detector="dlib"))
    with pytest.raises(UsageError, match="--protocol"):
        lse_videos([model], model, LseConfig(protocol="official"))
