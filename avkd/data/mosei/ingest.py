"""``avkd preprocess mosei``: CMU-MOSEI features (SDK ``.csd`` files or a MulT pickle) into a ``mosei-features``
artifact, and a torch Dataset over it.

Payload of the artifact (schema 1):

- ``mosei.h5`` with one group per split (``train``, ``val``, ``test``; schema 1 named the middle one ``valid``), each holding
  ``text (N, 50, 300)``, ``audio (N, 500, 74)``, ``vision (N, 500, 35)`` float32, ``label (N,)`` float32
  (continuous sentiment, nominally in [-3, 3]), ``ids (N,)`` utf-8 video ids and ``interval (N, 2)`` float64
  (segment start / end in seconds; NaN when the source does not say). Lengths and feature dims are those of
  MulT's unaligned MOSEI pickle (docs/reference/mult-mosei.md §2.1).
- ``failures.jsonl``: one line per labelled segment left out: ``split``, ``video``, ``segment`` (label row of the
  video for .csd, row of the split for a pickle), ``interval``, ``modality``, ``kind`` (reason class) and ``reason``.
- metrics in the manifest: segments per split, non-finite values replaced per modality, failures by reason,
  videos without a fold.

Choices (docs/reference/mult-mosei.md §2.1, §3, §5.5), stated once here and in the functions that make them:

1. **Padding** is on the LEFT and truncation keeps the LAST frames, as the SDK's ``get_tensors(direction=False)``
   does and as MulT's unaligned pickle is laid out (docs/reference/mult-mosei.md §2.1 "Padding", §3.4 ``get_tensors``).
2. **Segmentation of .csd files**: the labelled segments are the rows of the labels sequence (one row per
   ``intervals`` entry of each video). For each segment ``[s, e]`` and each modality we keep, in file order and
   without averaging, every frame whose interval *overlaps* it with positive length (``f_start < e`` and
   ``f_end > s``) -- the SDK's ``align`` rule without a collapse function (docs/reference/mult-mosei.md §3.4: frames overlapping the
   reference interval, zero-length overlaps dropped). Then pad/truncate as in 1. MulT's own unaligned
   preprocessing is not public (§3.4 "Obs"), so this is our reconstruction. Zero-length label intervals (< 1e-5 s)
   are failures. Word vectors are kept as stored (including ``sp`` silence tokens).
3. **Missing modality**: a video absent from a modality's file, or a segment with no overlapping frame, is a
   failure (the SDK's ``hard_unify`` would drop it; we do not impute zeros as ``impute`` would).
4. **Folds** are video-level (§3.3): a segment belongs to the fold of its video id (text before ``[``). Videos in
   no fold are counted (``videos_without_fold``) and skipped.
5. **Order** of rows: videos sorted by id (h5py's key order), segments in label-row order; a pickle keeps its
   own order.
6. **Non-finite values** (COVAREP holds ``-inf``) are replaced by ``nonfinite_value`` (0.0, like MulT's
   ``audio[audio == -inf] = 0``) and counted per modality in the stored (padded) tensors; NaN and +inf too,
   like Multimodal-Infomax's ``nan_to_num`` (§2.1).
7. **Label** = column ``label_column`` (0 = sentiment) of the labels sequence or of the pickle's ``labels``
   reshaped to (N, -1). Not clipped; :func:`label7` clips when making classes. A non-finite label is a failure.
8. **Pickles** are read with a restricted unpickler that only rebuilds numpy arrays (never arbitrary code).
   Pickle ``id`` rows: column 0 is the video (or ``vid[i]`` segment) id, columns 1-2, when present and numeric,
   the interval (§2.1). A pickle whose sequence length differs from the config is padded/truncated as in 1.
9. **Resume**: the whole file is rebuilt from the source on ``--resume`` of a partial run (one HDF5 file, no
   unit smaller than the run worth keeping); a complete artifact is returned unchanged.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from avkd.core import config as cfg
from avkd.core.artifacts import (
    MOSEI_FEATURES,
    Artifact,
    ArtifactWriter,
    atomic_write_text,
    finished,
)
from avkd.core.config import bounded, validate
from avkd.core.errors import ArtifactError, UsageError
from avkd.core.jsonl import jsonl_text
from avkd.core.progress import ProgressReporter, log
from avkd.data.mosei.format import FAILURES, FEATURES, MODALITIES, SOURCE_SPLITS, SPLITS
from avkd.data.mosei.safe_pickle import load_pickle_safely
from avkd.data.mosei.sdk import CsdFile, find_csd, load_folds, video_of

#: Label intervals shorter than this are zero-length (the SDK's epsilon, docs/reference/mult-mosei.md §3.4).
EPSILON = 1e-5

_COMPRESSION: dict[str, dict[str, Any]] = {
    "none": {},
    "lzf": {"compression": "lzf"},
    "gzip": {"compression": "gzip", "compression_opts": 4},
}


@dataclass
class MoseiIngestConfig:
    """Resolved settings of one ingest (written into the artifact). Defaults = MulT unaligned MOSEI (§2.1, §3.2).

    ``*_file`` are the CMU-MOSEI file names (docs/reference/mult-mosei.md §3.2), looked for anywhere under the source folder (the
    SDK puts them in ``language/``, ``acoustic/``, ``visual/``, ``labels/``); ``*_sequence`` are the SDK's names
    for them, recorded for the reader. For OpenFace 2 set ``vision_file=CMU_MOSEI_VisualOpenFace2.csd``,
    ``vision_sequence="OpenFace_2"`` and its ``vision_dim``.
    """

    text_len: int = bounded(50, ge=1)
    audio_len: int = bounded(500, ge=1)
    vision_len: int = bounded(500, ge=1)
    text_dim: int = bounded(300, ge=1)
    audio_dim: int = bounded(74, ge=1)
    vision_dim: int = bounded(35, ge=1)
    #: MulT's unaligned data is left-padded (content at the end, docs/reference/mult-mosei.md §2.1); the only layout supported.
    padding: Literal["left"] = "left"
    nonfinite_value: float = 0.0
    text_sequence: str = "glove_vectors"
    text_file: str = "CMU_MOSEI_TimestampedWordVectors.csd"
    audio_sequence: str = "COVAREP"
    audio_file: str = "CMU_MOSEI_COVAREP.csd"
    vision_sequence: str = "FACET 4.2"
    vision_file: str = "CMU_MOSEI_VisualFacet42.csd"
    labels_sequence: str = "All Labels"
    labels_file: str = "CMU_MOSEI_Labels.csd"
    #: Column of the labels sequence holding the target (0 = sentiment in [-3, 3]).
    label_column: int = bounded(0, ge=0)
    #: Folder with the SDK's ``train.txt valid.txt test.txt`` video ids; None = the bundled
    #: ``data_manifests/mosei_splits``.
    folds: str | None = None
    compression: Literal["none", "lzf", "gzip"] = "none"
    #: Share of failed segments that makes ``avkd preprocess mosei`` exit 1 (the artifact is kept). Higher than
    #: LRS2's 1%: the SDK's alignment drops segments of the real corpus too (MulT's pickles keep 22,856 of the
    #: 23,453 annotated segments, about 2.5%; docs/reference/mult-mosei.md §2.1 and the CMU-MOSEI paper).
    max_failures: float = bounded(0.05, ge=0.0, le=1.0)

    def lengths(self) -> dict[str, int]:
        return {"text": self.text_len, "audio": self.audio_len, "vision": self.vision_len}

    def dims(self) -> dict[str, int]:
        return {"text": self.text_dim, "audio": self.audio_dim, "vision": self.vision_dim}

    def files(self) -> dict[str, str]:
        return {
            "text": self.text_file,
            "audio": self.audio_file,
            "vision": self.vision_file,
            "labels": self.labels_file,
        }


# -------------------------------------------------------------------------------------------- helpers


def label_columns_problem(columns: int, label_column: int) -> str | None:
    """What is wrong with reading the target from ``label_column`` of labels with ``columns`` columns (None:
    nothing); the ingest and ``avkd data check mosei`` ask the same question."""
    if columns == 0:
        return "the labels have no columns"
    if not 0 <= label_column < columns:
        return f"label_column {label_column}, but the labels have {columns} column(s)"
    return None


def check_label_columns(columns: int, label_column: int, where: str) -> None:
    """Raise for :func:`label_columns_problem`: a file without label columns is the data's fault (exit 1), a
    column beyond the file's the config's (exit 2)."""
    problem = label_columns_problem(columns, label_column)
    if problem:
        raise (ArtifactError if columns == 0 else UsageError)(f"{where}: {problem}")


def fit_length(frames: np.ndarray, length: int, padding: str = "left") -> np.ndarray:
    """Truncate to the LAST ``length`` frames, then zero-pad on the left (or right) to exactly ``length``."""
    frames = frames[-length:] if frames.shape[0] > length else frames
    out = np.zeros((length, frames.shape[1]), dtype=np.float32)
    n = frames.shape[0]
    if n:
        if padding == "left":
            out[length - n :] = frames
        else:
            out[:n] = frames
    return out


def overlapping(intervals: np.ndarray, start: float, end: float) -> np.ndarray:
    """Indices of frames whose interval overlaps ``[start, end]`` with positive length (module docstring 2)."""
    return np.flatnonzero((intervals[:, 0] < end) & (intervals[:, 1] > start))


def replace_nonfinite(array: np.ndarray, value: float) -> int:
    """Replace NaN/±inf in place; return how many there were."""
    bad = ~np.isfinite(array)
    count = int(bad.sum())
    if count:
        array[bad] = value
    return count


# --------------------------------------------------------------------------------------------- writing


class _SplitWriter:
    """Appends rows to the per-split datasets of ``mosei.h5`` (resizable, one chunk per row)."""

    def __init__(self, h5: h5py.File, config: MoseiIngestConfig) -> None:
        self.h5 = h5
        self.config = config
        self.count: Counter[str] = Counter()
        filters = _COMPRESSION[config.compression]
        for split in SPLITS:
            group = h5.create_group(split)
            for mod in MODALITIES:
                shape = (config.lengths()[mod], config.dims()[mod])
                group.create_dataset(
                    mod, (0, *shape), maxshape=(None, *shape), chunks=(1, *shape), dtype=np.float32, **filters
                )
            group.create_dataset("label", (0,), maxshape=(None,), chunks=(1024,), dtype=np.float32)
            group.create_dataset(
                "ids", (0,), maxshape=(None,), chunks=(1024,), dtype=h5py.string_dtype("utf-8")
            )
            group.create_dataset("interval", (0, 2), maxshape=(None, 2), chunks=(1024, 2), dtype=np.float64)

    def append(self, split: str, rows: dict[str, np.ndarray]) -> None:
        group = self.h5[split]
        n = rows["label"].shape[0]
        if n == 0:
            return
        start = self.count[split]
        for name, values in rows.items():
            data = group[name]
            data.resize(start + n, axis=0)
            data[start : start + n] = values
        self.count[split] += n


def _rows(
    config: MoseiIngestConfig,
    tensors: dict[str, list[np.ndarray]],
    labels: list[float],
    ids: list[str],
    intervals: list[tuple[float, float]],
) -> dict[str, np.ndarray]:
    rows: dict[str, np.ndarray] = {}
    for mod in MODALITIES:
        shape = (0, config.lengths()[mod], config.dims()[mod])
        rows[mod] = np.stack(tensors[mod]) if tensors[mod] else np.zeros(shape, np.float32)
    rows["label"] = np.asarray(labels, dtype=np.float32)
    rows["ids"] = np.asarray(ids, dtype=object)
    rows["interval"] = np.asarray(intervals, dtype=np.float64).reshape(-1, 2)
    return rows


@dataclass
class _Tally:
    """Counters shared by both routes; becomes the manifest's metrics."""

    source: str
    failures: list[dict[str, Any]] = field(default_factory=list)
    nonfinite: Counter[str] = field(default_factory=Counter)
    per_split: Counter[str] = field(default_factory=Counter)
    videos_without_fold: int = 0
    videos_per_split: Counter[str] = field(default_factory=Counter)

    def fail(self, base: dict[str, Any], modality: str, kind: str, reason: str) -> None:
        """Record one left-out segment (``kind`` groups reasons in the metrics)."""
        self.failures.append({**base, "modality": modality, "kind": kind, "reason": reason})

    def metrics(self) -> dict[str, Any]:
        total = sum(self.per_split.values())
        return {
            "source": self.source,
            "segments": total,
            "per_split": {s: self.per_split.get(s, 0) for s in SPLITS},
            "videos_per_split": {s: self.videos_per_split.get(s, 0) for s in SPLITS},
            "failures": len(self.failures),
            "failure_share": len(self.failures) / (total + len(self.failures)) if total else 0.0,
            "failure_reasons": dict(Counter(f["kind"] for f in self.failures)),
            "nonfinite_replaced": {m: self.nonfinite.get(m, 0) for m in MODALITIES},
            "videos_without_fold": self.videos_without_fold,
        }


