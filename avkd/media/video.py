"""Read a media file into RGB frames and float audio, with one interface over two decoders.

Two backends return the same :class:`Media` for the same file:

- ``pyav``: PyAV (bundled FFmpeg), always installed. Video frames go through one reused swscale context to
  ``rgb24``; audio frames of any sample format (fltp, s16, s32, u8, dbl, planar or packed) become float32
  ``(channels, samples)`` at the stream's own rate.
- ``decord``: decord 0.6 (optional, x86-64 only, unmaintained). Its quirks stay in this module:
  it is imported lazily, every exception it raises (``DECORDError``, ``RuntimeError``, index errors) becomes a
  :class:`~avkd.core.errors.MediaError`, its ``AudioReader`` is asked for the native rate (``sample_rate=-1``; its
  ``sample_rate`` attribute then reads -1, so the rate comes from the container metadata) and for all channels
  (``mono=False``). decord's ``AudioReader`` corrupts one channel of multi-channel audio (dmlc/decord#242;
  reproduced here on a stereo AAC file: channel 1 reads values of 3.7e9), so for a stream with more than one
  channel the decord backend reads the audio with PyAV. Mono audio (LRS2) is read by decord and matches PyAV
  to 1.2e-7.

Neither backend resamples or downmixes: callers do that with :mod:`avkd.media.audio`, so both backends give the
same arrays. Pixels agree exactly (both convert with swscale's default BT.601 matrix).

Failures raise ``MediaError(f"{path}: <reason>")`` and no raw decord/PyAV exception escapes. A **truncated**
file is an error, never a partial result: a clip whose tail is missing would have audio and video cut at
different points and a frame count that disagrees with its container, and training on it silently is worse
than listing it among the preprocessing failures. Concretely, a decode error part-way through a stream, or
fewer decoded frames than the container declares, raises ``MediaError``. (An mp4 cut before its ``moov`` atom
cannot even be opened; one with ``moov`` first fails part-way through ``mdat``.)

decord can crash the interpreter (segfault) or hang on some broken files; no in-process wrapper can catch
that. The file is first opened with PyAV, which rejects files that cannot be opened before decord sees them;
for untrusted corpora run decoding in worker processes or use ``decoder="pyav"``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from avkd.core.errors import MediaError, UsageError
from avkd.core.registry import Registry

__all__ = ["DECODERS", "Media", "available_decoders", "decode", "probe", "resolve_decoder", "scan"]


@dataclass
class Media:
    """A decoded media file.

    ``audio`` is None when the file has no audio stream or when it was not asked for (``audio=False``); then
    ``sample_rate`` is None too.
    """

    frames: np.ndarray  # (N, H, W, 3) uint8 RGB
    fps: float  # average frame rate from the container
    audio: np.ndarray | None  # (channels, samples) float32 in [-1, 1]
    sample_rate: int | None
    path: Path
    decoder: str

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])


# ---------------------------------------------------------------------------------------------------------------
# Container metadata (PyAV, no decoding)


def _ffmpeg_message(exc: BaseException) -> str:
    """A short reason from an FFmpeg/PyAV exception, without the repeated file name."""
    text = (exc.strerror or str(exc)) if isinstance(exc, av.FFmpegError) else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MediaError(f"{path}: file not found")
    if not path.is_file():
        raise MediaError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file")


def _open(path: Path) -> Any:
    _check_file(path)
    try:
        return av.open(str(path))
    except Exception as exc:  # av.FFmpegError, OSError, UnicodeDecodeError on odd metadata...
        raise MediaError(f"{path}: cannot open: {_ffmpeg_message(exc)}") from exc


def _stream_fps(stream: Any) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return float(rate)
    return None


def _container_info(container: Any, path: Path) -> dict:
    if not container.streams.video:
        raise MediaError(f"{path}: no video stream")
    vs = container.streams.video[0]
    astreams = container.streams.audio
    ast = astreams[0] if astreams else None
    if container.duration is not None:
        duration = float(container.duration) / av.time_base
    elif vs.duration is not None and vs.time_base is not None:
        duration = float(vs.duration * vs.time_base)
    else:
        duration = None
    return {
        "fps": _stream_fps(vs),
        "n_frames": int(vs.frames) if vs.frames else None,
        "width": int(vs.codec_context.width),
        "height": int(vs.codec_context.height),
        "has_audio": ast is not None,
        "sample_rate": int(ast.codec_context.sample_rate) if ast is not None else None,
        "channels": int(ast.codec_context.layout.nb_channels) if ast is not None else None,
        "duration": duration,
        "video_codec": vs.codec_context.name,
        "audio_codec": ast.codec_context.name if ast is not None else None,
    }


def probe(path: str | os.PathLike) -> dict:
    """Container and stream metadata without decoding any frame; used by ``avkd data check``.

    Returns ``fps`` (average frame rate, float), ``n_frames`` (as declared by the container, None if it does
    not say), ``width``, ``height``, ``has_audio``, ``sample_rate``, ``channels`` (None without audio),
    ``duration`` (seconds, None if unknown), ``video_codec`` and ``audio_codec``. A file that cannot be opened
    or has no video stream raises :class:`~avkd.core.errors.MediaError`. Probing does not detect a truncated
    ``mdat``; only :func:`decode` does.
    """
    path = Path(path)
    container = _open(path)
    try:
        with container:
            return _container_info(container, path)
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(f"{path}: cannot read metadata: {_ffmpeg_message(exc)}") from exc


def scan(path: str | os.PathLike) -> dict:
    """:func:`probe`, then read every packet of the file without decoding it (``avkd data check``'s default).

    Catches what metadata alone cannot and costs a read of the file, not a decode: a file cut short inside its
    media data (fewer video packets than the container declares, or a read error part-way). Damage inside a
    packet's bytes is found only by decoding (:func:`decode`; ``avkd data check --deep``). Adds
    ``video_packets`` to the probe's fields.
    """
    path = Path(path)
    info = probe(path)
    container = _open(path)
    packets = 0
    try:
        with container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.size:
                    packets += 1
    except Exception as exc:
        raise MediaError(
            f"{path}: truncated or corrupt: read failed after {packets} packets: {_ffmpeg_message(exc)}"
        ) from exc
    declared = info["n_frames"]
    if declared is not None and packets < declared:
        raise MediaError(f"{path}: truncated: {packets} of {declared} video packets present")
    return {**info, "video_packets": packets}


# ---------------------------------------------------------------------------------------------------------------
# PyAV backend

_INT_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


def _audio_frame_to_float(frame: Any) -> np.ndarray:
    """One decoded audio frame of any sample format -> float32 (channels, samples)."""
    x = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:
        # packed formats come back as (1, samples * channels), interleaved
        x = x.reshape(-1, channels).T
    if x.dtype == np.uint8:
        x = (x.astype(np.float32) - 128.0) / 128.0
    elif x.dtype in _INT_SCALE:
        x = x.astype(np.float32) / np.float32(_INT_SCALE[x.dtype])
    else:
        x = x.astype(np.float32, copy=False)
    return x


def _concat_audio(chunks: list[np.ndarray], channels: int, path: Path) -> np.ndarray:
    if not chunks:
        return np.zeros((channels, 0), np.float32)
    if len({c.shape[0] for c in chunks}) != 1:
        raise MediaError(f"{path}: the audio channel count changes inside the stream")
    return np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32)


def _decode_pyav(path: Path, audio: bool = True) -> Media:
    container = _open(path)
    with container:
        info = _container_info(container, path)
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        ast = container.streams.audio[0] if (audio and container.streams.audio) else None
        reformatter = (
            VideoReformatter()
        )  # reusing one swscale context is ~3.5x faster than frame.to_ndarray(format=)
        frames: list[np.ndarray] = []
        chunks: list[np.ndarray] = []
        streams = [vs] if ast is None else [vs, ast]
        try:
            for packet in container.demux(*streams):
                is_video = packet.stream.type == "video"
                for frame in packet.decode():
                    if is_video:
                        frames.append(reformatter.reformat(frame, format="rgb24").to_ndarray())
                    else:
                        chunks.append(_audio_frame_to_float(frame))
        except Exception as exc:
            raise MediaError(
                f"{path}: truncated or corrupt: decode failed after {len(frames)} frames: {_ffmpeg_message(exc)}"
            ) from exc
        wave = _concat_audio(chunks, info["channels"], path) if ast is not None else None
    video = _stack_frames(frames, info, path)
    return Media(
        frames=video,
        fps=_require_fps(info, path),
        audio=wave,
        sample_rate=info["sample_rate"] if wave is not None else None,
        path=path,
        decoder="pyav",
    )


def _stack_frames(frames: list[np.ndarray], info: dict, path: Path) -> np.ndarray:
    if not frames:
        raise MediaError(f"{path}: no frames decoded")
    declared = info["n_frames"]
    if declared is not None and len(frames) < declared:
        raise MediaError(f"{path}: truncated: decoded {len(frames)} of {declared} frames")
    if len({f.shape for f in frames}) != 1:
        raise MediaError(f"{path}: the frame size changes inside the video")
    return np.stack(frames)


def _require_fps(info: dict, path: Path) -> float:
    if info["fps"] is None:
        raise MediaError(f"{path}: the container gives no frame rate")
    return float(info["fps"])


# ---------------------------------------------------------------------------------------------------------------
# decord backend

_decord_module: Any = None
_decord_checked = False


def _import_decord() -> Any:
    """decord or None; imported once, lazily, so that this module never needs it."""
    global _decord_module, _decord_checked
    if not _decord_checked:
        _decord_checked = True
        try:
            _decord_module = importlib.import_module("decord")
        except Exception:  # ImportError, or OSError from its shared library on an odd platform
            _decord_module = None
    return _decord_module


def _to_numpy(x: Any) -> np.ndarray:
    """decord returns its own NDArray, or a torch/mxnet tensor if someone changed decord's global bridge."""
    if hasattr(x, "asnumpy"):
        return x.asnumpy()
    if hasattr(x, "numpy"):
        return x.numpy()
    return np.asarray(x)


def _decode_decord(path: Path, audio: bool = True) -> Media:
    # PyAV first: cheap metadata (native sample rate, channels, declared frame count) and a filter for files
    # that cannot be opened at all, before decord (which can crash on broken input) sees them.
    container = _open(path)
    with container:
        info = _container_info(container, path)
    decord = _import_decord()
    if decord is None:
        raise UsageError("decoder 'decord' is not installed here; use --decoder pyav")
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
        n = len(reader)
        if n == 0:
            raise MediaError(f"{path}: no frames decoded")
        video = np.ascontiguousarray(_to_numpy(reader.get_batch(list(range(n)))), dtype=np.uint8)
        fps = float(reader.get_avg_fps())
        del reader
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(f"{path}: truncated or corrupt: decord: {_decord_message(exc)}") from exc
    if info["n_frames"] is not None and video.shape[0] < info["n_frames"]:
        raise MediaError(f"{path}: truncated: decoded {video.shape[0]} of {info['n_frames']} frames")
    if not fps > 0:
        fps = _require_fps(info, path)
    wave = None
    if audio and info["has_audio"]:
        if info["channels"] == 1:
            try:
                areader = decord.AudioReader(str(path), ctx=decord.cpu(0), sample_rate=-1, mono=False)
                # areader[:] builds a Python list of every sample index (30 ms per 10 s of audio); the decoded
                # array is already held as numpy in the private ``_array``, used when present.
                raw = getattr(areader, "_array", None)
                if not isinstance(raw, np.ndarray) or raw.ndim != 2:
                    raw = _to_numpy(areader[:])
                wave = np.array(raw, dtype=np.float32)  # a copy: owned by us, not by the reader
                del areader
            except Exception as exc:
                raise MediaError(
                    f"{path}: truncated or corrupt audio: decord: {_decord_message(exc)}"
                ) from exc
        else:
            wave = _pyav_audio_only(
                path, info
            )  # dmlc/decord#242: multi-channel AudioReader output is corrupt
    return Media(
        frames=video,
        fps=fps,
        audio=wave,
        sample_rate=info["sample_rate"] if wave is not None else None,
        path=path,
        decoder="decord",
    )


def _decord_message(exc: BaseException) -> str:
    # DECORDError messages start with "[hh:mm:ss] /github/workspace/src/....cc:NNN: "; keep the reason only
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if text.startswith("[") and ": " in text:
        parts = text.split(": ")
        text = ": ".join(parts[2:]) if len(parts) > 2 else parts[-1]
    return text


def _pyav_audio_only(path: Path, info: dict) -> np.ndarray:
    container = _open(path)
    chunks: list[np.ndarray] = []
    with container:
        try:
            for frame in container.decode(container.streams.audio[0]):
                chunks.append(_audio_frame_to_float(frame))
        except Exception as exc:
            raise MediaError(f"{path}: truncated or corrupt audio: {_ffmpeg_message(exc)}") from exc
    return _concat_audio(chunks, info["channels"], path)


# ---------------------------------------------------------------------------------------------------------------
# Public interface

DECODERS: Registry[Callable[..., Media]] = Registry("decoder")
DECODERS.register(_decode_decord, name="decord")
DECODERS.register(_decode_pyav, name="pyav")


def available_decoders() -> list[str]:
    """Names of the decoders that import here (``pyav`` always; ``decord`` where its wheel exists)."""
    names = ["pyav"]
    if _import_decord() is not None:
        names.insert(0, "decord")
    return names


def resolve_decoder(name: str = "auto") -> str:
    """Map a decoder name from a flag or config to an installed backend.

    ``auto`` is decord where it is installed (x86-64) and PyAV elsewhere. An unknown name, or ``decord`` where
    it does not import, is a :class:`~avkd.core.errors.UsageError` that names the choices.
    """
    if name == "auto":
        return available_decoders()[0]
    if name not in DECODERS:
        raise UsageError(f"unknown decoder {name!r}; choose from {', '.join(['auto', *DECODERS.names()])}")
    if name not in available_decoders():
        raise UsageError(
            f"decoder {name!r} is not installed here (decord has wheels for x86-64 only); "
            f"available: {', '.join(['auto', *available_decoders()])}"
        )
    return name


def decode(path: str | os.PathLike, decoder: str = "auto", audio: bool = True) -> Media:
    """Decode all frames (RGB uint8) and, if ``audio``, the first audio stream at its native rate and channels.

    Any failure raises ``MediaError(f"{path}: <reason>")``; truncated files are errors (see the module
    docstring). ``decoder`` is ``auto``, ``decord`` or ``pyav`` (see :func:`resolve_decoder`).
    """
    name = resolve_decoder(decoder)
    path = Path(path)
    try:
        return DECODERS.get(name)(path, audio=audio)
    except (MediaError, UsageError):
        raise
    except Exception as exc:  # last line of defence: nothing raw escapes
        raise MediaError(f"{path}: cannot decode: {type(exc).__name__}: {exc}") from exc
