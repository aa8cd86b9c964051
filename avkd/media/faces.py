"""Per-frame face boxes from named detectors, and the 96x96 face crops that VocaLiST-style models read.

Detectors are found by name (:func:`build_detector`), so a config file and a command-line flag name the same
thing. Each is a small picklable dataclass built from ``name + options``; heavy state (the OpenCV cascade, a
parsed boxes file) is loaded lazily on first use and is not pickled, so every worker process builds its own.

- ``fixed``: one box for every frame. LRS2 clips are already face-centred 160x160 crops, so a fixed box is a
  cheap, deterministic default (:data:`DEFAULT_FIXED_BOX`).
- ``haar``: OpenCV's frontal-face Haar cascade, run every ``detect_every``-th frame, largest face, gaps
  interpolated or held, temporally smoothed, grown downwards to include the chin.
- ``boxes``: boxes computed by any external detector (S3FD, RetinaFace, ...) and listed in a text file.

The Wav2Lip preprocessing used by VocaLiST (docs/reference/vocalist.md §1.1) ran S3FD and saved the raw
``frame[y0:y1, x0:x1]`` of the first detection with no padding; the loaders then ``cv2.resize`` it to 96x96
with INTER_LINEAR (§1.3). :func:`crop_faces` does the same from a box, without the JPEG round trip and without
Wav2Lip's frame-numbering drift on missed detections (every frame gets a box here).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import cv2
import numpy as np

from avkd.core.errors import MediaError, UsageError
from avkd.core.registry import Registry

__all__ = [
    "DEFAULT_FIXED_BOX",
    "DETECTORS",
    "Box",
    "BoxesFileDetector",
    "FaceDetector",
    "FixedBoxDetector",
    "HaarDetector",
    "build_detector",
    "crop_faces",
]

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive

#: Fractions (x0, y0, x1, y1) of width/height: pixels 30..130 x 20..140 of a 160x160 LRS2 frame, where the
#: speaker's face sits (LRS2 clips are face-centred crops).
DEFAULT_FIXED_BOX: tuple[float, float, float, float] = (0.1875, 0.125, 0.8125, 0.875)


@runtime_checkable
class FaceDetector(Protocol):
    """Anything that gives one box per frame of a clip."""

    name: str

    def boxes(self, frames: np.ndarray, key: str) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB frames of the clip ``key`` -> (N, 4) int32 boxes (x0, y0, x1, y1)."""
        ...


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be (N>0, H, W, 3), got {frames.shape}")
    return frames


def _clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    out = np.rint(np.asarray(boxes, dtype=np.float64)).astype(np.int64)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out.astype(np.int32)


# ---------------------------------------------------------------------------------------------------------------
# fixed


@dataclass
class FixedBoxDetector:
    """The same box on every frame.

    ``box`` is (x0, y0, x1, y1): fractions of the frame's width/height when every value is ≤ 1.0, pixels
    otherwise. The default :data:`DEFAULT_FIXED_BOX` is pixels 30..130 x 20..140 on 160x160 LRS2 frames.
    """

    box: tuple[float, float, float, float] = DEFAULT_FIXED_BOX
    name: ClassVar[str] = "fixed"

    def __post_init__(self) -> None:
        try:
            values = tuple(float(v) for v in self.box)
        except (TypeError, ValueError):
            raise UsageError(
                f"fixed detector: box must be four numbers x0,y0,x1,y1, got {self.box!r}"
            ) from None
        if len(values) != 4:
            raise UsageError(f"fixed detector: box must be four numbers x0,y0,x1,y1, got {self.box!r}")
        x0, y0, x1, y1 = values
        if min(values) < 0 or x1 <= x0 or y1 <= y0:
            raise UsageError(f"fixed detector: box must have 0 <= x0 < x1 and 0 <= y0 < y1, got {values}")
        self.box = values  # type: ignore[assignment]

    @property
    def is_fraction(self) -> bool:
        return all(v <= 1.0 for v in self.box)

    def pixel_box(self, width: int, height: int) -> Box:
        """The box in pixels for a ``width`` x ``height`` frame, clipped to it."""
        x0, y0, x1, y1 = self.box
        if self.is_fraction:
            x0, x1 = x0 * width, x1 * width
            y0, y1 = y0 * height, y1 * height
        clipped = _clip_boxes(np.array([[x0, y0, x1, y1]]), width, height)[0]
        return tuple(int(v) for v in clipped)  # type: ignore[return-value]

    def boxes(self, frames: np.ndarray, key: str) -> np.ndarray:
        frames = _check_frames(frames)
        height, width = frames.shape[1:3]
        box = self.pixel_box(width, height)
        if box[2] <= box[0] or box[3] <= box[1]:
            raise MediaError(f"{key}: the fixed box {self.box} lies outside the {width}x{height} frame")
        return np.tile(np.asarray(box, dtype=np.int32), (frames.shape[0], 1))