def _finish(config: MoseiIngestConfig, rows: dict[str, np.ndarray], tally: _Tally) -> dict[str, np.ndarray]:
    for mod in MODALITIES:
        tally.nonfinite[mod] += replace_nonfinite(rows[mod], config.nonfinite_value)
    return rows


# ----------------------------------------------------------------------------------------- .csd route


def _ingest_csd(
    config: MoseiIngestConfig, src: Path, writer: _SplitWriter, tally: _Tally, show_progress: bool
) -> None:
    fold_of = load_folds(config.folds)
    dims = config.dims()
    paths = {
        name: find_csd(src, file) for name, file in config.files().items()
    }  # all missing files fail first
    opened: dict[str, CsdFile] = {}
    try:
        for name, path in paths.items():
            opened[name] = CsdFile(path, name, dims.get(name))
        labels = opened["labels"]
        videos = labels.entries
        with ProgressReporter(len(videos), f"ingest mosei {src.name or src}", enabled=show_progress) as bar:
            for vid in videos:
                split = fold_of.get(video_of(vid))
                if split is None:
                    tally.videos_without_fold += 1
                    bar.advance(1)
                    continue
                _ingest_video(config, vid, split, opened, writer, tally)
                bar.advance(1)
    finally:
        for handle in opened.values():
            handle.close()


