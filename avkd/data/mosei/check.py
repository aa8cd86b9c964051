"""``avkd data check mosei``: what a CMU-MOSEI copy holds, before an ingest spends time on it.

For a folder of SDK computational sequences it finds the four files of the ingest config, opens each, and reads
only dataset shapes (no feature data): the root name, the entry count, entries whose feature dimension differs
from the config's (docs/reference/mult-mosei.md §3.2), entries whose features and intervals disagree, and, per standard fold
(``data_manifests/mosei_splits``, 2,249 / 300 / 678 videos, §3.3), how many fold videos are labelled and how many
labelled videos lack each modality (their segments would go to the ingest's failures list). For a MulT pickle it
checks the split dicts' arrays and shapes against the config (§2.1).

A copy is OK when every file opens, every shape matches and every fold has labelled videos. Fold coverage below
the full lists and videos lacking a modality are reported, not failures: the real corpus has both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avkd.core.errors import ArtifactError
from avkd.data.mosei.format import MODALITIES, SOURCE_SPLITS, SPLITS
from avkd.data.mosei.ingest import MoseiIngestConfig, label_columns_problem
from avkd.data.mosei.safe_pickle import load_pickle_safely
from avkd.data.mosei.sdk import CsdFile, find_csd, load_folds, video_of

#: Examples kept per problem kind (the counts are always complete).
EXAMPLES = 5


@dataclass
class SequenceReport:
    """One computational sequence (or one pickle split's array)."""

    name: str
    file: str | None = None
    root: str | None = None
    entries: int = 0
    dim: int | None = None
    expected_dim: int | None = None
    error: str | None = None
    bad_dim: list[str] = field(default_factory=list)
    bad_shape: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.bad_dim and not self.bad_shape

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "root": self.root,
            "entries": self.entries,
            "dim": self.dim,
            "expected_dim": self.expected_dim,
            "error": self.error,
            "bad_dim": len(self.bad_dim),
            "bad_dim_examples": self.bad_dim[:EXAMPLES],
            "bad_shape": len(self.bad_shape),
            "bad_shape_examples": self.bad_shape[:EXAMPLES],
            "ok": self.ok,
        }


@dataclass
class MoseiCheckReport:
    source: str
    route: str
    sequences: list[SequenceReport]
    #: split -> {"fold": videos in the fold list, "labelled": of those with labels,
    #: "missing": {modality: labelled videos without an entry}} (csd) or {"segments": n} (pickle).
    splits: dict[str, dict[str, Any]]
    videos_without_fold: int = 0

    @property
    def ok(self) -> bool:
        if not all(s.ok for s in self.sequences):
            return False
        key = "labelled" if self.route == "csd" else "segments"
        return all(s.get(key, 0) > 0 for s in self.splits.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "route": self.route,
            "ok": self.ok,
            "sequences": [s.to_json() for s in self.sequences],
            "splits": self.splits,
            "videos_without_fold": self.videos_without_fold,
        }


def check_mosei(src: str | Path, config: MoseiIngestConfig | None = None) -> MoseiCheckReport:
    """Check a CMU-MOSEI source (SDK ``.csd`` folder or MulT ``.pkl``) against ``config``; reads no feature data."""
    config = config or MoseiIngestConfig()
    src = Path(src)
    if not src.exists():
        raise ArtifactError(f"{src}: no such file or folder")
    return _check_pickle(src, config) if src.is_file() else _check_csd(src, config)


def _check_csd(src: Path, config: MoseiIngestConfig) -> MoseiCheckReport:
    dims: dict[str, int | None] = {**config.dims(), "labels": None}
    reports: list[SequenceReport] = []
    entries: dict[str, set[str]] = {}
    for name, file in config.files().items():
        report = SequenceReport(name, expected_dim=dims[name])
        reports.append(report)
        try:
            path = find_csd(src, file)
            report.file = str(path)
            csd = CsdFile(path, name, dims[name])
        except ArtifactError as exc:
            report.error = str(exc)
            continue
        try:
            report.root, report.entries = csd.root.name.lstrip("/"), len(csd.entries)
            entries[name] = set(csd.entries)
            seen_dims = set()
            for entry in csd.entries:
                try:
                    features, intervals = csd.data[entry]["features"], csd.data[entry]["intervals"]
                    fshape, ishape = features.shape, intervals.shape
                except (KeyError, OSError) as exc:
                    report.bad_shape.append(f"{entry}: unreadable ({exc})")
                    continue
                if len(fshape) != 2 or ishape != (fshape[0], 2):
                    report.bad_shape.append(f"{entry}: features {fshape}, intervals {ishape}")
                    continue
                seen_dims.add(fshape[1])
                if dims[name] is not None and fshape[1] != dims[name]:
                    report.bad_dim.append(f"{entry}: {fshape[1]} features per frame")
                elif name == "labels" and (problem := label_columns_problem(fshape[1], config.label_column)):
                    report.bad_dim.append(f"{entry}: {problem}")
            report.dim = seen_dims.pop() if len(seen_dims) == 1 else None
        finally:
            csd.close()

    fold_of = load_folds(config.folds)
    videos = {name: {video_of(e) for e in keys} for name, keys in entries.items()}
    labelled = videos.get("labels", set())
    splits: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        fold = {v for v, s in fold_of.items() if s == split}
        present = fold & labelled
        missing = {mod: sorted(present - videos[mod]) for mod in MODALITIES if mod in videos}
        splits[split] = {
            "fold": len(fold),
            "labelled": len(present),
            "missing": {mod: len(v) for mod, v in missing.items()},
            "missing_examples": {mod: v[:EXAMPLES] for mod, v in missing.items() if v},
        }
    return MoseiCheckReport(
        str(src), "csd", reports, splits, videos_without_fold=len(labelled - set(fold_of))
    )


