"""avkd.media.video: both decoders give the same Media; every failure is a MediaError naming the file."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest

from avkd.core.errors import MediaError, UsageError
from avkd.media import video
from avkd.media.encode import write_mp4
from tests.clips import remux_faststart

N_FRAMES = 40
FPS = 25
SR = 16000
HAS_DECORD = "decord" in video.available_decoders()
needs_decord = pytest.mark.skipif(not HAS_DECORD, reason="decord is not installed")
DECODER_NAMES = video.available_decoders()


def pattern_frames(n: int = N_FRAMES, size: int = 160) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    frames = np.zeros((n, size, size, 3), np.uint8)
    for i in range(n):
        frames[i, ..., 0] = (xx * 255 // (size - 1)).astype(np.uint8)
        frames[i, ..., 1] = (yy * 255 // (size - 1)).astype(np.uint8)
        frames[i, ..., 2] = 40
        frames[i, 40 + i : 70 + i, 60:100] = (230, 30, 30)  # a red block moving down one pixel per frame
    return frames


def tone(n: int, sr: int, freq: float, amp: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


def peak_hz(wave: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.argmax(spec) * sr / len(wave))


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("media")
    frames = pattern_frames()
    write_mp4(d / "av.mp4", frames, FPS, tone(N_FRAMES * 640, SR, 440.0))
    write_mp4(d / "silent.mp4", frames, FPS, None)
    _write_stereo(d / "stereo.mp4", frames)
    _write_pcm_mkv(d / "pcm.mkv", frames)
    _write_audio_only(d / "audio_only.mp4")
    data = (d / "av.mp4").read_bytes()
    (d / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])  # moov atom (at the end) lost
    remux_faststart(d / "av.mp4", d / "faststart.mp4")
    data = (d / "faststart.mp4").read_bytes()
    (d / "faststart_cut.mp4").write_bytes(data[: int(len(data) * 0.6)])  # moov kept, mdat cut
    (d / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    (d / "empty.mp4").write_bytes(b"")
    return d


def _write_stereo(path: Path, frames: np.ndarray, sr: int = 44100) -> None:
    n = int(len(frames) / FPS * sr)
    wave = np.stack([tone(n, sr, 440.0), tone(n, sr, 1000.0, 0.2)])
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        ast = c.add_stream("aac", rate=sr, layout="stereo")
        for image in frames:
            c.mux(vs.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        c.mux(vs.encode())
        for start in range(0, n, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(wave[:, start : start + 1024]), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts = sr, start
            c.mux(ast.encode(frame))
        c.mux(ast.encode())


def _write_pcm_mkv(path: Path, frames: np.ndarray) -> None:
    """Lossless 16-bit PCM (packed s16) audio, to check the integer sample-format conversion."""
    wave = tone(len(frames) * 640, SR, 440.0)
    pcm = np.rint(wave * 32767).astype(np.int16)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        ast = c.add_stream("pcm_s16le", rate=SR, layout="mono")
        for image in frames:
            c.mux(vs.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        c.mux(vs.encode())
        for start in range(0, len(pcm), 1024):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + 1024], format="s16", layout="mono")
            frame.sample_rate, frame.pts = SR, start
            c.mux(ast.encode(frame))
        c.mux(ast.encode())


def _write_audio_only(path: Path) -> None:
    wave = tone(SR, SR, 440.0)
    with av.open(str(path), "w") as c:
        ast = c.add_stream("aac", rate=SR, layout="mono")
        for start in range(0, len(wave), 1024):
            frame = av.AudioFrame.from_ndarray(wave[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = SR, start
            c.mux(ast.encode(frame))
        c.mux(ast.encode())


# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DECODER_NAMES)
def test_decode_basic(media_dir: Path, name: str) -> None:
    media = video.decode(media_dir / "av.mp4", decoder=name)
    assert media.decoder == name
    assert media.path == media_dir / "av.mp4"
    assert media.frames.shape == (N_FRAMES, 160, 160, 3) and media.frames.dtype == np.uint8
    assert media.n_frames == N_FRAMES
    assert media.fps == pytest.approx(25.0)
    assert media.sample_rate == SR
    assert media.audio is not None and media.audio.dtype == np.float32 and media.audio.shape[0] == 1
    # AAC keeps the length to within one codec frame, and the edit list removes the priming samples
    assert abs(media.audio.shape[1] - N_FRAMES * 640) <= 1024
    assert peak_hz(media.audio[0], SR) == pytest.approx(440.0, abs=12)
    # colours survive in RGB order: the red block of frame 10 sits at rows 50..80, columns 60..100
    block = media.frames[10, 55:75, 65:95].reshape(-1, 3).mean(axis=0)
    assert block[0] > 200 and block[1] < 60 and block[2] < 60
    assert np.abs(media.frames.astype(int) - pattern_frames()).mean() < 4


@needs_decord
def test_decoders_agree(media_dir: Path) -> None:
    a = video.decode(media_dir / "av.mp4", decoder="pyav")
    b = video.decode(media_dir / "av.mp4", decoder="decord")
    assert a.frames.shape == b.frames.shape
    assert a.fps == b.fps and a.sample_rate == b.sample_rate
    diff = np.abs(a.frames.astype(int) - b.frames.astype(int))
    # measured: identical (both use swscale's default BT.601 yuv420p -> rgb24); allow one level for other builds
    assert diff.max() <= 1 and diff.mean() < 0.01
    assert a.audio.shape == b.audio.shape
    assert np.abs(a.audio - b.audio).max() < 1e-5  # measured 1.2e-7


@needs_decord
def test_decoders_agree_on_int16_pcm(media_dir: Path) -> None:
    a = video.decode(media_dir / "pcm.mkv", decoder="pyav")
    b = video.decode(media_dir / "pcm.mkv", decoder="decord")
    expected = np.rint(tone(N_FRAMES * 640, SR, 440.0) * 32767) / 32768
    for media in (a, b):
        assert media.audio.shape == (1, N_FRAMES * 640)
        assert np.abs(media.audio[0] - expected).max() < 1e-6
    assert a.frames.shape == b.frames.shape


@pytest.mark.parametrize("name", DECODER_NAMES)
def test_stereo_keeps_native_rate_and_channels(media_dir: Path, name: str) -> None:
    media = video.decode(media_dir / "stereo.mp4", decoder=name)
    assert media.sample_rate == 44100
    assert media.audio.shape[0] == 2
    assert np.isfinite(media.audio).all() and np.abs(media.audio).max() <= 1.0
    assert peak_hz(media.audio[0], 44100) == pytest.approx(440.0, abs=12)
    assert peak_hz(media.audio[1], 44100) == pytest.approx(1000.0, abs=12)
    reference = video.decode(media_dir / "stereo.mp4", decoder="pyav")
    np.testing.assert_array_equal(media.audio, reference.audio)


@pytest.mark.parametrize("name", DECODER_NAMES)
def test_no_audio_stream(media_dir: Path, name: str) -> None:
    media = video.decode(media_dir / "silent.mp4", decoder=name)
    assert media.audio is None and media.sample_rate is None
    assert media.frames.shape[0] == N_FRAMES


@pytest.mark.parametrize("name", DECODER_NAMES)
def test_audio_not_requested(media_dir: Path, name: str) -> None:
    media = video.decode(media_dir / "av.mp4", decoder=name, audio=False)
    assert media.audio is None and media.sample_rate is None
    assert media.frames.shape[0] == N_FRAMES


@pytest.mark.parametrize("name", DECODER_NAMES)
@pytest.mark.parametrize(
    ("filename", "reason"),
    [
        ("missing.mp4", "file not found"),
        ("empty.mp4", "empty file"),
        ("garbage.mp4", "cannot open"),
        ("cut.mp4", "cannot open"),
        ("faststart_cut.mp4", "truncated"),
        ("audio_only.mp4", "no video stream"),
    ],
)
def test_broken_files_raise_media_error(media_dir: Path, name: str, filename: str, reason: str) -> None:
    path = media_dir / filename
    with pytest.raises(MediaError) as info:
        video.decode(path, decoder=name)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert reason in message


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not a file"):
        video.decode(tmp_path, decoder="pyav")


@needs_decord
@pytest.mark.parametrize("exc_name", ["DECORDError", "RuntimeError"])
def test_raw_decord_errors_are_wrapped(
    media_dir: Path, monkeypatch: pytest.MonkeyPatch, exc_name: str
) -> None:
    import decord

    exc_type = getattr(decord, exc_name, None) or RuntimeError

    def broken(*args, **kwargs):
        raise exc_type("[00:00:00] /src/video/video_reader.cc:1: Error: something deep inside decord")

    monkeypatch.setattr(decord, "VideoReader", broken)
    path = media_dir / "av.mp4"
    with pytest.raises(MediaError, match="something deep inside decord") as info:
        video.decode(path, decoder="decord")
    assert str(info.value).startswith(f"{path}: ")


def test_unexpected_exceptions_are_wrapped(media_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(path, audio=True):
        raise KeyError("weird")

    monkeypatch.setattr(video.DECODERS, "get", lambda name: boom)
    with pytest.raises(MediaError, match="KeyError"):
        video.decode(media_dir / "av.mp4", decoder="pyav")


def test_audio_frame_formats() -> None:
    ramp = np.linspace(-1, 1, 10, endpoint=False)
    cases = {
        "s16": (np.rint(ramp * 32767).astype(np.int16), 32768.0),
        "s32": (np.rint(ramp * 2147483000).astype(np.int32), 2147483648.0),
        "flt": (ramp.astype(np.float32), 1.0),
        "dbl": (ramp.astype(np.float64), 1.0),
    }
    for fmt, (mono, scale) in cases.items():
        stereo = np.stack([mono, -mono])  # (2, 10)
        packed = av.AudioFrame.from_ndarray(stereo.T.reshape(1, -1).copy(), format=fmt, layout="stereo")
        out = video._audio_frame_to_float(packed)
        assert out.shape == (2, 10) and out.dtype == np.float32
        np.testing.assert_allclose(out, stereo / scale, atol=1e-6)
        planar = av.AudioFrame.from_ndarray(stereo.copy(), format=fmt + "p", layout="stereo")
        np.testing.assert_allclose(video._audio_frame_to_float(planar), stereo / scale, atol=1e-6)
    u8 = av.AudioFrame.from_ndarray(np.array([[0, 128, 255]], np.uint8), format="u8", layout="mono")
    np.testing.assert_allclose(video._audio_frame_to_float(u8), [[-1.0, 0.0, 127 / 128]])


def test_probe(media_dir: Path) -> None:
    info = video.probe(media_dir / "av.mp4")
    assert info["fps"] == pytest.approx(25.0)
    assert info["n_frames"] == N_FRAMES
    assert (info["width"], info["height"]) == (160, 160)
    assert info["has_audio"] is True and info["sample_rate"] == SR and info["channels"] == 1
    assert info["duration"] == pytest.approx(N_FRAMES / FPS, abs=0.1)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    silent = video.probe(media_dir / "silent.mp4")
    assert silent["has_audio"] is False and silent["sample_rate"] is None and silent["channels"] is None
    stereo = video.probe(media_dir / "stereo.mp4")
    assert stereo["sample_rate"] == 44100 and stereo["channels"] == 2
    for bad in ("garbage.mp4", "missing.mp4", "audio_only.mp4"):
        with pytest.raises(MediaError, match=re.escape(str(media_dir / bad))):
            video.probe(media_dir / bad)


def test_resolve_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    assert video.resolve_decoder("pyav") == "pyav"
    assert video.resolve_decoder("auto") == ("decord" if HAS_DECORD else "pyav")
    with pytest.raises(UsageError, match="auto, decord, pyav"):
        video.resolve_decoder("ffmpeg")
    monkeypatch.setattr(video, "_import_decord", lambda: None)
    assert video.available_decoders() == ["pyav"]
    assert video.resolve_decoder("auto") == "pyav"
    with pytest.raises(UsageError, match="not installed"):
        video.resolve_decoder("decord")


def test_write_mp4_gives_the_same_bytes_every_time(tmp_path: Path) -> None:
    """The same frames encode to the same file (before write_mp4 turned off x264's macroblock-tree rate
    control, 4 of 5 single-threaded encodes of this clip differed)."""
    rng = np.random.default_rng(0)
    blocks = (rng.random((40, 20, 20, 3)) * 255).astype(np.uint8)
    frames = np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2)  # 160x160, textured enough to need bits
    digests = set()
    for i in range(5):
        path = tmp_path / f"clip{i}.mp4"
        write_mp4(path, frames, 25.0)
        digests.add(path.read_bytes())
    assert len(digests) == 1
