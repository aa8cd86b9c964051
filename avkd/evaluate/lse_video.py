"""``avkd lse``: videos of any frame rate and sample rate through SyncNet's input pipeline into LSE-D / LSE-C.

Per video (docs/reference/avsiam-mfh-syncnet.md §3.5, ``run_pipeline.py``, with avkd's own decoder and detectors):

1. **Decode** with :func:`avkd.media.video.decode` (RGB frames, float audio at its own rate and channels).
2. **Convert to 25 fps and 16 kHz mono** (the reference does this with ffmpeg, ``-r 25`` and ``-ac 1 -ar
   16000``): output frame ``n`` (time ``n/25`` s) is the source frame with the nearest timestamp,
   ``round(n·fps/25)`` (:func:`convert_frames`), for ``floor(frames·25/fps)`` output frames; so 30 fps input
   drops one frame in six, 22 fps repeats about one in eight. The audio is the mean of its channels, resampled
   by :func:`avkd.media.audio.resample` (torchaudio's windowed sinc) and quantised to 16-bit as the reference's
   WAV is. Video and audio are cut to a common length ``N = min(frames, samples // 640)`` (``min_length``).
3. **Find the face** in each 25 fps frame with the chosen detector (:mod:`avkd.media.faces`: ``haar``
   (default), ``fixed``, ``boxes``, ``auto``). One face track per video, the largest face per frame, gaps held or
   interpolated by the detector; the reference's S3FD detector, scene cuts and IoU tracker (which can give several
   tracks, each of at least 100 frames) are not reproduced. A video without a face is a per-video error.
4. **Crop** as ``run_pipeline.crop_video`` does (:func:`syncnet_crops`): box half-size ``s = max(w, h)/2`` and
   centre, each median-filtered over 13 frames (the ends repeated; zero-padded as ``signal.medfilt`` does under
   ``--protocol reference``); rows ``[y − s, y + s(1 + 2·0.4))`` and columns ``[x − s(1 + 0.4),
   x + s(1 + 0.4))``, a square reaching below the chin, filled with grey 110 outside the frame, resized to
   224×224.
5. **MFCC** (:func:`avkd.media.audio.syncnet_mfcc`, python_speech_features' numbers), then the LSE of
   :mod:`avkd.evaluate.lse`.

A failure of one video (undecodable, no audio, no face, too short) becomes that video's ``error``; the others
are still scored.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import medfilt

from avkd.core.artifacts import atomic_write_text
from avkd.core.errors import ArtifactError, MediaError, UsageError
from avkd.data.lrs2.preprocess import DetectorConfig
from avkd.evaluate.lse import (
    CROP_SIZE,
    PROTOCOLS,
    VSHIFT,
    LseResult,
    Summary,
    check_lse_model,
    score_windows,
    summarize,
)
from avkd.media.audio import SAMPLE_RATE, resample, syncnet_mfcc, to_int16, to_mono
from avkd.media.faces import FaceDetector
from avkd.media.video import decode
from avkd.models.device import resolve_device
from avkd.models.io import LoadedModel, load_model

__all__ = [
    "DETECTORS",
    "FPS",
    "VIDEO_SUFFIXES",
    "LseConfig",
    "LseReport",
    "PreparedVideo",
    "VideoRow",
    "convert_frames",
    "expand_videos",
    "lse_videos",
    "prepare_video",
    "syncnet_crops",
]

#: SyncNet's frame rate (§3.3): 4 MFCC steps per frame at 100 Hz.
FPS = 25.0
HOP = SAMPLE_RATE // 25  # 640 audio samples per video frame (§3.3, ``len(audio) / 640``)
#: ``run_pipeline.py`` defaults (§3.5): crop margin, median-filter width of the box track, padding grey.
CROP_SCALE = 0.4
BOX_FILTER = 13
PAD_VALUE = 110
DETECTORS = ("haar", "fixed", "boxes", "auto")
#: What a folder argument is searched for (recursively).
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


@dataclass
class LseConfig:
    """Settings of one ``avkd lse`` run (every field is a flag)."""

    detector: str = "haar"
    boxes_file: str | None = None
    #: Haar: smallest face searched, as a fraction of the frame's shorter side (:class:`HaarDetector`).
    min_face: float = 0.3
    protocol: str = "avkd"
    vshift: int = VSHIFT
    decoder: str = "auto"
    batch_size: int = 32
    device: str = "cpu"
    framewise: bool = True

    def check(self) -> None:
        if self.detector not in DETECTORS:
            raise UsageError(f"--detector {self.detector!r}: choose {', '.join(DETECTORS)}")
        if self.protocol not in PROTOCOLS:
            raise UsageError(f"--protocol {self.protocol!r}: choose {' or '.join(PROTOCOLS)}")
        if not 0 <= self.vshift <= 100:
            raise UsageError(f"--vshift {self.vshift}: must be 0..100 frames")
        if not 0.0 < self.min_face <= 1.0:
            raise UsageError(f"--min-face {self.min_face}: must be a fraction in (0, 1]")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size {self.batch_size}: must be >= 1")

    def build_detector(self) -> FaceDetector:
        return DetectorConfig(
            name=self.detector,  # type: ignore[arg-type]
            boxes_file=self.boxes_file,
            min_size_frac=self.min_face,
        ).build()


# ------------------------------------------------------------------------------------------------ conversion


def convert_frames(frames: np.ndarray, src_fps: float, dst_fps: float = FPS) -> np.ndarray:
    """Frames at ``dst_fps``: output frame ``n`` is the source frame nearest in time, ``round(n·src/dst)``.

    ``floor(N·dst/src)`` output frames for ``N`` source frames (the whole output frame periods the source
    covers). Equal rates (within 0.01 fps) return the frames unchanged.
    """
    if not src_fps > 0:
        raise ValueError(f"source frame rate must be positive, got {src_fps}")
    n = frames.shape[0]
    if abs(src_fps - dst_fps) <= 0.01:
        return frames
    count = math.floor(n * dst_fps / src_fps + 1e-6)
    index = np.minimum(np.floor(np.arange(count) * src_fps / dst_fps + 0.5 + 1e-9).astype(np.int64), n - 1)
    return frames[index]


def syncnet_crops(
    frames: np.ndarray,
    boxes: np.ndarray,
    size: int = CROP_SIZE,
    crop_scale: float = CROP_SCALE,
    smoothing: int = BOX_FILTER,
    ends: str = "repeat",
) -> np.ndarray:
    """SyncNet's face crops (``run_pipeline.crop_video``, §3.5): (N, H, W, 3) frames, (N, 4) boxes → (N, size,
    size, 3) uint8, channel order kept.

    Per frame: half-size ``s = max(w, h)/2`` and centre ``(x, y)`` of the box, each median-filtered over
    ``smoothing`` frames. ``ends="zeros"`` is the reference's ``signal.medfilt``, which pads the track with zeros,
    so that the first and last 6 boxes move towards the smallest values near them (up and left, and smaller);
    ``"repeat"`` (default) repeats the end values instead. Then the square of side
    ``2s(1 + crop_scale)`` with rows from ``y − s`` and columns centred on ``x``, where pixels outside the frame
    are grey 110 (the reference pads the frame by ``s(1 + 2·crop_scale)``), resized with ``cv2.resize``
    (bilinear) to ``size``.
    """
    frames = np.asarray(frames)
    boxes = np.asarray(boxes, dtype=np.float64)
    n, height, width = frames.shape[:3]
    if boxes.shape != (n, 4):
        raise ValueError(f"boxes must be ({n}, 4) for {n} frames, got {boxes.shape}")
    half = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / 2
    track = np.stack([half, (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2])
    if ends not in ("repeat", "zeros"):
        raise ValueError(f"ends must be 'repeat' or 'zeros', got {ends!r}")
    if smoothing > 1 and ends == "zeros":
        with (
            warnings.catch_warnings()
        ):  # scipy warns that a track shorter than the filter is zero-padded: it is
            warnings.simplefilter("ignore", UserWarning)
            track = np.stack([medfilt(row, kernel_size=smoothing) for row in track])
    elif smoothing > 1:
        track = median_filter(track, size=(1, smoothing), mode="nearest")
    out = np.empty((n, size, size, 3), np.uint8)
    for i, (s, x, y) in enumerate(track.T):
        pad = int(s * (1 + 2 * crop_scale))  # the reference's integer padding, so its integer crop bounds
        y0, y1 = int(y + pad - s) - pad, int(y + pad + s * (1 + 2 * crop_scale)) - pad
        x0, x1 = int(x + pad - s * (1 + crop_scale)) - pad, int(x + pad + s * (1 + crop_scale)) - pad
        if y1 <= y0 or x1 <= x0:
            raise MediaError(f"frame {i}: empty face box {tuple(boxes[i])}")
        crop = np.full((y1 - y0, x1 - x0, 3), PAD_VALUE, np.uint8)
        sy0, sy1, sx0, sx1 = max(y0, 0), min(y1, height), max(x0, 0), min(x1, width)
        if sy1 > sy0 and sx1 > sx0:
            crop[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = frames[i, sy0:sy1, sx0:sx1]
        out[i] = cv2.resize(crop, (size, size))
    return out


@dataclass
class PreparedVideo:
    """One video as SyncNet reads it: 25 fps face crops, the 16 kHz MFCC and where they came from."""

    crops: np.ndarray  # (N, 224, 224, 3) uint8 RGB
    mfcc: np.ndarray  # (13, M) float32, 100 steps per second
    frames: int  # N, the common length at 25 fps
    info: dict[str, Any]


def prepare_video(
    path: Path, detector: FaceDetector, decoder: str = "auto", box_ends: str = "repeat"
) -> PreparedVideo:
    """Steps 1–4 of the module docstring; every problem with the file is one :class:`MediaError`. ``box_ends``:
    how the box track's median filter treats the ends (:func:`syncnet_crops`; ``zeros`` under the reference
    protocol)."""
    media = decode(path, decoder=decoder)
    if media.audio is None or media.audio.size == 0:
        raise MediaError(f"{path}: no audio stream")
    frames = convert_frames(media.frames, media.fps)
    wave = to_mono(media.audio)
    if media.sample_rate != SAMPLE_RATE:
        wave = resample(wave, int(media.sample_rate), SAMPLE_RATE)  # type: ignore[arg-type]
    n = min(frames.shape[0], wave.shape[0] // HOP)
    if n == 0:
        raise MediaError(
            f"{path}: zero-length clip ({frames.shape[0]} frames, {wave.shape[0]} samples at 16 kHz)"
        )
    frames = frames[:n]
    wave = to_int16(wave[: n * HOP])
    try:
        boxes = detector.boxes(frames, key=path.stem)
    except MediaError as exc:  # the detectors name the clip by its key (the stem): name the file instead
        raise MediaError(f"{path}: {str(exc).removeprefix(f'{path.stem}: ')}") from None
    crops = syncnet_crops(frames, boxes, ends=box_ends)
    info = {
        "source_fps": float(media.fps),
        "source_frames": int(media.n_frames),
        "source_sample_rate": int(media.sample_rate),  # type: ignore[arg-type]
        "source_channels": int(media.audio.shape[0]) if media.audio.ndim == 2 else 1,
        "frame_size": [int(media.frames.shape[2]), int(media.frames.shape[1])],
        "frames": int(n),
        "detector": getattr(detector, "used", None) or detector.name,
        "face_box": [int(v) for v in np.median(boxes, axis=0)],
    }
    return PreparedVideo(crops, syncnet_mfcc(wave, SAMPLE_RATE), int(n), info)


# ---------------------------------------------------------------------------------------------------- videos


def expand_videos(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """The video files named: files as given, folders searched recursively for :data:`VIDEO_SUFFIXES`
    (sorted). A name that does not exist, or a folder without videos, is a :class:`UsageError`."""
    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise UsageError(f"{path}: no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder")
            out.extend(found)
        elif path.exists():
            out.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    if not out:
        raise UsageError("no videos given")
    return out


@dataclass
class VideoRow:
    """One video's result or its error."""

    video: str
    result: LseResult | None = None
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_json(self, framewise: bool = True) -> dict[str, Any]:
        row: dict[str, Any] = {"video": self.video, "ok": self.result is not None}
        if self.result is not None:
            row.update(self.result.to_json(framewise=framewise))
        else:
            row.update({"lse_d": None, "lse_c": None, "offset": None, "error": self.error})
        row.update(self.info)
        return row