# ---------------------------------------------------------------------------------------------------------------
# haar

_HAAR_FILE = "haarcascade_frontalface_default.xml"


def _default_cascade_path() -> str:
    """OpenCV's own frontal-face cascade from the installed wheel; never downloaded."""
    base = getattr(getattr(cv2, "data", None), "haarcascades", "") or ""
    return os.path.join(base, _HAAR_FILE)


def _load_cascade(path: str | None) -> Any:
    """A ``cv2.CascadeClassifier`` for ``path`` (default: the wheel's frontal-face cascade).

    OpenCV 5 removed ``CascadeClassifier`` from opencv-python(-headless) and ships no cascade XML in any 5.x
    wheel (opencv-contrib 5 has the class but not the data), so on OpenCV 5 the detector needs
    ``opencv-python-headless<5`` or ``cascade=PATH`` with opencv-contrib.
    """
    if not hasattr(cv2, "CascadeClassifier"):
        raise UsageError(
            f"the haar detector needs cv2.CascadeClassifier, which OpenCV {cv2.__version__} does not have "
            "(OpenCV 5 moved it to opencv-contrib and ships no cascade files); install "
            "'opencv-python-headless<5', or use the 'boxes' or 'fixed' detector"
        )
    path = path or _default_cascade_path()
    if not os.path.isfile(path):
        raise UsageError(
            f"the haar detector's cascade file {path} does not exist (OpenCV {cv2.__version__} ships none); "
            "install 'opencv-python-headless<5' or pass cascade=PATH to a frontal-face cascade XML"
        )
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise UsageError(f"the haar detector cannot load the cascade {path}")
    return cascade


