"""A torch Dataset over one split of a ``mosei-features`` artifact."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from avkd.core.artifacts import MOSEI_FEATURES, Artifact, load_artifact
from avkd.core.errors import ArtifactError, UsageError
from avkd.data.mosei.format import FEATURES, MODALITIES, SPLITS, group_name
from avkd.data.splits import canonical_split

__all__ = ["MoseiDataset"]


class MoseiDataset(Dataset):
    """``(text, audio, vision, label, index)`` of one split of a ``mosei-features`` artifact.

    Tensors are float32 ``(50, 300)``, ``(500, 74)``, ``(500, 35)``, a 0-d float32 label (continuous; use
    :func:`label7` for classes) and the row index (what CRD's memory bank needs, docs/reference/mult-mosei.md §2.1, §5.5.13). The
    HDF5 file is opened on first access in each process (reopened after a fork), like
    :class:`avkd.data.lrs2.store.FeatureStore`, so the dataset can go to DataLoader workers.
    """

    def __init__(self, artifact_or_path: Artifact | str | Path, split: str) -> None:
        artifact = artifact_or_path
        if not isinstance(artifact, Artifact):
            artifact = load_artifact(artifact, kind=MOSEI_FEATURES)
        elif artifact.kind != MOSEI_FEATURES:
            raise ArtifactError(
                f"{artifact.path}: is a {artifact.kind!r} artifact, expected {MOSEI_FEATURES!r}"
            )
        split = canonical_split(split)
        if split not in SPLITS:
            raise UsageError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
        self.artifact = artifact
        self.split = split
        self.group = group_name(split, artifact.schema)
        self.path = artifact.path / FEATURES
        per_split = artifact.metrics.get("per_split", {})
        self._length = int(per_split.get(split, per_split.get(self.group, -1)))
        if self._length < 0:
            with h5py.File(self.path, "r") as h5:
                self._length = int(h5[self.group]["label"].shape[0])
        self._h5: h5py.File | None = None
        self._pid: int | None = None
        self._datasets: dict[str, h5py.Dataset] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"], state["_pid"], state["_datasets"] = None, None, {}
        return state

    def _group(self) -> h5py.Group:
        if self._h5 is None or self._pid != os.getpid():
            try:
                self._h5 = h5py.File(self.path, "r")
            except OSError as exc:
                raise ArtifactError(f"{self.path}: not a readable HDF5 file ({exc})") from None
            self._pid = os.getpid()
            group = self._h5[self.group]
            # Dataset objects are kept: looking one up by name costs ~0.3 ms, 15x a 278 kB row read
            # (benchmarks/emotion.py).
            self._datasets = {name: group[name] for name in (*MODALITIES, "label")}
        return self._h5[self.group]

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
        if not -self._length <= index < self._length:
            raise IndexError(f"index {index} out of range for {self._length} {self.split} segments")
        index = index % self._length
        if self._h5 is None or self._pid != os.getpid():
            self._group()
        data = self._datasets
        return (
            torch.from_numpy(data["text"][index]),
            torch.from_numpy(data["audio"][index]),
            torch.from_numpy(data["vision"][index]),
            torch.tensor(float(data["label"][index]), dtype=torch.float32),
            index,
        )

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]]:
        for i in range(len(self)):
            yield self[i]

    def labels(self) -> np.ndarray:
        """All continuous labels of the split (float32)."""
        return self._group()["label"][:]

    def ids(self) -> list[str]:
        return [x.decode() if isinstance(x, bytes) else x for x in self._group()["ids"][:]]

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5, self._datasets = None, {}