CSV_COLUMNS = (
    "video",
    "lse_d",
    "lse_c",
    "offset",
    "offset_ms",
    "offset_reference",
    "windows",
    "frames",
    "source_fps",
    "source_sample_rate",
    "detector",
    "error",
)


@dataclass
class LseReport:
    """Every video's row, the means over those scored, and how they were computed."""

    rows: list[VideoRow]
    summary: Summary
    config: LseConfig
    model: dict[str, Any]

    @property
    def all_failed(self) -> bool:
        return self.summary.scored == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "protocol": self.config.protocol,
            "vshift": self.config.vshift,
            "detector": self.config.detector,
            "fps": FPS,
            "sample_rate": SAMPLE_RATE,
            "offset_sign": "positive = audio lags video (as avkd sync); offset_reference = syncnet_python's",
            "summary": self.summary.to_json(),
            "videos": [row.to_json(self.config.framewise) for row in self.rows],
        }

    def csv_text(self) -> str:
        """One line per video (:data:`CSV_COLUMNS`), then a ``mean`` line; errors are quoted."""
        lines = [",".join(CSV_COLUMNS)]
        for row in self.rows:
            data = row.to_json(framewise=False)
            lines.append(",".join(_csv_cell(data.get(col)) for col in CSV_COLUMNS))
        mean = {"video": "mean", "lse_d": self.summary.lse_d, "lse_c": self.summary.lse_c}
        lines.append(",".join(_csv_cell(mean.get(col)) for col in CSV_COLUMNS))
        return "\n".join(lines) + "\n"

    def write_csv(self, path: str | os.PathLike) -> None:
        atomic_write_text(Path(path), self.csv_text())


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    text = str(value)
    if any(c in text for c in ',"\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text


def score_video(path: Path, loaded: LoadedModel, detector: FaceDetector, config: LseConfig) -> VideoRow:
    """One video into its :class:`VideoRow`; a :class:`MediaError` (or an unreadable file's
    :class:`ArtifactError`) of this video becomes the row's error."""
    try:
        ends = "zeros" if config.protocol == "reference" else "repeat"
        video = prepare_video(path, detector, config.decoder, box_ends=ends)
        result = score_windows(
            loaded.model,
            video.crops,
            video.mfcc,
            video.frames,
            protocol=config.protocol,
            vshift=config.vshift,
            batch_size=config.batch_size,
            device=config.device,
            pixel_order=loaded.spec.pixel_order,
            pixel_range=loaded.spec.pixel_range,
        )
    except (MediaError, ArtifactError) as exc:  # this video's problem; a usage error stops the run
        text = str(exc)
        return VideoRow(str(path), error=text if text.startswith(str(path)) else f"{path}: {text}")
    return VideoRow(str(path), result, video.info)


def lse_videos(videos: Sequence[str | os.PathLike], model: str | os.PathLike, config: LseConfig) -> LseReport:
    """LSE-D / LSE-C of each video with a sync model artifact (or a bare ``model.pt``), and their means.

    Bad flags, a model that LSE cannot use and missing paths are :class:`UsageError` before any video is read;
    a video that fails gets its reason in its row. The caller decides what a run where every video failed means
    (``avkd lse`` exits 1).
    """
    config.check()
    paths = expand_videos(videos)
    loaded = load_model(model, device=resolve_device(config.device))
    check_lse_model(loaded.model, loaded.spec.name)
    detector = config.build_detector()
    rows = [score_video(path, loaded, detector, config) for path in paths]
    summary = summarize([row.result for row in rows])
    reference = {"name": loaded.spec.name, **loaded.reference(model), "path": str(model)}
    return LseReport(rows, summary, config, reference)
