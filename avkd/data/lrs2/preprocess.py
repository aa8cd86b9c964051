"""``avkd preprocess lrs2``: LRS2-layout mp4 files into an ``lrs2-features`` artifact (face crops, audio, mel).

Per utterance: decode (decord or PyAV), check the frame and sample rates, downmix to mono, find a face box per
frame (``fixed`` / ``haar`` / ``boxes``), crop and resize it to 96x96 RGB, trim video and audio to a common
length so that frame ``n`` starts at audio sample ``640·n``, and compute the VocaLiST mel of the whole clip.
Utterances are processed by a pool of processes and written in order into HDF5 part files
(:mod:`avkd.data.lrs2.store`). A bad file never stops the run: it goes into the failures list with its reason.
``--shard i/N`` processes every N-th utterance; :func:`merge_lrs2` joins the shards.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

from avkd.core import config as cfg
from avkd.core.artifacts import (
    LRS2_FEATURES,
    Artifact,
    ArtifactWriter,
    atomic_write_text,
    finished,
    load_artifact,
)
from avkd.core.config import bounded, validate
from avkd.core.errors import AvkdError, MediaError, UsageError
from avkd.core.jsonl import jsonl_text, read_jsonl
from avkd.core.parallel import ordered_map
from avkd.core.progress import ProgressReporter, log
from avkd.data.failures import FAILURES, reason_counts
from avkd.data.lrs2 import store
from avkd.data.lrs2.layout import SPLITS, Utterance, list_utterances
from avkd.data.parts import PartsWriter
from avkd.media.audio import SAMPLE_RATE, from_int16, resample, to_int16, to_mono, vocalist_mel
from avkd.media.faces import DEFAULT_FIXED_BOX, FaceDetector, build_detector, crop_faces
from avkd.media.video import Media, decode, resolve_decoder


@dataclass
class DetectorConfig:
    """Where the face is in each frame.

    ``fixed`` (default): LRS2 clips are already face-centred 160x160 crops, so one box fits all frames; ``box`` is
    in fractions of width/height (all values <= 1) or pixels. ``haar``: OpenCV's frontal-face cascade shipped in
    the opencv wheel, run every ``detect_every`` frames with temporal smoothing. ``boxes``: per-frame boxes from
    ``boxes_file`` made with any detector (lines ``key,frame,x0,y0,x1,y1``, key = ``main/<speaker>/<utt>``).
    ``auto``: the Haar boxes where the cascade finds a face in a clip, else the fixed box (for videos of unknown
    framing, e.g. ``avkd sync``).
    """

    name: Literal["fixed", "haar", "boxes", "auto"] = "fixed"
    box: tuple[float, float, float, float] = DEFAULT_FIXED_BOX
    boxes_file: str | None = None
    #: Haar: run the cascade every k-th frame and hold/interpolate between (k=2 stays within 2 px of k=1).
    detect_every: int = 2
    #: Haar: temporal smoothing of box centre and size over ±smoothing detections.
    smoothing: int = 2
    #: Haar: grow the box by these fractions (left, top, right, bottom); the cascade's box is tight around
    #: eyes and mouth, +10% at the bottom takes in the chin like the S3FD boxes of Wav2Lip's crops.
    expand: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.1)
    min_neighbors: int = 5
    min_size_frac: float = 0.3

    def build(self) -> FaceDetector:
        haar = {
            "detect_every": self.detect_every,
            "smoothing": self.smoothing,
            "expand": self.expand,
            "min_neighbors": self.min_neighbors,
            "min_size_frac": self.min_size_frac,
        }
        if self.name == "fixed":
            return build_detector("fixed", box=self.box)
        if self.name == "haar":
            return build_detector("haar", **haar)
        if self.name == "auto":
            return build_detector("auto", box=self.box, haar=haar)
        if not self.boxes_file:
            raise UsageError(
                "detector 'boxes' needs a boxes file: --boxes PATH (or --set detector.boxes_file=PATH)"
            )
        return build_detector("boxes", path=self.boxes_file)


@dataclass
class LRS2PreprocessConfig:
    """Resolved settings of one preprocessing run (written into the artifact)."""

    splits: list[str] = field(default_factory=lambda: list(SPLITS))
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    #: Face crop side (Wav2Lip/VocaLiST: 96; VocaLiST uses the lower half 48x96 at training time).
    crop_size: int = bounded(96, ge=8)
    fps: float = 25.0
    sample_rate: int = SAMPLE_RATE
    #: LRS2 is 25 fps / 16 kHz throughout, so anything else is treated as a broken file and listed as a
    #: failure; with ``resample`` it is converted instead (frames by timestamp, audio with torchaudio).
    resample: bool = False
    audio_dtype: Literal["int16", "float32"] = "int16"
    decoder: str = "auto"
    #: Face crops as JPEG (5x smaller, what the reference models saw) or raw arrays; see avkd.data.lrs2.store.
    frame_codec: Literal["jpeg", "raw"] = "jpeg"
    jpeg_quality: int = bounded(95, ge=1, le=100)
    #: HDF5 filter for audio, mel and raw frames (measured in benchmarks/preprocess.py).
    compression: Literal["none", "lzf", "gzip"] = "lzf"
    #: Utterances per HDF5 part file (the unit of atomic writing and of work lost on a kill).
    part_size: int = bounded(64, ge=1)
    #: Fraction of failed utterances above which the command exits non-zero (the artifact is still written).
    max_failures: float = bounded(0.01, ge=0.0, le=1.0)
    shard_index: int = 0
    shard_count: int = 1
    #: Process only the first ``limit`` utterances of the selection (a quick look at a new corpus).
    limit: int | None = bounded(None, ge=1)


# -------------------------------------------------------------------------------------- one utterance


def read_clip(path: Path, config: LRS2PreprocessConfig) -> tuple[Media, np.ndarray, np.ndarray]:
    """Decode one clip and check it as preprocessing needs it: (media, frames at ``config.fps``, mono float
    audio at ``config.sample_rate``, both cut to whole frames). Every problem is one :class:`MediaError`:
    undecodable or truncated, no frames, no audio, other rates without ``resample``. ``avkd data check --deep``
    runs this same function, so the check and the preprocessing agree on what is broken."""
    media = decode(path, decoder=config.decoder)
    frames = media.frames
    if frames.shape[0] == 0:
        raise MediaError(f"{path}: zero-length clip (no video frames)")
    if media.audio is None or media.audio.size == 0:
        raise MediaError(f"{path}: no audio stream")
    if abs(media.fps - config.fps) > 0.01:
        if not config.resample:
            raise MediaError(
                f"{path}: frame rate {media.fps:g} fps, expected {config.fps:g} (pass --resample to convert)"
            )
        frames = _resample_frames(frames, media.fps, config.fps)
    wave = to_mono(media.audio)
    if media.sample_rate != config.sample_rate:
        if not config.resample:
            raise MediaError(
                f"{path}: sample rate {media.sample_rate} Hz, expected {config.sample_rate} (pass --resample to convert)"
            )
        wave = resample(wave, media.sample_rate, config.sample_rate)
    hop = round(config.sample_rate / config.fps)  # 640 samples per frame at 16 kHz / 25 fps
    n = min(frames.shape[0], wave.shape[0] // hop)
    if n == 0:
        raise MediaError(
            f"{path}: zero-length clip ({frames.shape[0]} frames, {wave.shape[0]} audio samples)"
        )
    frames = frames[:n]
    wave = np.ascontiguousarray(wave[: n * hop], dtype=np.float32)
    return media, frames, wave


def extract_features(
    path: Path,
    key: str,
    config: LRS2PreprocessConfig,
    detector: FaceDetector,
    detector_key: str | None = None,
    source: str | None = None,
) -> store.UtteranceFeatures:
    """Decode one mp4 and compute everything stored for it; any problem is a :class:`MediaError`.

    ``source`` is the name recorded for the clip (default: ``path``); a corpus records the path under its root,
    so that the stored features, and an artifact's id, do not depend on where the corpus lies."""
    media, frames, wave = read_clip(path, config)
    boxes = detector.boxes(frames, key=detector_key or key)
    crops = crop_faces(frames, boxes, size=config.crop_size)
    audio = to_int16(wave) if config.audio_dtype == "int16" else wave
    # The mel is computed from the audio as stored, so that recomputing it from the artifact gives it back.
    mel = vocalist_mel(from_int16(audio) if config.audio_dtype == "int16" else wave)
    attrs = {
        "fps": float(config.fps),
        "sample_rate": int(config.sample_rate),
        "source": source if source is not None else str(path),
        "source_frames": int(media.frames.shape[0]),
        "source_fps": float(media.fps),
        "source_sample_rate": int(media.sample_rate),
        "decoder": media.decoder,
        "frame_size": [int(media.frames.shape[2]), int(media.frames.shape[1])],
    }
    return store.UtteranceFeatures(key, crops, audio, mel, boxes.astype(np.int16), attrs)