@dataclass
class HaarDetector:
    """OpenCV Haar-cascade face boxes, made steady over time.

    Options (defaults measured on 160x160 face-centred frames, see the tests and the report):

    - ``detect_every`` (2): run the cascade on every k-th frame (and on the last frame). Frames between two
      successful detections k apart are linearly interpolated. At 25 fps a face moves little in 80 ms; k=2
      halves the cost (about 250 -> 500 frames/s on 160x160) and the interpolated boxes stay within a pixel
      or two of per-frame detection, well inside the smoothing.
    - ``scale_factor`` (1.1), ``min_neighbors`` (5): the cascade's own; OpenCV's defaults for faces.
    - ``min_size_frac`` (0.3): smallest face searched, as a fraction of min(H, W). A speaker's face fills most
      of an LRS2 frame (about 100 of 160 px); skipping small scales is the main speed-up and removes small
      false positives in the background.
    - ``smoothing`` (2): centred moving average of box centre and size over ±k successful detections. Haar
      boxes jitter by several pixels from frame to frame; S3FD ones much less.
    - ``expand`` ((0, 0, 0, 0.1)): grow the box by these fractions of its width/height on the (left, top,
      right, bottom) sides, or one number for all sides. The Haar box spans forehead to about the chin; S3FD
      boxes (Wav2Lip, docs/reference/vocalist.md §1.1) reach below the chin, and Wav2Lip's inference pads the bottom by 10 px
      for the same reason, so the default grows the bottom by 10% of the box height. (Checked by eye on one
      portrait, since no S3FD model is available here; the mouth then sits at about 72% of the crop's
      height, inside the lower half that VocaLiST reads, §1.3.)
    - ``max_size`` (320): frames whose longer side exceeds this are downscaled (INTER_AREA) before detection.
    - ``cascade`` (None): path to a cascade XML; default is the frontal-face cascade in ``cv2.data``.

    The largest face wins when several are found. Frames after a missed detection hold the last good box;
    frames before the first detection take the first good box; a clip with no detection at all raises
    :class:`~avkd.core.errors.MediaError`.
    """

    detect_every: int = 2
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size_frac: float = 0.3
    smoothing: int = 2
    expand: float | tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.1)
    max_size: int = 320
    cascade: str | None = None
    name: ClassVar[str] = "haar"
    _cascade: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if int(self.detect_every) < 1:
            raise UsageError(f"haar detector: detect_every must be >= 1, got {self.detect_every}")
        if not float(self.scale_factor) > 1.0:
            raise UsageError(f"haar detector: scale_factor must be > 1, got {self.scale_factor}")
        if int(self.min_neighbors) < 0:
            raise UsageError(f"haar detector: min_neighbors must be >= 0, got {self.min_neighbors}")
        if not 0.0 <= float(self.min_size_frac) < 1.0:
            raise UsageError(f"haar detector: min_size_frac must be in [0, 1), got {self.min_size_frac}")
        if int(self.smoothing) < 0:
            raise UsageError(f"haar detector: smoothing must be >= 0, got {self.smoothing}")
        if int(self.max_size) < 16:
            raise UsageError(f"haar detector: max_size must be >= 16, got {self.max_size}")
        self.detect_every = int(self.detect_every)
        self.min_neighbors = int(self.min_neighbors)
        self.smoothing = int(self.smoothing)
        self.max_size = int(self.max_size)
        expand = self.expand
        if isinstance(expand, (int, float)):
            expand = (float(expand),) * 4
        try:
            expand = tuple(float(v) for v in expand)
        except (TypeError, ValueError):
            raise UsageError(
                f"haar detector: expand must be a number or four numbers, got {self.expand!r}"
            ) from None
        if len(expand) != 4 or min(expand) <= -0.5:
            raise UsageError(
                f"haar detector: expand must be a number or four numbers > -0.5, got {self.expand!r}"
            )
        self.expand = expand

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cascade"] = None  # a cv2 object: rebuilt in each process
        return state

    def load(self) -> Any:
        """Load the cascade now (``build_detector`` calls this so a missing cascade fails before any work)."""
        if self._cascade is None:
            self._cascade = _load_cascade(self.cascade)
        return self._cascade

    def _detect(self, frame: np.ndarray) -> np.ndarray | None:
        """Largest face in one RGB frame as float (x0, y0, x1, y1) in frame pixels, or None."""
        cascade = self.load()
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        height, width = gray.shape
        scale = min(1.0, self.max_size / max(height, width))
        if scale < 1.0:
            gray = cv2.resize(
                gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
            )
        min_side = max(1, int(self.min_size_frac * min(gray.shape)))
        found = cascade.detectMultiScale(
            gray,
            scaleFactor=float(self.scale_factor),
            minNeighbors=self.min_neighbors,
            minSize=(min_side, min_side),
        )
        found = np.asarray(found, dtype=np.float64).reshape(-1, 4)
        if found.shape[0] == 0:
            return None
        x, y, w, h = found[int(np.argmax(found[:, 2] * found[:, 3]))] / scale
        return np.array([x, y, x + w, y + h])

    def boxes(self, frames: np.ndarray, key: str) -> np.ndarray:
        frames = _check_frames(frames)
        n, height, width = frames.shape[:3]
        sampled = list(range(0, n, self.detect_every))
        if sampled[-1] != n - 1:
            sampled.append(n - 1)
        hits: list[int] = []
        found: list[np.ndarray] = []
        for i in sampled:
            box = self._detect(frames[i])
            if box is not None:
                hits.append(i)
                found.append(box)
        if not hits:
            raise MediaError(f"{key}: no face found by the haar detector in {n} frames")
        smooth = _expand(_smooth(np.stack(found), self.smoothing), self.expand)  # type: ignore[arg-type]
        filled = _fill(np.asarray(hits), smooth, n, self.detect_every)
        return _clip_boxes(filled, width, height)


