"""HDF5 part files of a ``clips-features`` artifact, written and read with the LRS2 store's mechanisms.

The artifact holds ``parts/part-*.h5``, the index ``clips.jsonl``, ``classes.json`` and ``failures.jsonl``. Each
part holds one group per clip key (``<split>/<id>_<start:06d>``) with datasets

- ``frames`` (F, S, S, 3) uint8 RGB, F = 10 and S = 224 by default, one HDF5 chunk per frame (a model that takes
  one frame of the ten reads one chunk), under the filter of ``compression``; or, with ``frame_codec: jpeg``, one
  JPEG per frame (:func:`avkd.data.lrs2.store.encode_jpeg`). The dataset's ``codec`` attribute says which;
- ``fbank`` (B, T) float32, B = 128 mel bins (rows) by T = 1024 frames (columns), normalised;
- ``labels`` (k,) int16 class indices (one for VGGSound, any number for AudioSet);

and attributes ``times`` (the source time of each stored frame, seconds), ``mel_valid`` (fbank columns that are
audio, not padding), ``source``, ``fps``, ``source_frames``, ``source_sample_rate``, ``duration``.

Writing follows :mod:`avkd.data.lrs2.store`: a part is written under a temporary name and renamed when closed, and
carries its index entries and failures as attributes, so a resumed run knows what is done from the parts alone
(:func:`avkd.data.lrs2.store.read_part_summary`). Reading is :class:`avkd.data.lrs2.store.FeatureStore` over the
artifact: part files opened lazily, once per process, so a dataset can go to DataLoader workers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avkd.core.artifacts import CLIPS_FEATURES, Artifact, load_artifact
from avkd.core.jsonl import read_jsonl
from avkd.data.lrs2.store import COMPRESSION, PARTS_DIR, FeatureStore, encode_jpeg

__all__ = ["CLASSES", "INDEX", "PARTS_DIR", "ClipFeatures", "ClipStore", "write_part"]

INDEX = "clips.jsonl"
CLASSES = "classes.json"


@dataclass
class ClipFeatures:
    """Everything stored for one clip."""

    key: str
    frames: np.ndarray  # (F, S, S, 3) uint8 RGB
    fbank: np.ndarray  # (B, T) float32
    labels: list[int]
    attrs: dict[str, Any] = field(default_factory=dict)

    def index_entry(self, part: str) -> dict[str, Any]:
        split, name = self.key.split("/", 1)
        keep = ("order", "source", "ytid", "start", "duration", "mel_valid", "source_frames", "fps")
        return {
            "key": self.key,
            "split": split,
            "name": name,
            "part": part,
            "labels": list(self.labels),
            **{k: v for k, v in self.attrs.items() if k in keep},
        }


def write_part(
    path: Path,
    records: list[ClipFeatures],
    failures: list[dict[str, Any]],
    compression: str = "gzip",
    frame_codec: str = "raw",
    jpeg_quality: int = 95,
) -> list[dict[str, Any]]:
    """Write one part file atomically; returns the index entries of its clips."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    filters = COMPRESSION[compression]
    entries = [r.index_entry(f"{PARTS_DIR}/{path.name}") for r in records]
    try:
        with h5py.File(tmp, "w", libver="latest") as h5:
            for record in records:
                group = h5.create_group(record.key)
                n = record.frames.shape[0]
                if frame_codec == "jpeg":
                    frames = group.create_dataset(
                        "frames", (n,), dtype=h5py.vlen_dtype(np.uint8), chunks=(1,)
                    )
                    buffers = np.empty(n, dtype=object)
                    buffers[:] = encode_jpeg(record.frames, jpeg_quality)
                    frames[:] = buffers
                    frames.attrs["shape"] = record.frames.shape[1:]
                else:
                    frames = group.create_dataset(
                        "frames", data=record.frames, chunks=(1, *record.frames.shape[1:]), **filters
                    )
                frames.attrs["codec"] = frame_codec
                group.create_dataset("fbank", data=record.fbank, **filters)
                group.create_dataset("labels", data=np.asarray(record.labels, np.int16))
                for key, value in record.attrs.items():
                    if value is not None:
                        group.attrs[key] = value
            h5.attrs["index"] = json.dumps(entries)
            h5.attrs["failures"] = json.dumps(failures)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return entries


class ClipStore(FeatureStore):
    """Random access to a ``clips-features`` artifact: :class:`FeatureStore` with the clips index."""

    def __init__(self, artifact: Artifact | str | Path) -> None:
        if not isinstance(artifact, Artifact):
            artifact = load_artifact(artifact, kind=CLIPS_FEATURES)
        super().__init__(artifact)
        # FeatureStore indexes the LRS2 file name; a clips artifact names its index differently.
        self.entries = {row["key"]: row for row in read_jsonl(self.root / INDEX)}
        self.classes: list[dict[str, Any]] = json.loads((self.root / CLASSES).read_text())
        self.multi_label = bool(artifact.manifest.get("multi_label", False))

    def fbank(self, key: str) -> np.ndarray:
        """(B, T) float32 normalised log-mel."""
        return self.dataset(key, "fbank")[:]

    def labels(self, key: str) -> list[int]:
        return [int(x) for x in self.entries[key]["labels"]]