def _resample_frames(frames: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Pick, for each output time n/dst_fps, the source frame on screen at that time."""
    duration = frames.shape[0] / src_fps
    count = int(np.floor(duration * dst_fps + 1e-6))
    index = np.minimum(np.floor(np.arange(count) * src_fps / dst_fps + 1e-6).astype(int), frames.shape[0] - 1)
    return frames[index]


# Worker state: each process builds its detector once (a Haar cascade or a parsed boxes file is not free).
_WORKER: dict[str, Any] = {}


def _init_worker(config_dict: dict[str, Any]) -> None:
    config = cfg.from_dict(LRS2PreprocessConfig, config_dict)
    _WORKER["config"] = config
    _WORKER["detector"] = config.detector.build()


def _process(utt: Utterance) -> tuple[Utterance, store.UtteranceFeatures | None, str | None]:
    config: LRS2PreprocessConfig = _WORKER["config"]
    if not utt.path.is_file():
        return utt, None, f"file missing: {utt.path}"
    try:
        features = extract_features(
            utt.path,
            utt.key,
            config,
            _WORKER["detector"],
            detector_key=utt.source_key,
            source=f"{utt.source_key}{utt.path.suffix}",  # the root is the manifest's "corpus"
        )
    except MediaError as exc:
        return utt, None, str(exc).removeprefix(f"{utt.path}: ")
    except Exception as exc:  # a decoder or detector bug on one file must not end a day-long job
        return utt, None, f"unexpected {type(exc).__name__}: {exc}"
    features.attrs["tag"] = utt.tag
    return utt, features, None


# ------------------------------------------------------------------------------------------ the stage


@dataclass
class PreprocessResult:
    artifact: Artifact
    processed: int
    failed: int
    skipped: int  # already done by an earlier, interrupted run (--resume)
    elapsed: float


def select_shard(items: list[Utterance], index: int, count: int) -> list[Utterance]:
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"shard {index}/{count}: need 0 <= index < count")
    return items[index::count]


def preprocess_lrs2(
    config: LRS2PreprocessConfig,
    root: str | Path,
    out: str | Path,
    workers: int = 1,
    overwrite: bool = False,
    resume: bool = False,
    show_progress: bool = True,
) -> PreprocessResult:
    """Preprocess an LRS2-layout corpus at ``root`` into an ``lrs2-features`` artifact at ``out``."""
    start = time.monotonic()
    root = Path(root)
    out = Path(out)
    validate(config)
    if workers < 1:
        raise UsageError(f"--workers {workers}: need at least 1")
    config = dataclasses.replace(config, decoder=resolve_decoder(config.decoder))  # recorded as resolved
    config.detector.build()  # fail fast on a bad detector setting, before any worker starts
    if (done := finished(out, LRS2_FEATURES, resume)) is not None:
        return PreprocessResult(done, 0, 0, 0, 0.0)
    corpus = list_utterances(root, config.splits)
    # Every index entry and failure keeps its position in the whole corpus, so merging shards restores the
    # exact order of a single run.
    position = {u.key: i for i, u in enumerate(corpus)}
    items = select_shard(corpus, config.shard_index, config.shard_count)
    if config.limit is not None:
        items = items[: config.limit]
    if not items:
        raise UsageError(
            f"{root}: no utterance selected (splits {', '.join(config.splits)}, shard {config.shard_index} of "
            f"{config.shard_count}); nothing to preprocess"
        )
    resolved = cfg.to_dict(config)
    with ArtifactWriter(out, LRS2_FEATURES, resolved, overwrite=overwrite, resume=resume) as writer:
        write = partial(
            store.write_part,
            compression=config.compression,
            frame_codec=config.frame_codec,
            jpeg_quality=config.jpeg_quality,
        )
        parts = PartsWriter(writer, write, config.part_size, unit="utterances")
        todo = [u for u in items if u.key not in parts.done_keys]
        if writer.resumed:
            log(f"{out}: resuming, {len(parts.done_keys)} of {len(items)} utterances already done")
        with ProgressReporter(len(todo), f"preprocess {root.name or root}", enabled=show_progress) as bar:
            results = ordered_map(_process, todo, workers, initializer=_init_worker, initargs=(resolved,))
            for utt, features, reason in results:
                if features is None:
                    parts.fail(
                        {"key": utt.key, "order": position[utt.key], "path": str(utt.path), "reason": reason}
                    )
                    bar.advance(1, failed=1)
                else:
                    features.attrs["order"] = position[utt.key]
                    parts.add(features)
                    bar.advance(1)
            parts.flush()
        entries, all_failures = parts.entries(), parts.failures()
        atomic_write_text(writer.path(store.INDEX), jsonl_text(entries))
        atomic_write_text(writer.path(FAILURES), jsonl_text(all_failures))
        artifact = writer.commit(
            metrics=summarize(entries, all_failures, config.fps), corpus=str(root.resolve())
        )
    return PreprocessResult(
        artifact, len(todo), len(parts.new_failures), len(parts.done_keys), time.monotonic() - start
    )


def summarize(entries: list[dict[str, Any]], failures: list[dict[str, Any]], fps: float) -> dict[str, Any]:
    total = len(entries) + len(failures)
    frames = sum(e["n_frames"] for e in entries)
    return {
        "utterances": len(entries),
        "failures": len(failures),
        "failure_share": len(failures) / total if total else 0.0,
        "frames": frames,
        "seconds": frames / fps,
        "per_split": dict(Counter(e["split"] for e in entries)),
        "failure_reasons": reason_counts(failures),
    }


# -------------------------------------------------------------------------------------------- shards


def shard_from_env(env: dict[str, str] | None = None) -> tuple[int, int] | None:
    """(index, count) from a Slurm array job (SLURM_ARRAY_TASK_ID / _COUNT, offset by _MIN), else None."""
    env = dict(os.environ) if env is None else env
    if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
        return None
    values = {}
    for name, default in (
        ("SLURM_ARRAY_TASK_ID", None),
        ("SLURM_ARRAY_TASK_COUNT", None),
        ("SLURM_ARRAY_TASK_MIN", "0"),
    ):
        text = env.get(name, default)
        if text is None or not text.strip().isdigit():
            raise UsageError(f"{name}={text!r}: expected a whole number (or pass --shard INDEX/COUNT)")
        values[name] = int(text)
    task = values["SLURM_ARRAY_TASK_ID"] - values["SLURM_ARRAY_TASK_MIN"]
    count = values["SLURM_ARRAY_TASK_COUNT"]
    if not 0 <= task < count:
        raise UsageError(
            f"SLURM_ARRAY_TASK_ID={values['SLURM_ARRAY_TASK_ID']}: outside the array of {count} tasks starting at "
            f"{values['SLURM_ARRAY_TASK_MIN']}"
        )
    return task, count


def parse_shard(text: str) -> tuple[int, int]:
    """``"3/8"`` -> (3, 8): shard 3 of 8, zero-based."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise UsageError(f"--shard {text!r}: expected INDEX/COUNT, e.g. 0/8")
    index, count = int(match[1]), int(match[2])
    if count < 1 or index >= count:
        raise UsageError(f"--shard {text!r}: need 0 <= INDEX < COUNT")
    return index, count


def shard_path(out: Path, index: int, count: int) -> Path:
    """Where shard ``index`` of ``count`` goes when the same ``--out`` is given to every array task."""
    return out.with_name(f"{out.name}.shard-{index:04d}-of-{count:04d}")


def find_shards(out: Path) -> list[Path]:
    return sorted(p for p in out.parent.glob(f"{out.name}.shard-*-of-*") if not p.name.endswith(".partial"))


def merge_lrs2(shards: list[str | Path], out: str | Path, overwrite: bool = False) -> Artifact:
    """Join shard artifacts into one, checking that every shard is there exactly once and that they agree.

    Part files are hard-linked where the filesystem allows (no copy of a corpus worth of HDF5), else copied;
    their hashes are taken from the shard manifests rather than recomputed.
    """
    if not shards:
        raise UsageError("merge: no shard artifacts given or found")
    arts = [load_artifact(p, kind=LRS2_FEATURES) for p in shards]
    counts = {a.config.get("shard_count") for a in arts}
    if len(counts) != 1:
        raise AvkdError(f"merge: shards disagree on the shard count: {sorted(counts)}")
    count = counts.pop()
    seen: dict[int, Path] = {}
    for art in arts:
        index = art.config["shard_index"]
        if index in seen:
            raise AvkdError(f"merge: shard {index}/{count} given twice ({seen[index]} and {art.path})")
        seen[index] = art.path
    missing = sorted(set(range(count)) - set(seen))
    if missing:
        raise AvkdError(f"merge: missing shard(s) {', '.join(f'{i}/{count}' for i in missing)}")

    def common(config: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in config.items() if k not in ("shard_index", "shard_count")}

    base = common(arts[0].config)
    for art in arts[1:]:
        if common(art.config) != base:
            raise AvkdError(f"merge: {art.path} was made with a different config than {arts[0].path}")
    arts.sort(key=lambda a: a.config["shard_index"])
    merged_config = {**arts[0].config, "shard_index": 0, "shard_count": 1}
    entries, failures, keys = [], [], set()
    with ArtifactWriter(out, LRS2_FEATURES, merged_config, inputs=arts, overwrite=overwrite) as writer:
        parts_dir = writer.path(store.PARTS_DIR)
        parts_dir.mkdir(exist_ok=True)
        for art in arts:
            prefix = f"s{art.config['shard_index']:04d}-"
            renamed: dict[str, str] = {}
            for name, info in art.files.items():
                if not name.startswith(f"{store.PARTS_DIR}/"):
                    continue
                new_name = f"{store.PARTS_DIR}/{prefix}{Path(name).name}"
                _link_or_copy(art.path / name, writer.workdir / new_name)
                writer.manifest["files"][new_name] = dict(info)
                renamed[name] = new_name
            for entry in read_jsonl(art.path / store.INDEX):
                if entry["key"] in keys:
                    raise AvkdError(f"merge: utterance {entry['key']} appears in more than one shard")
                keys.add(entry["key"])
                entries.append({**entry, "part": renamed[entry["part"]]})
            failures += read_jsonl(art.path / FAILURES)
        entries.sort(key=lambda e: e["order"])
        failures.sort(key=lambda f: f["order"])
        atomic_write_text(writer.path(store.INDEX), jsonl_text(entries))
        atomic_write_text(writer.path(FAILURES), jsonl_text(failures))
        return writer.commit(
            metrics=summarize(entries, failures, merged_config["fps"]),
            merged_from=[a.ref() for a in arts],
            corpus=arts[0].manifest.get("corpus"),
        )


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def describe(artifact: Artifact) -> str:
    """A short human summary of a features artifact."""
    m = artifact.metrics
    splits = ", ".join(f"{k} {v}" for k, v in m.get("per_split", {}).items())
    return (
        f"{artifact.path}: {m.get('utterances', 0)} utterances ({splits}), {m.get('frames', 0)} frames = "
        f"{m.get('seconds', 0.0):.1f} s, {m.get('failures', 0)} failed; id {artifact.id}"
    )
