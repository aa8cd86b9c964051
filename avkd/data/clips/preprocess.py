"""``avkd preprocess clips``: a labelled clip corpus (VGGSound or AudioSet layout) into a ``clips-features``
artifact of 10 frames and a log-mel filterbank per clip, the inputs of AVSiam (:mod:`avkd.models.avsiam`).

Per clip (docs/reference/avsiam-mfh-syncnet.md §1.7; the released fine-tuning loader
``src/dataloader_ft.py``, GenjiB/AVSiam @f700326):

- **frames**: decode every frame (avkd's decoders), take ``frames`` = 10 of the N decoded frames at indices
  ``floor(k·(N−1)/9)``, k = 0..9 (``np.linspace(0, N−1, 10)`` floored: the first frame, the last and eight evenly
  between; source time ``index / fps``), and resize each, the whole frame without cropping, to ``size`` × ``size``
  = 224 × 224 with antialiased bicubic interpolation (the release's ``Resize([224, 224], BICUBIC, antialias=True)``
  on [0, 1] tensors). Stored as uint8, so bicubic overshoot is clipped to 0..255 and values are rounded to the
  nearest level; ImageNet normalisation is the dataset's job (:mod:`avkd.data.clips.dataset`). The release draws the
  linspace start at random in 0..5 (pre-training) or 0..30 (fine-tuning), an augmentation of its training loader
  that a stored corpus does not fix; here the start is 0;
- **audio**: :func:`avkd.data.clips.audio.clip_fbank`: 16 kHz mono, mean removed, Kaldi fbank of ``mel_bins`` = 128
  bins, ``mel_frames`` = 1024 frames padded or cut, normalised with ``fbank_mean`` / ``fbank_std``.

Bad clips never stop the run; each goes into ``failures.jsonl`` with its reason: the mp4 missing, undecodable or
cut short (the decoders reject a truncated file), no audio stream, or shorter than ``min_seconds`` in video or
audio (the release pads anything; a 1 s clip would be 90% padding). Parts, the failure share and ``--resume``
work as in ``avkd preprocess lrs2`` (:mod:`avkd.data.lrs2.preprocess`), with its functions.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from avkd.core import config as cfg
from avkd.core.artifacts import (
    CLIPS_FEATURES,
    Artifact,
    ArtifactWriter,
    atomic_write_text,
    finished,
    sha256_file,
)
from avkd.core.config import bounded, validate
from avkd.core.errors import MediaError, UsageError
from avkd.core.jsonl import jsonl_text
from avkd.core.parallel import ordered_map
from avkd.core.progress import ProgressReporter, log
from avkd.data.clips import store
from avkd.data.clips.audio import FBANK_MEAN, FBANK_STD, clip_fbank
from avkd.data.clips.layout import NAME_TEMPLATES, SPLITS, Clip, list_clips
from avkd.data.failures import FAILURES, reason_counts
from avkd.data.lrs2.preprocess import PreprocessResult
from avkd.data.parts import PartsWriter
from avkd.media.video import decode, resolve_decoder

__all__ = [
    "ClipsPreprocessConfig",
    "describe",
    "extract_features",
    "frame_indices",
    "preprocess_clips",
    "read_clip",
    "resize_frames",
]


@dataclass
class ClipsPreprocessConfig:
    """Resolved settings of one clips preprocessing run (written into the artifact). Defaults are the released
    AVSiam inputs (module docstring); the sizes are settings so that tests and toy models can run small."""

    #: ``vggsound`` (``youtube_id,start_seconds,label,split``), ``audioset`` (segment CSV) or ``auto``.
    format: Literal["auto", "vggsound", "audioset"] = "auto"
    splits: list[str] = field(default_factory=lambda: list(SPLITS))
    #: The split of an AudioSet CSV's rows (it has no split column); None: from its file name (``eval`` → test).
    split: str | None = None
    #: mp4 names tried for a clip, in order (fields ``{id}``, ``{start}``, ``{end}``; avkd.data.clips.layout).
    templates: list[str] = field(default_factory=lambda: list(NAME_TEMPLATES))
    #: Frames kept per clip, evenly spaced over it (the release: 10).
    frames: int = bounded(10, ge=1)
    #: Side of the square frames (the release: 224, ViT-B/16's input).
    size: int = bounded(224, ge=8)
    #: Mel bins (rows) and frames (columns) of the fbank (the release: 128 × 1024).
    mel_bins: int = bounded(128, ge=8)
    mel_frames: int = bounded(1024, ge=1)
    #: Normalisation (x − mean) / std (the release's AudioSet statistics); 0 and 1 store the raw log-mel.
    fbank_mean: float = FBANK_MEAN
    fbank_std: float = bounded(FBANK_STD, gt=0)
    #: Clips shorter than this (video or audio) are failures; at least one 25 ms fbank window.
    min_seconds: float = bounded(1.0, ge=0.025)
    decoder: str = "auto"
    #: Frames as raw uint8 arrays (default) or one JPEG each (q95: 7.7x smaller on LRS2 face crops,
    #: avkd.data.lrs2.store).
    frame_codec: Literal["raw", "jpeg"] = "raw"
    jpeg_quality: int = bounded(95, ge=1, le=100)
    #: HDF5 filter of raw frames and the fbank. gzip (level 1), not lzf as the LRS2 stage: h5py's lzf output
    #: differs from run to run on the same frames (its hash table starts uninitialised), so lzf parts would
    #: give a rerun another artifact id; gzip is deterministic and here also smaller and as fast.
    compression: Literal["none", "lzf", "gzip"] = "gzip"
    #: Clips per HDF5 part file (the unit of atomic writing and of work lost on a kill).
    part_size: int = bounded(64, ge=1)
    #: Share of failed clips above which the command exits non-zero (the artifact is still written).
    max_failures: float = bounded(0.01, ge=0.0, le=1.0)
    #: Process only the first ``limit`` clips of the selection.
    limit: int | None = bounded(None, ge=1)


# ------------------------------------------------------------------------------------------------ one clip


def frame_indices(n_source: int, count: int) -> np.ndarray:
    """Indices of ``count`` frames evenly spread over ``n_source``: ``floor(k·(n−1)/(count−1))``, first and last
    included (``np.linspace(0, n−1, count)`` floored, as the release; indices repeat when n < count)."""
    if n_source < 1:
        raise ValueError("no frames to sample")
    return np.floor(np.linspace(0, n_source - 1, count) + 1e-9).astype(np.int64)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """(n, H, W, 3) uint8 → (n, size, size, 3) uint8: antialiased bicubic over the whole frame (no crop), then
    rounded and clipped to 0..255."""
    if frames.shape[1] == size and frames.shape[2] == size:
        return np.ascontiguousarray(frames)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        y = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def read_clip(path: Path, config: ClipsPreprocessConfig) -> tuple[np.ndarray, float, np.ndarray, int]:
    """Decode one clip and check it as preprocessing needs it: (frames, fps, audio (channels, samples),
    sample rate). Every problem is one :class:`MediaError` (missing, undecodable or truncated, no audio stream,
    too short)."""
    media = decode(path, decoder=config.decoder)
    if media.audio is None or media.audio.size == 0:
        raise MediaError(f"{path}: no audio stream")
    video_s = media.n_frames / media.fps
    audio_s = media.audio.shape[-1] / media.sample_rate
    if min(video_s, audio_s) < config.min_seconds:
        raise MediaError(
            f"{path}: too short: {video_s:.2f} s of video, {audio_s:.2f} s of audio (need {config.min_seconds:g} s)"
        )
    return media.frames, float(media.fps), media.audio, int(media.sample_rate)


def extract_features(
    path: Path, key: str, labels: list[int], config: ClipsPreprocessConfig, source: str | None = None
) -> store.ClipFeatures:
    """Decode one mp4 and compute what is stored for it; any problem is a :class:`MediaError`."""
    frames, fps, audio, sample_rate = read_clip(path, config)
    index = frame_indices(frames.shape[0], config.frames)
    picked = resize_frames(frames[index], config.size)
    fbank, valid = clip_fbank(
        audio,
        sample_rate,
        num_mel_bins=config.mel_bins,
        target_length=config.mel_frames,
        mean=config.fbank_mean,
        std=config.fbank_std,
    )
    attrs = {
        "source": source if source is not None else str(path),
        "fps": fps,
        "source_frames": int(frames.shape[0]),
        "source_sample_rate": sample_rate,
        "frame_size": [int(frames.shape[2]), int(frames.shape[1])],
        "times": [round(float(i) / fps, 6) for i in index],
        "duration": round(min(frames.shape[0] / fps, audio.shape[-1] / sample_rate), 6),
        "mel_valid": int(valid),
    }
    return store.ClipFeatures(key, picked, fbank, labels, attrs)


# Worker state: the config, parsed once per process.
_WORKER: dict[str, Any] = {}


def _init_worker(config_dict: dict[str, Any]) -> None:
    _WORKER["config"] = cfg.from_dict(ClipsPreprocessConfig, config_dict)


@dataclass(frozen=True)
class _Job:
    clip: Clip
    labels: list[int]
    source: (
        str  # the path under the corpus root, recorded so that the artifact does not depend on where it lies
    )


def _process(job: _Job) -> tuple[_Job, store.ClipFeatures | None, str | None]:
    config: ClipsPreprocessConfig = _WORKER["config"]
    clip = job.clip
    if not clip.path.is_file():
        return job, None, f"file missing: {clip.path}"
    try:
        features = extract_features(clip.path, clip.key, job.labels, config, source=job.source)
    except MediaError as exc:
        return job, None, str(exc).removeprefix(f"{clip.path}: ")
    except Exception as exc:  # a decoder bug on one file must not end a day-long job
        return job, None, f"unexpected {type(exc).__name__}: {exc}"
    features.attrs.update(ytid=clip.ytid, start=clip.start)
    return job, features, None


# ---------------------------------------------------------------------------------------------- the stage


def _file_id(path: Path) -> dict[str, str]:
    return {"file": path.name, "sha256": sha256_file(path)}


def preprocess_clips(
    config: ClipsPreprocessConfig,
    root: str | Path,
    labels: str | Path,
    out: str | Path,
    classes_file: str | Path | None = None,
    workers: int = 1,
    overwrite: bool = False,
    resume: bool = False,
    show_progress: bool = True,
) -> PreprocessResult:
    """Preprocess the clips that ``labels`` lists under ``root`` into a ``clips-features`` artifact at ``out``.

    The labels CSV and the classes file are inputs: their names and sha256 go into the recorded config, so the
    artifact's id changes with them and ``--resume`` refuses a run whose labels changed.
    """
    start = time.monotonic()
    root, labels, out = Path(root), Path(labels), Path(out)
    validate(config)
    if workers < 1:
        raise UsageError(f"--workers {workers}: need at least 1")
    config = dataclasses.replace(config, decoder=resolve_decoder(config.decoder))  # recorded as resolved
    if (done := finished(out, CLIPS_FEATURES, resume)) is not None:
        return PreprocessResult(done, 0, 0, 0, 0.0)
    corpus = list_clips(
        root,
        labels,
        format=config.format,
        classes_file=classes_file,
        splits=config.splits,
        split=config.split,
        templates=config.templates,
    )
    # Every entry and failure keeps its position in the CSV, so the index reads in the CSV's order.
    items = corpus.clips[: config.limit] if config.limit is not None else corpus.clips
    if not items:
        raise UsageError(
            f"{labels}: no clip selected (splits {', '.join(config.splits)}); nothing to preprocess"
        )
    position = {clip.key: i for i, clip in enumerate(corpus.clips)}
    resolved = cfg.to_dict(config)
    recorded = {
        **resolved,
        "labels": _file_id(labels),
        "classes": _file_id(Path(classes_file)) if classes_file else None,
    }
    with ArtifactWriter(out, CLIPS_FEATURES, recorded, overwrite=overwrite, resume=resume) as writer:
        write = partial(
            store.write_part,
            compression=config.compression,
            frame_codec=config.frame_codec,
            jpeg_quality=config.jpeg_quality,
        )
        parts = PartsWriter(writer, write, config.part_size, unit="clips")
        todo = [c for c in items if c.key not in parts.done_keys]
        if writer.resumed:
            log(f"{out}: resuming, {len(parts.done_keys)} of {len(items)} clips already done")
        media = root.resolve()
        jobs = [_Job(c, corpus.label_indices(c), _relative(c.path, media)) for c in todo]
        with ProgressReporter(len(jobs), f"preprocess {root.name or root}", enabled=show_progress) as bar:
            results = ordered_map(_process, jobs, workers, initializer=_init_worker, initargs=(resolved,))
            for job, features, reason in results:
                key = job.clip.key
                if features is None:
                    parts.fail(
                        {"key": key, "order": position[key], "path": str(job.clip.path), "reason": reason}
                    )
                    bar.advance(1, failed=1)
                else:
                    features.attrs["order"] = position[key]
                    parts.add(features)
                    bar.advance(1)
            parts.flush()
        entries, all_failures = parts.entries(), parts.failures()
        atomic_write_text(writer.path(store.INDEX), jsonl_text(entries))
        atomic_write_text(writer.path(FAILURES), jsonl_text(all_failures))
        atomic_write_text(writer.path(store.CLASSES), json.dumps(corpus.classes, indent=1) + "\n")
        artifact = writer.commit(
            metrics=summarize(entries, all_failures, len(corpus.classes), corpus.duplicates),
            corpus=str(root.resolve()),
            labels_file=str(labels.resolve()),
            format=corpus.format,
            multi_label=corpus.multi_label,
        )
    return PreprocessResult(
        artifact, len(todo), len(parts.new_failures), len(parts.done_keys), time.monotonic() - start
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def summarize(
    entries: list[dict[str, Any]], failures: list[dict[str, Any]], classes: int, duplicates: int = 0
) -> dict[str, Any]:
    total = len(entries) + len(failures)
    return {
        "clips": len(entries),
        "failures": len(failures),
        "failure_share": len(failures) / total if total else 0.0,
        "classes": classes,
        "seconds": round(sum(e.get("duration", 0.0) for e in entries), 3),
        "per_split": dict(Counter(e["split"] for e in entries)),
        "per_class": {str(k): v for k, v in sorted(Counter(i for e in entries for i in e["labels"]).items())},
        "failure_reasons": reason_counts(failures),
        "duplicate_rows": duplicates,
    }


def describe(artifact: Artifact) -> str:
    """A short human summary of a clips-features artifact."""
    m = artifact.metrics
    splits = ", ".join(f"{k} {v}" for k, v in m.get("per_split", {}).items())
    return (
        f"{artifact.path}: {m.get('clips', 0)} clips ({splits}) of {m.get('classes', 0)} classes, "
        f"{m.get('seconds', 0.0):.1f} s, {m.get('failures', 0)} failed; id {artifact.id}"
    )