def _check_pickle(src: Path, config: MoseiIngestConfig) -> MoseiCheckReport:
    data = load_pickle_safely(src)
    if not isinstance(data, dict):
        keys = ", ".join(SOURCE_SPLITS[s] for s in SPLITS)
        raise ArtifactError(f"{src}: expected a dict with keys {keys} (MulT pickle, §2.1)")
    dims, lengths = config.dims(), config.lengths()
    reports: list[SequenceReport] = []
    splits: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        name = SOURCE_SPLITS[split]  # sequences are named by the pickle's own keys
        part = data.get(name)
        n = None
        if isinstance(part, dict) and isinstance(part.get("labels"), np.ndarray):
            n = part["labels"].shape[0]
        splits[split] = {"segments": n or 0}
        for key in (*MODALITIES, "labels"):
            report = SequenceReport(f"{name}/{key}", file=str(src), expected_dim=dims.get(key))
            reports.append(report)
            value = part.get(key) if isinstance(part, dict) else None
            if not isinstance(value, np.ndarray):
                report.error = f"{src}: {name} lacks the array {key!r}"
                continue
            report.entries = value.shape[0]
            if key == "labels":
                columns = value.reshape(value.shape[0], -1).shape[1] if value.shape[0] else 0
                if problem := label_columns_problem(columns, config.label_column):
                    report.bad_dim.append(problem)
                continue
            report.dim = value.shape[-1] if value.ndim == 3 else None
            if value.ndim != 3 or value.shape[0] != n:
                report.bad_shape.append(f"shape {value.shape}, expected ({n}, T, {dims[key]})")
            elif value.shape[2] != dims[key]:
                report.bad_dim.append(f"{value.shape[2]} features per frame")
            elif value.shape[1] != lengths[key]:
                # Not an error for the ingest (it pads or truncates), but worth knowing.
                splits[split].setdefault("lengths", {})[key] = value.shape[1]
    return MoseiCheckReport(str(src), "pickle", reports, splits)


def describe_check(report: MoseiCheckReport) -> list[str]:
    """Human-readable lines for the CLI."""
    lines = []
    for s in report.sequences:
        head = f"{s.name}: "
        if s.error:
            lines.append(head + s.error)
            continue
        where = f"{s.file} ({s.root}), " if report.route == "csd" else ""
        dim = f", dim {s.dim}" if s.dim is not None else ""
        problems = [f"{len(s.bad_dim)} with another dimension"] if s.bad_dim else []
        problems += [f"{len(s.bad_shape)} malformed"] if s.bad_shape else []
        lines.append(head + where + f"{s.entries} entries{dim}; " + ("; ".join(problems) or "ok"))
        lines += [f"  {e}" for e in (s.bad_dim + s.bad_shape)[:EXAMPLES]]
    for split, info in report.splits.items():
        if report.route == "csd":
            missing = ", ".join(f"{n} without {m}" for m, n in info["missing"].items() if n)
            lines.append(
                f"{split}: {info['labelled']} of {info['fold']} fold videos labelled"
                + (f"; {missing} (their segments would fail)" if missing else "")
            )
        else:
            lengths = info.get("lengths")
            lines.append(
                f"{split}: {info['segments']} segments"
                + (f"; lengths {lengths} (the ingest pads or truncates)" if lengths else "")
            )
    if report.videos_without_fold:
        lines.append(f"{report.videos_without_fold} labelled videos are in no standard fold (skipped)")
    lines.append("source OK" if report.ok else "source has problems")
    return lines