def _ingest_video(
    config: MoseiIngestConfig,
    vid: str,
    split: str,
    opened: dict[str, CsdFile],
    writer: _SplitWriter,
    tally: _Tally,
) -> None:
    label_features, label_intervals = opened["labels"].read(vid)
    check_label_columns(
        label_features.shape[1], config.label_column, f"{opened['labels'].path}: entry {vid!r}"
    )
    streams: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
    for mod in MODALITIES:
        streams[mod] = opened[mod].read(vid) if vid in opened[mod] else None
    tensors: dict[str, list[np.ndarray]] = {m: [] for m in MODALITIES}
    labels: list[float] = []
    ids: list[str] = []
    intervals: list[tuple[float, float]] = []
    for i, (start, end) in enumerate(label_intervals):
        start, end = float(start), float(end)
        base = {"split": split, "video": vid, "segment": i, "interval": [start, end]}
        if end - start < EPSILON:
            tally.fail(base, "labels", "zero-length segment", f"zero-length label interval [{start}, {end}]")
            continue
        label = float(label_features[i, config.label_column])
        if not math.isfinite(label):
            tally.fail(base, "labels", "label not finite", f"label is {label}")
            continue
        picked: dict[str, np.ndarray] = {}
        for mod in MODALITIES:
            stream = streams[mod]
            if stream is None:
                reason = f"no {mod} entry for video {vid} in {opened[mod].path.name}"
                tally.fail(base, mod, "modality missing", reason)
                break
            index = overlapping(stream[1], start, end)
            if index.size == 0:
                reason = f"no {mod} frames overlap [{start}, {end}] in {opened[mod].path.name}"
                tally.fail(base, mod, "no frames in segment", reason)
                break
            picked[mod] = fit_length(
                stream[0][index].astype(np.float32), config.lengths()[mod], config.padding
            )
        else:
            for mod in MODALITIES:
                tensors[mod].append(picked[mod])
            labels.append(label)
            ids.append(vid)
            intervals.append((start, end))
    if labels:
        tally.per_split[split] += len(labels)
        tally.videos_per_split[split] += 1
    writer.append(split, _finish(config, _rows(config, tensors, labels, ids, intervals), tally))


