"""A labelled synthetic clip corpus of real mp4 files in the VGGSound layout, for tests and the demo.

VGGSound and AudioSet are YouTube corpora that cannot ship with avkd, so ``avkd data synth clips`` writes a stand-in
that goes through the same CSV reader, decoders and preprocessing: ``ROOT/vggsound.csv`` (``youtube_id,
start_seconds,label,split``, no header, as the release), ``ROOT/video/<id>_<start:06d>.mp4`` (H.264 + AAC),
``ROOT/classes.csv`` (``index,mid,display_name``) and ``ROOT/synth.json`` (the config and every clip's parameters).

The class shows in both modalities, each on its own (so either one alone can be learnt):

- **video**: a shape (disc, square, triangle or ring by ``class % 4``) in the class's hue (``class / classes`` of
  the colour circle, saturated) moving over a dull background (grey with a faint tint and a gradient) and two grey
  distractor boxes; position, path, size and brightness vary per clip;
- **audio**: a tone at the class's pitch, log-spaced from 300 Hz to 3 kHz over the classes, with its 2nd and 3rd
  harmonics, ±2% per-clip detuning, in bursts of random length and background noise. The shape grows a little
  while a burst sounds, so the two streams also move together in time.

Every clip is a pure function of (seed, clip index); the number of workers never changes a byte (the encoder is
single-threaded, :func:`avkd.media.encode.write_mp4`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from avkd import __version__
from avkd.core.artifacts import atomic_write_text
from avkd.core.config import bounded, validate
from avkd.core.errors import ConfigError, UsageError
from avkd.core.parallel import ordered_map
from avkd.media.encode import write_mp4

__all__ = [
    "SHAPES",
    "SynthClipsConfig",
    "SynthClipsSummary",
    "class_style",
    "render_clip",
    "synthesize_clips",
]

SHAPES: tuple[str, ...] = ("disc", "square", "triangle", "ring")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"  # YouTube id characters
_SHIFT = 4  # fractional bits for cv2 drawing (sub-pixel motion)


@dataclass
class SynthClipsConfig:
    """What to generate; stored resolved in ``synth.json``."""

    classes: int = bounded(5, ge=2, le=1000)
    clips_per_class: int = bounded(6, ge=2)
    seed: int = bounded(0, ge=0)
    #: Clip length (VGGSound clips are 10 s).
    seconds: float = bounded(10.0, gt=0.0)
    fps: float = bounded(25.0, gt=0.0)
    #: Frame size in pixels (even, as H.264 yuv420p needs); 4:3, so the 224x224 resize squeezes as on real video.
    width: int = bounded(320, ge=16)
    height: int = bounded(240, ge=16)
    sample_rate: int = bounded(16000, ge=8000)
    #: Share of each class's clips in the test split (at least one test and one train clip per class).
    test_fraction: float = bounded(0.2, gt=0.0, le=0.9)
    #: Processes that render and encode clips; 0 = up to 4. Results do not depend on it.
    workers: int = bounded(0, ge=0)


@dataclass
class SynthClipsSummary:
    """What :func:`synthesize_clips` produced."""

    root: Path
    counts: dict[str, int]
    seconds: float
    elapsed: float


@dataclass(frozen=True)
class ClassStyle:
    """How class ``index`` looks and sounds."""

    index: int
    name: str
    shape: str
    color: tuple[int, int, int]  # RGB
    pitch: float  # Hz


def class_style(index: int, classes: int) -> ClassStyle:
    """The appearance and pitch of one class (module docstring); names sort in class order."""
    hue = 180.0 * index / classes  # OpenCV's hue runs 0..180
    hsv = np.array([[[hue, 230, 240]]], np.uint8)
    color = tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])
    pitch = 300.0 * 10.0 ** (index / max(classes - 1, 1))
    shape = SHAPES[index % len(SHAPES)]
    digits = len(str(classes - 1))
    # A comma in every name: the CSV writer quotes it, as vggsound.csv quotes names like "cattle, bovinae cowbell".
    name = f"class {index:0{digits}d}, {shape} {pitch:.0f} Hz"
    return ClassStyle(index, name, shape, color, round(pitch, 3))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ one clip


def _envelope(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Bursts of 0.2-0.8 s with 0.05-0.3 s gaps and 10 ms ramps, starting on or off at random."""
    env = np.zeros(n, np.float32)
    t = int(rng.uniform(0.0, 0.3) * sr) if rng.random() < 0.5 else 0
    ramp = max(1, sr // 100)
    while t < n:
        length = int(rng.uniform(0.2, 0.8) * sr)
        burst = np.ones(length, np.float32)
        r = min(ramp, length // 2)
        if r:
            burst[:r] = np.linspace(0, 1, r, dtype=np.float32)
            burst[-r:] = np.linspace(1, 0, r, dtype=np.float32)
        stop = min(n, t + length)
        env[t:stop] = burst[: stop - t]
        t = stop + int(rng.uniform(0.05, 0.3) * sr)
    return env


def render_clip(seed: int, style: ClassStyle, config: SynthClipsConfig) -> tuple[np.ndarray, np.ndarray]:
    """(frames (N, H, W, 3) uint8 RGB, audio (samples,) float32) of one clip of class ``style``."""
    c = config
    rng = np.random.default_rng(seed)
    n_frames = max(1, round(c.seconds * c.fps))
    n_samples = round(n_frames / c.fps * c.sample_rate)
    # Audio: the class tone and two harmonics, detuned per clip, in bursts, over noise.
    env = _envelope(rng, n_samples, c.sample_rate)
    f0 = style.pitch * rng.uniform(0.98, 1.02)
    t = np.arange(n_samples) / c.sample_rate
    phase = rng.uniform(0, 2 * np.pi, 3)
    tone = sum(
        a * np.sin(2 * np.pi * k * f0 * t + p)
        for k, a, p in zip((1, 2, 3), (1.0, 0.35, 0.15), phase, strict=True)
        if k * f0 < c.sample_rate / 2
    )
    noise = rng.normal(0.0, 1.0, n_samples) * rng.uniform(0.003, 0.01)  # 25-40 dB below the tone
    audio = (rng.uniform(0.3, 0.5) * env * tone / 1.5 + noise).astype(np.float32)
    # Video: a dull background, two grey distractors, the class shape on a bouncing path.
    w, h = c.width, c.height
    base = rng.uniform(50, 120) + rng.uniform(-12, 12, 3)  # grey with a faint tint: low saturation
    gradient = np.linspace(0.85, 1.15, w)[None, :, None] * np.linspace(1.1, 0.9, h)[:, None, None]
    background = np.clip(base[None, None, :] * gradient, 0, 255).astype(np.uint8)
    for _ in range(2):
        x0, y0 = int(rng.uniform(0, w * 0.8)), int(rng.uniform(0, h * 0.8))
        grey = int(rng.uniform(60, 160))
        cv2.rectangle(
            background, (x0, y0), (x0 + int(w * 0.15), y0 + int(h * 0.15)), (grey, grey, grey), thickness=-1
        )
    radius = rng.uniform(0.14, 0.22) * min(w, h)
    position = np.array([rng.uniform(radius, w - radius), rng.uniform(radius, h - radius)])
    speed = rng.uniform(0.1, 0.35) * min(w, h)  # pixels per second
    angle = rng.uniform(0, 2 * np.pi)
    velocity = speed * np.array([math.cos(angle), math.sin(angle)]) / c.fps
    color = tuple(int(v) for v in np.clip(np.array(style.color) * rng.uniform(0.85, 1.0), 0, 255))
    hop = c.sample_rate / c.fps
    frames = np.empty((n_frames, h, w, 3), np.uint8)
    for i in range(n_frames):
        loud = float(env[int(i * hop) : int((i + 1) * hop)].mean()) if env.size else 0.0
        frame = background.copy()
        _draw(frame, style.shape, position, radius * (0.9 + 0.15 * loud), color)
        frames[i] = frame
        position = position + velocity
        for axis, limit in ((0, w), (1, h)):  # bounce off the edges
            if not radius <= position[axis] <= limit - radius:
                velocity[axis] = -velocity[axis]
                position[axis] = min(max(position[axis], radius), limit - radius)
    return frames, audio


def _draw(img: np.ndarray, shape: str, center: np.ndarray, r: float, color: tuple[int, ...]) -> None:
    one = 1 << _SHIFT
    cx, cy = (round(v * one) for v in center)
    rr = round(r * one)
    if shape == "disc":
        cv2.circle(img, (cx, cy), rr, color, -1, cv2.LINE_AA, _SHIFT)
    elif shape == "ring":
        cv2.circle(img, (cx, cy), int(rr * 0.8), color, max(2, int(r * 0.35)), cv2.LINE_AA, _SHIFT)
    elif shape == "square":
        s = int(rr * 0.85)
        cv2.rectangle(img, (cx - s, cy - s), (cx + s, cy + s), color, -1, cv2.LINE_AA, _SHIFT)
    else:
        pts = np.array(
            [
                [cx + rr * math.cos(a), cy + rr * math.sin(a)]
                for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)
            ],
            np.int32,
        )
        cv2.fillPoly(img, [pts], color, cv2.LINE_AA, _SHIFT)


# -------------------------------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class _Planned:
    ytid: str
    start: int
    cls: int
    split: str
    seed: int

    @property
    def rel(self) -> str:
        return f"video/{self.ytid}_{self.start:06d}.mp4"


def _plan(config: SynthClipsConfig) -> list[_Planned]:
    rng = np.random.default_rng([config.seed, 0])
    k = config.clips_per_class
    n_test = min(max(1, round(k * config.test_fraction)), k - 1)
    ids: set[str] = set()
    plan = []
    for cls in range(config.classes):
        test = set(rng.permutation(k)[:n_test].tolist())
        for j in range(k):
            while (ytid := "".join(rng.choice(list(_ALPHABET), 11))) in ids:
                pass
            ids.add(ytid)
            index = len(plan)
            plan.append(
                _Planned(
                    ytid=ytid,
                    start=int(rng.integers(0, 300)),
                    cls=cls,
                    split="test" if j in test else "train",
                    seed=int(np.random.SeedSequence([config.seed, 1, index]).generate_state(1)[0]),
                )
            )
    return sorted(plan, key=lambda p: (p.ytid, p.start))  # the release's CSV is sorted by id


def _render_job(job: tuple[str, _Planned, SynthClipsConfig]) -> None:
    path, item, config = job
    cv2.setNumThreads(1)
    frames, audio = render_clip(item.seed, class_style(item.cls, config.classes), config)
    write_mp4(path, frames, config.fps, audio, config.sample_rate)


def _csv_text(rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def synthesize_clips(
    out: str | Path,
    config: SynthClipsConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SynthClipsSummary:
    """Write the corpus under ``out`` (absent or empty). ``vggsound.csv``, ``classes.csv`` and ``synth.json`` are
    written last, so their presence marks a complete corpus."""
    config = config or SynthClipsConfig()
    validate(config)
    if config.width % 2 or config.height % 2:
        raise ConfigError(
            f"width and height must be even (H.264 yuv420p), got {config.width}x{config.height}"
        )
    root = Path(out)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UsageError(f"{out}: exists and is not empty")
    began = time.perf_counter()
    plan = _plan(config)
    (root / "video").mkdir(parents=True, exist_ok=True)
    workers = config.workers or min(4, len(plan))
    jobs = [(str(root / p.rel), p, config) for p in plan]
    for done, _ in enumerate(ordered_map(_render_job, jobs, workers), 1):
        if progress:
            progress(done, len(plan))
    styles = [class_style(i, config.classes) for i in range(config.classes)]
    rows = [[p.ytid, p.start, styles[p.cls].name, p.split] for p in plan]
    atomic_write_text(root / "vggsound.csv", _csv_text(rows))
    table = [["index", "mid", "display_name"]] + [[s.index, f"/synth/{s.index:04d}", s.name] for s in styles]
    atomic_write_text(root / "classes.csv", _csv_text(table))
    n_frames = max(1, round(config.seconds * config.fps))
    meta = {
        "config": {**asdict(config), "workers": workers},
        "avkd_version": __version__,
        "classes": [asdict(s) for s in styles],
        "clips": [{"path": p.rel, "ytid": p.ytid, "start": p.start, "class": p.cls, "split": p.split, "seed": p.seed}
                  for p in plan],
    }  # fmt: skip
    atomic_write_text(root / "synth.json", json.dumps(meta, indent=1) + "\n")
    counts = {split: sum(p.split == split for p in plan) for split in ("train", "test")}
    return SynthClipsSummary(root, counts, len(plan) * n_frames / config.fps, time.perf_counter() - began)