def _smooth(boxes: np.ndarray, radius: int) -> np.ndarray:
    """Centred moving average of centre and size over ±radius boxes (window truncated at the ends)."""
    if radius == 0 or len(boxes) < 2:
        return boxes.astype(np.float64)
    cw = np.stack(
        [
            (boxes[:, 0] + boxes[:, 2]) / 2,
            (boxes[:, 1] + boxes[:, 3]) / 2,
            boxes[:, 2] - boxes[:, 0],
            boxes[:, 3] - boxes[:, 1],
        ],
        axis=1,
    )
    csum = np.concatenate([np.zeros((1, 4)), np.cumsum(cw, axis=0)])
    idx = np.arange(len(cw))
    lo = np.maximum(idx - radius, 0)
    hi = np.minimum(idx + radius + 1, len(cw))
    mean = (csum[hi] - csum[lo]) / (hi - lo)[:, None]
    cx, cy, w, h = mean.T
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def _expand(boxes: np.ndarray, expand: tuple[float, float, float, float]) -> np.ndarray:
    left, top, right, bottom = expand
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return np.stack(
        [boxes[:, 0] - left * w, boxes[:, 1] - top * h, boxes[:, 2] + right * w, boxes[:, 3] + bottom * h],
        axis=1,
    )


def _fill(hits: np.ndarray, boxes: np.ndarray, n: int, step: int) -> np.ndarray:
    """Per-frame boxes from boxes at the frames ``hits`` (sorted).

    A frame between two detections at most ``step`` frames apart (no failed detection between them) is
    interpolated linearly; any other frame holds the last good box, or takes the first one before the first
    detection.
    """
    frames = np.arange(n)
    after = np.searchsorted(hits, frames, side="left")  # first hit >= frame
    out = np.empty((n, 4), dtype=np.float64)
    for f in range(n):
        j = after[f]
        if j < len(hits) and hits[j] == f:
            out[f] = boxes[j]
        elif j == 0:
            out[f] = boxes[0]
        elif j == len(hits):
            out[f] = boxes[-1]
        else:
            a, b = hits[j - 1], hits[j]
            if b - a <= step:
                t = (f - a) / (b - a)
                out[f] = (1 - t) * boxes[j - 1] + t * boxes[j]
            else:
                out[f] = boxes[j - 1]
    return out


# ---------------------------------------------------------------------------------------------------------------
# boxes file

_HEADER = ["key", "frame", "x0", "y0", "x1", "y1"]


def _split(line: str) -> list[str]:
    return [p.strip() for p in line.split(",")] if "," in line else line.split()


