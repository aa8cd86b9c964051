"""Write H.264/AAC mp4 files with PyAV (bundled FFmpeg); used by the synthetic corpora and by tests."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np


def write_mp4(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    crf: int = 18,
    preset: str = "veryfast",
) -> None:
    """Write RGB ``frames`` (N, H, W, 3) uint8 and ``audio`` (samples,) mono or (channels, samples) float in
    [-1, 1] to an mp4.

    Video is H.264 (libx264, yuv420p, so H and W must be even), audio AAC (mono, or stereo for 2 channels). The file is written to a
    temporary name and renamed, so an interrupted run never leaves a truncated mp4 behind.
    The mp4 muxer writes an edit list that hides the AAC encoder's priming samples, so a decoder that honours
    it (FFmpeg, hence PyAV and decord) returns audio sample 0 at video time 0.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if frames.shape[0] == 0:
        raise ValueError("cannot write an mp4 without frames")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.mp4")
    fps_q = _as_fraction(fps)
    try:
        with av.open(str(tmp), mode="w") as container:
            vstream = container.add_stream("libx264", rate=fps_q)
            vstream.width = frames.shape[2]
            vstream.height = frames.shape[1]
            vstream.pix_fmt = "yuv420p"
            # The same frames must give the same bytes (a corpus is rebuilt from its seed). Two things broke
            # that: threads (set on the codec context: PyAV's thread_count overrides a "threads" option), and
            # x264's macroblock-tree rate control, which made 6 of 10 single-threaded encodes of one clip differ
            # in their first frames by a few grey levels. Without it the files are about 1% smaller here.
            vstream.codec_context.thread_count = 1
            vstream.options = {"crf": str(crf), "preset": preset, "mbtree": "0"}
            astream = None
            if audio is not None:
                wave = np.asarray(audio, dtype=np.float32)
                wave = np.clip(wave.reshape(1, -1) if wave.ndim == 1 else wave, -1.0, 1.0)
                if wave.shape[0] not in (1, 2):
                    raise ValueError(f"audio must be mono or stereo, got {wave.shape[0]} channels")
                layout = "mono" if wave.shape[0] == 1 else "stereo"
                astream = container.add_stream("aac", rate=sample_rate, layout=layout)
            for image in frames:
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                for packet in vstream.encode(frame):
                    container.mux(packet)
            for packet in vstream.encode():
                container.mux(packet)
            if astream is not None:
                block = 1024  # the AAC frame size; smaller blocks would only add encoder calls
                for start in range(0, wave.shape[1], block):
                    chunk = np.ascontiguousarray(wave[:, start : start + block])
                    aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
                    aframe.sample_rate = sample_rate
                    aframe.pts = start
                    for packet in astream.encode(aframe):
                        container.mux(packet)
                for packet in astream.encode():
                    container.mux(packet)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _as_fraction(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)
