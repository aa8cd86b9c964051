"""HDF5 storage of per-utterance features, in part files that are each written atomically.

A features artifact holds ``parts/part-*.h5`` and an index ``utterances.jsonl``. Each part file holds one group
per utterance key (``<split>/<speaker>/<utt>``) with datasets ``frames`` (N face crops, 96x96 RGB: one JPEG per
frame by default, or a raw (N, 96, 96, 3) uint8 array; the dataset's ``codec`` attribute says which),
``audio`` (640·N,) int16 or float32 at 16 kHz, ``mel`` (80, 3.2·N+1) float32 (VocaLiST recipe over the whole
clip), ``boxes`` (N, 4) int16 face boxes in source pixels, and attributes ``fps``, ``sample_rate``, ``source``.
Frame ``n`` starts at audio sample ``640·n`` (docs/reference/vocalist.md §1.1).

Why parts: HDF5 is not journaled, so a job killed while writing one big file can corrupt everything written
before. A part is written to a temporary name and renamed when closed, so a kill loses at most the part in
flight, and ``--resume`` knows what is done by listing the parts. Readers open part files lazily, once per
process, so the store can be handed to DataLoader workers (h5py handles must not cross a fork).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np

from avkd.core.artifacts import Artifact, load_artifact
from avkd.core.jsonl import read_jsonl

INDEX = "utterances.jsonl"
PARTS_DIR = "parts"

#: Chunk length along time for ``frames``, chosen with ``benchmarks/preprocess.py`` (see README): a 5-frame
#: window read touches at most 2 chunks, and larger chunks only add decompression for training reads.
FRAME_CHUNK = 5

#: How face crops are stored. ``jpeg`` (default): one JPEG per frame (quality 95), 3.6 kB instead of 27.6 kB a
#: frame, decoded at about the speed an lzf chunk decompresses; it is also what the reference models were trained
#: on (Wav2Lip's preprocessing writes the crops as JPEG files, docs/reference/vocalist.md §1.1). ``raw``: lossless uint8 arrays
#: under the HDF5 filter of ``compression``.
FRAME_CODECS = ("jpeg", "raw")

#: HDF5 filters by name. lzf is fast and ships with h5py; gzip is smaller and slower.
COMPRESSION: dict[str, dict[str, Any]] = {
    "none": {},
    "lzf": {"compression": "lzf"},
    "gzip": {"compression": "gzip", "compression_opts": 1},
}


@dataclass
class UtteranceFeatures:
    """Everything stored for one utterance."""

    key: str
    frames: np.ndarray  # (N, S, S, 3) uint8 RGB
    audio: np.ndarray  # (640·N,) int16 or float32
    mel: np.ndarray  # (80, M) float32
    boxes: np.ndarray  # (N, 4) int16
    attrs: dict[str, Any] = field(default_factory=dict)

    def index_entry(self, part: str) -> dict[str, Any]:
        split, speaker, utt = self.key.split("/")
        return {
            "key": self.key,
            "split": split,
            "speaker": speaker,
            "utt": utt,
            "part": part,
            "n_frames": int(self.frames.shape[0]),
            "n_samples": int(self.audio.shape[0]),
            "n_mel": int(self.mel.shape[1]),
            **{k: v for k, v in self.attrs.items() if k in ("order", "source", "tag", "fps", "sample_rate")},
        }


def encode_jpeg(frames: np.ndarray, quality: int = 95) -> list[np.ndarray]:
    """RGB uint8 frames -> one JPEG byte array each (OpenCV wants BGR)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    out = []
    for frame in frames:
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), params)
        if not ok:
            raise ValueError("JPEG encoding failed")
        out.append(buf.reshape(-1))
    return out


def decode_jpeg(buffers: Any) -> np.ndarray:
    """JPEG byte arrays -> (N, H, W, 3) uint8 RGB."""
    return np.stack([cv2.cvtColor(cv2.imdecode(b, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for b in buffers])


def write_part(
    path: Path,
    records: list[UtteranceFeatures],
    failures: list[dict[str, Any]],
    compression: str = "lzf",
    frame_codec: str = "jpeg",
    jpeg_quality: int = 95,
    frame_chunk: int = FRAME_CHUNK,
) -> list[dict[str, Any]]:
    """Write one part file atomically; returns the index entries of its utterances."""
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
                        "frames", (n,), dtype=h5py.vlen_dtype(np.uint8), chunks=(min(frame_chunk, n),)
                    )
                    frames[:] = _object_array(encode_jpeg(record.frames, jpeg_quality))
                    frames.attrs["shape"] = record.frames.shape[1:]
                else:
                    frames = group.create_dataset(
                        "frames",
                        data=record.frames,
                        chunks=(min(frame_chunk, n), *record.frames.shape[1:]),
                        **filters,
                    )
                frames.attrs["codec"] = frame_codec
                group.create_dataset(
                    "audio",
                    data=record.audio,
                    chunks=(min(640 * frame_chunk * 8, record.audio.shape[0]),),
                    **filters,
                )
                group.create_dataset("mel", data=record.mel, **filters)
                group.create_dataset("boxes", data=record.boxes)
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


def _object_array(items: list[np.ndarray]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def read_part_summary(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The index entries and failures a part recorded (attributes only, no payload read)."""
    with h5py.File(path, "r") as h5:
        return json.loads(h5.attrs["index"]), json.loads(h5.attrs["failures"])


class FeatureStore:
    """Random access to an ``lrs2-features`` artifact.

    Part files are opened on first use in the current process and reopened after a fork, so one store object
    can be shared with DataLoader workers.
    """

    def __init__(self, artifact: Artifact | str | Path) -> None:
        if not isinstance(artifact, Artifact):
            artifact = load_artifact(artifact, kind="lrs2-features")
        self.artifact = artifact
        self.root = artifact.path
        self.entries = {row["key"]: row for row in read_jsonl(self.root / INDEX)}
        self._handles: dict[str, h5py.File] = {}
        self._datasets: dict[tuple[str, str], h5py.Dataset] = {}
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}
        state["_datasets"] = {}
        return state

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def keys(self, split: str | None = None) -> list[str]:
        return [k for k, row in self.entries.items() if split is None or row["split"] == split]

    def info(self, key: str) -> dict[str, Any]:
        return self.entries[key]

    def group(self, key: str) -> h5py.Group:
        if os.getpid() != self._pid:  # forked: the parent's handles are not ours to use
            self._handles, self._datasets = {}, {}
            self._pid = os.getpid()
        part = self.entries[key]["part"]
        handle = self._handles.get(part)
        if handle is None:
            handle = h5py.File(self.root / part, "r")
            self._handles[part] = handle
        return handle[key]

    def dataset(self, key: str, name: str) -> h5py.Dataset:
        """The dataset ``name`` of utterance ``key``, looked up once (HDF5 path lookups cost ~0.1 ms each)."""
        found = self._datasets.get((key, name)) if os.getpid() == self._pid else None
        if found is None:
            found = self.group(key)[name]
            self._datasets[(key, name)] = found
        return found

    def frames(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """(n, 96, 96, 3) uint8 RGB crops of frames ``start..stop-1``."""
        data = self.dataset(key, "frames")
        if data.attrs.get("codec", "raw") == "jpeg":
            return decode_jpeg(data[start:stop])
        return data[start:stop]

    def audio(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        return self.dataset(key, "audio")[start:stop]

    def mel(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        return self.dataset(key, "mel")[:, start:stop]

    def boxes(self, key: str) -> np.ndarray:
        return self.dataset(key, "boxes")[:]

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles, self._datasets = {}, {}