def _parse_boxes_file(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """key -> (sorted frame indices (M,), boxes (M, 4) int32). Malformed lines raise UsageError(path:lineno)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: boxes file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read boxes file: {exc}") from None
    rows: dict[str, dict[int, tuple[tuple[int, int, int, int], int]]] = {}
    header_seen = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = _split(line)
        if not header_seen:
            if [p.lower() for p in parts] != _HEADER:
                raise UsageError(
                    f"{path}:{lineno}: expected the header line 'key,frame,x0,y0,x1,y1', got {line!r}"
                )
            header_seen = True
            continue
        if len(parts) != 6:
            raise UsageError(f"{path}:{lineno}: expected 6 fields key,frame,x0,y0,x1,y1, got {len(parts)}")
        key = parts[0]
        if not key:
            raise UsageError(f"{path}:{lineno}: empty key")
        try:
            frame = int(parts[1])
        except ValueError:
            raise UsageError(f"{path}:{lineno}: frame must be an integer, got {parts[1]!r}") from None
        if frame < 0:
            raise UsageError(f"{path}:{lineno}: frame must be >= 0, got {frame}")
        try:
            coords = [float(p) for p in parts[2:]]
        except ValueError:
            raise UsageError(f"{path}:{lineno}: coordinates must be numbers, got {parts[2:]}") from None
        if not all(np.isfinite(coords)):
            raise UsageError(f"{path}:{lineno}: coordinates must be finite, got {parts[2:]}")
        x0, y0, x1, y1 = (round(c) for c in coords)
        if x1 <= x0 or y1 <= y0:
            raise UsageError(f"{path}:{lineno}: need x0 < x1 and y0 < y1, got {x0},{y0},{x1},{y1}")
        per_key = rows.setdefault(key, {})
        if frame in per_key:
            raise UsageError(
                f"{path}:{lineno}: duplicate box for {key} frame {frame} (first on line {per_key[frame][1]})"
            )
        per_key[frame] = ((x0, y0, x1, y1), lineno)
    if not header_seen:
        raise UsageError(f"{path}:1: empty boxes file; expected the header line 'key,frame,x0,y0,x1,y1'")
    table = {}
    for key, per_key in rows.items():
        order = sorted(per_key)
        table[key] = (
            np.asarray(order, dtype=np.int64),
            np.asarray([per_key[f][0] for f in order], dtype=np.int32).reshape(-1, 4),
        )
    return table


@dataclass
class BoxesFileDetector:
    """Boxes made by any detector and written to a text file: one line per (clip, frame).

    Format: a header line ``key,frame,x0,y0,x1,y1`` then one box per line, comma- or whitespace-separated,
    pixel coordinates (floats are rounded), x1/y1 exclusive; blank lines and ``#`` comments are skipped. ``key``
    is the clip key the caller passes; for LRS2 that is ``<subset>/<speaker>/<utt>`` without ``.mp4``, e.g.
    ``main/6330311066473698535/00011``. Frames not listed take the box of the nearest listed frame (the
    earlier one on a tie), so a file may list every k-th frame only. A clip absent from the file raises
    :class:`~avkd.core.errors.MediaError`; a malformed line raises ``UsageError("path:lineno: reason")``.

    The file is parsed once, on first use, in each process.
    """

    path: str | os.PathLike = ""
    name: ClassVar[str] = "boxes"
    _table: dict | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not str(self.path):
            raise UsageError("boxes detector: option path=FILE is required")
        self.path = Path(self.path)
        if not self.path.is_file():
            raise UsageError(f"{self.path}: boxes file not found")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_table"] = None
        return state

    def table(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """key -> (listed frames, boxes); parsed on first call."""
        if self._table is None:
            self._table = _parse_boxes_file(Path(self.path))
        return self._table

    def boxes(self, frames: np.ndarray, key: str) -> np.ndarray:
        frames = _check_frames(frames)
        entry = self.table().get(key)
        if entry is None:
            raise MediaError(f"{key}: no boxes in {self.path}")
        listed, listed_boxes = entry
        n = frames.shape[0]
        want = np.arange(n)
        right = np.clip(np.searchsorted(listed, want, side="left"), 0, len(listed) - 1)
        left = np.clip(right - 1, 0, len(listed) - 1)
        take_left = np.abs(listed[left] - want) <= np.abs(listed[right] - want)
        nearest = np.where(take_left, left, right)
        return listed_boxes[nearest].astype(np.int32)


# ---------------------------------------------------------------------------------------------------------------
# auto


@dataclass
class AutoDetector:
    """``auto``: crop where the face is, but crop a face-centred clip the way LRS2's clips were cropped.

    For a single video of unknown framing (``avkd sync``). The Haar cascade looks for the face; when it finds
    none, or finds it filling the centre of the frame (the frame is already a face crop, as LRS2's are: its median
    box's centre within ``centred`` of the frame's, as a fraction of the frame, and its smaller side at least
    ``min_fill`` of the frame's), the fixed box is used, so a model trained on LRS2-style crops sees the crop it
    was trained on; otherwise the Haar boxes. :attr:`used` (``"haar"`` or ``"fixed"``) and :attr:`reason` say
    which, for the last clip.
    """

    box: tuple[float, float, float, float] = DEFAULT_FIXED_BOX
    haar: dict[str, Any] = field(default_factory=dict)
    centred: float = 0.15
    min_fill: float = 0.5
    name: ClassVar[str] = "auto"
    used: str | None = field(default=None, init=False, compare=False)
    reason: str | None = field(default=None, init=False, compare=False)

    def __post_init__(self) -> None:
        self._haar = HaarDetector(**self.haar)
        self._fixed = FixedBoxDetector(self.box)

    def load(self) -> None:
        self._haar.load()

    def boxes(self, frames: np.ndarray, key: str) -> np.ndarray:
        try:
            boxes = self._haar.boxes(frames, key)
        except MediaError:  # no face anywhere in the clip
            return self._use_fixed(frames, key, "no face found")
        height, width = frames.shape[1:3]
        x0, y0, x1, y1 = np.median(boxes, axis=0)
        off = max(abs((x0 + x1) / 2 - width / 2) / width, abs((y0 + y1) / 2 - height / 2) / height)
        if off <= self.centred and min(x1 - x0, y1 - y0) >= self.min_fill * min(width, height):
            return self._use_fixed(frames, key, "the face fills the centre of the frame (a face crop)")
        self.used, self.reason = "haar", "face found off-centre or small"
        return boxes

    def _use_fixed(self, frames: np.ndarray, key: str, reason: str) -> np.ndarray:
        self.used, self.reason = "fixed", reason
        return self._fixed.boxes(frames, key)


# ---------------------------------------------------------------------------------------------------------------
# registry and crops

DETECTORS: Registry[Callable[..., FaceDetector]] = Registry("face detector")
DETECTORS.register(FixedBoxDetector, name="fixed")
DETECTORS.register(HaarDetector, name="haar")
DETECTORS.register(BoxesFileDetector, name="boxes")
DETECTORS.register(AutoDetector, name="auto")


def build_detector(name: str, **options: Any) -> FaceDetector:
    """Build a face detector by name: ``fixed`` | ``haar`` | ``boxes``, with that detector's options.

    Unknown names and options are :class:`~avkd.core.errors.UsageError`. Cheap and picklable, so preprocessing
    workers build their own from the same ``name`` and ``options``. ``haar`` loads its cascade here so a
    missing OpenCV cascade fails before any file is decoded.
    """
    cls = DETECTORS.check_arguments(name, **options)
    try:
        detector = cls(**options)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"face detector {name!r}: {exc}") from None
    if hasattr(detector, "load"):  # the Haar cascade: a missing one fails before any file is decoded
        detector.load()
    return detector


def crop_faces(frames: np.ndarray, boxes: np.ndarray, size: int = 96) -> np.ndarray:
    """Crop each frame to its box and resize to ``size`` x ``size``: (N, H, W, 3) -> (N, size, size, 3) uint8.

    The box is clipped to the frame, then the raw (generally non-square) crop is resized with
    ``cv2.resize(..., INTER_LINEAR)``, as Wav2Lip's crops were by the VocaLiST loaders (docs/reference/vocalist.md §1.1, §1.3). Channel order is kept (RGB in, RGB out); BGR and scaling are the model's
    input config (§1.3). A box that lies entirely outside its frame raises :class:`~avkd.core.errors.MediaError`.
    """
    frames = _check_frames(frames)
    boxes = np.asarray(boxes)
    n, height, width = frames.shape[:3]
    if boxes.shape != (n, 4):
        raise ValueError(f"boxes must be ({n}, 4) for {n} frames, got {boxes.shape}")
    if int(size) < 1:
        raise ValueError(f"size must be positive, got {size}")
    size = int(size)
    clipped = _clip_boxes(boxes, width, height)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        x0, y0, x1, y1 = (int(v) for v in clipped[i])
        if x1 <= x0 or y1 <= y0:
            raise MediaError(
                f"frame {i}: box {tuple(int(v) for v in boxes[i])} lies outside the {width}x{height} frame"
            )
        crop = np.ascontiguousarray(frames[i, y0:y1, x0:x1])
        out[i] = cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
    return out