# --------------------------------------------------------------------------------------- pickle route


def _ingest_pickle(config: MoseiIngestConfig, path: Path, writer: _SplitWriter, tally: _Tally) -> None:
    data = load_pickle_safely(path)
    keys = [SOURCE_SPLITS[s] for s in SPLITS]
    if not isinstance(data, dict) or not all(k in data for k in keys):
        raise ArtifactError(f"{path}: expected a dict with keys {', '.join(keys)} (MulT pickle, §2.1)")
    dims = config.dims()
    for split in SPLITS:
        name = SOURCE_SPLITS[split]  # errors name the pickle's own key
        part = data[name]
        if not isinstance(part, dict):
            raise ArtifactError(f"{path}: {name} is a {type(part).__name__}, expected a dict of arrays")
        arrays: dict[str, np.ndarray] = {}
        for key in (*MODALITIES, "labels"):
            value = part.get(key)
            if not isinstance(value, np.ndarray):
                raise ArtifactError(f"{path}: {name} lacks the array {key!r}")
            arrays[key] = value
        n = arrays["labels"].shape[0]
        for mod in MODALITIES:
            a = arrays[mod]
            if a.ndim != 3 or a.shape[0] != n:
                raise ArtifactError(
                    f"{path}: {name} {mod} has shape {a.shape}, expected ({n}, T, {dims[mod]})"
                )
            if a.shape[2] != dims[mod]:
                raise ArtifactError(
                    f"{path}: {name} {mod} has {a.shape[2]} features per frame, expected {dims[mod]}"
                )
        labels = arrays["labels"].reshape(n, -1)
        check_label_columns(labels.shape[1], config.label_column, f"{path}: {name} labels")
        vids, intervals = _pickle_ids(part.get("id"), n, split, path)
        keep: list[int] = []
        for i in range(n):
            label = float(labels[i, config.label_column])
            if math.isfinite(label):
                keep.append(i)
            else:
                base = {"split": split, "video": vids[i], "segment": i, "interval": list(intervals[i])}
                tally.fail(base, "labels", "label not finite", f"label is {label}")
        batch = 256
        for lo in range(0, len(keep), batch):
            idx = keep[lo : lo + batch]
            tensors = {
                mod: [fit_length(np.asarray(arrays[mod][i], np.float32), config.lengths()[mod]) for i in idx]
                for mod in MODALITIES
            }
            rows = _rows(
                config,
                tensors,
                [float(labels[i, config.label_column]) for i in idx],
                [vids[i] for i in idx],
                [intervals[i] for i in idx],
            )
            writer.append(split, _finish(config, rows, tally))
        tally.per_split[split] += len(keep)
        tally.videos_per_split[split] += len({video_of(vids[i]) for i in keep})


