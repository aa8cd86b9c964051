"""Hand-made media files for tests."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from avkd.media.encode import write_mp4


def marker_clip(
    path: Path, n_frames: int = 50, event: int = 20, fps: float = 25.0, sample_rate: int = 16000
) -> None:
    """A grey clip with a white flash at frame ``event`` and a tone burst starting at its audio sample."""
    frames = np.full((n_frames, 160, 160, 3), 60, np.uint8)
    frames[event] = 250
    hop = round(sample_rate / fps)
    audio = np.zeros(n_frames * hop, np.float32)
    t = np.arange(hop // 2) / sample_rate
    audio[event * hop : event * hop + hop // 2] = 0.8 * np.sin(2 * np.pi * 1000 * t)
    write_mp4(path, frames, fps, audio, sample_rate)


def remux_faststart(src: Path, dst: Path) -> None:
    """The same streams with the index (moov) before the data, as web-ready mp4 files are."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
