"""The CMU Multimodal SDK's side of CMU-MOSEI: computational sequences (``.csd``), the standard folds, entry ids.

Facts: docs/reference/mult-mosei.md §3 (the ``.csd`` HDF5 layout §3.1, the MOSEI sequences §3.2, the folds §3.3).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from avkd.core.errors import ArtifactError
from avkd.data.manifests import manifest_dir
from avkd.data.mosei.format import SOURCE_SPLITS, SPLITS

__all__ = ["CsdFile", "find_csd", "load_folds", "video_of"]


# ---------------------------------------------------------------------------------------------- folds


def load_folds(folder: str | Path | None = None) -> dict[str, str]:
    """Video id -> avkd split, from the SDK's ``train.txt valid.txt test.txt`` (one id a line; docs/reference/mult-mosei.md §3.3)."""
    folder = Path(folder) if folder is not None else manifest_dir() / "mosei_splits"
    fold_of: dict[str, str] = {}
    for split in SPLITS:
        path = folder / f"{SOURCE_SPLITS[split]}.txt"
        try:
            lines = path.read_text().split()
        except OSError as exc:
            raise ArtifactError(f"{path}: cannot read fold list ({exc.strerror})") from None
        for vid in lines:
            if fold_of.setdefault(vid, split) != split:
                raise ArtifactError(f"{path}: video {vid} is also in the {fold_of[vid]} fold")
    return fold_of


def video_of(key: str) -> str:
    """``'vid[3]'`` -> ``'vid'`` (the SDK's ``detect_entry_fold``, docs/reference/mult-mosei.md §3.3)."""
    return key.split("[")[0]


# ------------------------------------------------------------------------------------------ .csd files


def find_csd(src: Path, name: str) -> Path:
    """The file ``name`` directly in ``src`` or anywhere below it (the SDK's ``language/`` etc. folders)."""
    direct = src / name
    if direct.is_file():
        return direct
    found = sorted(src.rglob(name))
    if not found:
        raise ArtifactError(f"{src / name}: modality file missing (looked in {src} and below)")
    return found[0]


class CsdFile:
    """A computational sequence opened read-only: ``<root>/data/<entry>/{features,intervals}`` (§3.1)."""

    def __init__(self, path: Path, modality: str, dim: int | None) -> None:
        self.path = path
        self.modality = modality
        self.dim = dim
        try:
            self.h5 = h5py.File(path, "r")
        except OSError as exc:
            raise ArtifactError(f"{path}: not a readable HDF5 file ({exc})") from None
        try:
            roots = list(self.h5.keys())
            if not roots:
                raise ArtifactError(f"{path}: empty HDF5 file (no computational sequence)")
            self.root = self.h5[roots[0]]  # the SDK reads the first top-level key (read_CSD)
            if "data" not in self.root:
                raise ArtifactError(f"{path}: no 'data' group under {roots[0]!r} (not a .csd file)")
            self.data = self.root["data"]
            self.entries = sorted(self.data.keys())
        except OSError as exc:
            self.h5.close()
            raise ArtifactError(f"{path}: corrupted HDF5 file ({exc})") from None
        except ArtifactError:
            self.h5.close()
            raise

    def __contains__(self, entry: str) -> bool:
        return entry in self.data

    def read(self, entry: str) -> tuple[np.ndarray, np.ndarray]:
        """(features (n, F), intervals (n, 2)) of one entry, checked (§3.1 integrity rules and the dim)."""
        where = f"{self.path}: entry {entry!r}"
        try:
            group = self.data[entry]
            features = np.asarray(group["features"][()])
            intervals = np.asarray(group["intervals"][()], dtype=np.float64)
        except KeyError as exc:
            raise ArtifactError(f"{where}: lacks {exc}") from None
        except OSError as exc:
            raise ArtifactError(f"{where}: corrupted HDF5 data ({exc})") from None
        if intervals.ndim != 2 or intervals.shape[1] != 2:
            raise ArtifactError(f"{where}: intervals have shape {intervals.shape}, expected (n, 2)")
        if features.ndim != 2 or features.shape[0] != intervals.shape[0]:
            raise ArtifactError(
                f"{where}: features have shape {features.shape} for {intervals.shape[0]} intervals"
            )
        if self.dim is not None and features.shape[1] != self.dim:
            raise ArtifactError(
                f"{where}: {self.modality} has {features.shape[1]} features per frame, expected {self.dim}"
            )
        return features, intervals

    def close(self) -> None:
        self.h5.close()