def _pickle_ids(ids: Any, n: int, split: str, path: Path) -> tuple[list[str], list[tuple[float, float]]]:
    """Video ids and intervals from a pickle's ``id`` array (module docstring 8); row numbers when absent."""
    if ids is None:
        return [f"{split}-{i}" for i in range(n)], [(math.nan, math.nan)] * n
    if not isinstance(ids, np.ndarray) or ids.shape[0] != n:
        raise ArtifactError(f"{path}: {split} id is not an array of {n} rows")
    rows = ids.reshape(n, -1)
    vids, intervals = [], []
    for row in rows:
        fields = [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in row]
        vids.append(fields[0])
        try:
            interval = (float(fields[1]), float(fields[2]))
        except (IndexError, ValueError):
            interval = (math.nan, math.nan)
        intervals.append(interval)
    return vids, intervals


# ------------------------------------------------------------------------------------------- the stage


def ingest_mosei(
    config: MoseiIngestConfig,
    src: str | Path,
    out: str | Path,
    overwrite: bool = False,
    resume: bool = False,
    show_progress: bool = False,
) -> Artifact:
    """Ingest CMU-MOSEI from ``src`` (a folder of SDK ``.csd`` files, or a MulT ``.pkl``) into ``out``.

    Every problem with the source (missing modality file, wrong feature dimension, corrupted HDF5, a pickle with
    anything but arrays) is one :class:`ArtifactError` line naming the file; the artifact then stays ``partial``
    and nothing looks complete. Segments with a missing modality go to ``failures.jsonl`` instead.
    """
    start_time = time.monotonic()
    validate(config)
    src, out = Path(src), Path(out)
    if not src.exists():
        raise ArtifactError(f"{src}: no such file or folder")
    if (done := finished(out, MOSEI_FEATURES, resume)) is not None:
        return done
    resolved = cfg.to_dict(config)
    with ArtifactWriter(out, MOSEI_FEATURES, resolved, overwrite=overwrite, resume=resume) as writer:
        target = writer.path(FEATURES)
        if target.exists():  # --resume: rebuild the one file from the source (module docstring 9)
            target.unlink()
        tally = _Tally(source="pickle" if src.is_file() else "csd")
        with h5py.File(target, "w") as h5:
            split_writer = _SplitWriter(h5, config)
            if src.is_file():
                _ingest_pickle(config, src, split_writer, tally)
            else:
                _ingest_csd(config, src, split_writer, tally, show_progress)
            # No source path or time in the file: the same content gives the same bytes and artifact id.
            h5.attrs["config"] = json.dumps(resolved)
        atomic_write_text(writer.path(FAILURES), jsonl_text(tally.failures))
        metrics = tally.metrics()
        if metrics["segments"] == 0:
            raise ArtifactError(
                f"{src}: no segment could be ingested ({metrics['failures']} failed; reasons in "
                f"{writer.workdir / FAILURES})"
            )
        metrics["seconds"] = round(time.monotonic() - start_time, 3)
        artifact = writer.commit(metrics=metrics)
    _warn_nonfinite(src, config, metrics)
    return artifact


def _warn_nonfinite(src: Path, config: MoseiIngestConfig, metrics: dict[str, Any]) -> None:
    """One warning line per modality whose NaN/±inf values were replaced: a count in the manifest is easy to
    miss, and a modality that is mostly non-finite (a broken feature file) must not pass as zeros unnoticed."""
    lengths, dims = config.lengths(), config.dims()
    for mod, count in metrics["nonfinite_replaced"].items():
        if count:
            stored = metrics["segments"] * lengths[mod] * dims[mod]
            log(
                f"warning: {src}: {count:,} non-finite {mod} values ({count / stored:.1%} of those stored) "
                f"replaced by {config.nonfinite_value:g}"
            )
