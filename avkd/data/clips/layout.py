"""Labelled clip corpora: the label CSVs of VGGSound and AudioSet, the class list, and where each clip's mp4 is.

Formats (as the corpora publish them):

- **VGGSound** ``vggsound.csv``: no header, one clip per row ``youtube_id,start_seconds,label,split`` with a whole
  number of seconds, the class name as text (quoted where it holds a comma) and ``train`` or ``test``. A header row
  whose first field is ``youtube_id`` / ``ytid`` / ``id`` is accepted and skipped. Single-label.
- **AudioSet** segment CSVs (``balanced_train_segments.csv``, ``unbalanced_train_segments.csv``,
  ``eval_segments.csv``): three ``#`` comment lines (a creation line, the counts, and the column names
  ``# YTID, start_seconds, end_seconds, positive_labels``), then rows like
  ``--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"``: fields separated by ", ", times with three decimals and
  the label ids (MIDs) quoted and comma-separated. Multi-label. The file has no split column: the split is the
  one given, else ``test`` for a file whose name contains ``eval`` and ``train`` otherwise. The class list is
  AudioSet's ``class_labels_indices.csv`` (header ``index,mid,display_name``; rows like ``0,/m/09x0r,"Speech"``).

Without a classes file the classes are the distinct labels of the whole CSV in sorted order (so a split or a
``--limit`` never renumbers them); with one (``index,mid,display_name``), a label is looked up by ``mid`` and then
by ``display_name``, and a label it does not list is an error naming the CSV line.

Media: ``ROOT/video/`` when it exists (the layout of the VGGSound release), else ``ROOT``; a clip's file is the
first of :data:`NAME_TEMPLATES` that exists (``<id>_<start:06d>.mp4``, as CAV-MAE's VGGSound lists name them,
then ``<id>_<start>.mp4``). A clip's key is ``<split>/<id>_<start:06d>``: one YouTube video gives several clips.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avkd.core.errors import AvkdError, UsageError
from avkd.data.splits import canonical_split

__all__ = [
    "FORMATS",
    "NAME_TEMPLATES",
    "SPLITS",
    "Clip",
    "ClipCorpus",
    "detect_format",
    "list_clips",
    "media_root",
    "parse_audioset",
    "parse_vggsound",
    "read_class_labels",
]

FORMATS: tuple[str, ...] = ("auto", "vggsound", "audioset")
SPLITS: tuple[str, ...] = ("pretrain", "train", "val", "test")
#: File names tried for a clip, in order (``str.format`` fields: ``id``, ``start`` whole seconds, ``end``).
NAME_TEMPLATES: tuple[str, ...] = ("{id}_{start:06d}", "{id}_{start}")
_HEADER_IDS = {"youtube_id", "ytid", "id", "video_id"}


@dataclass(frozen=True)
class Clip:
    """One labelled clip named by a labels CSV."""

    ytid: str
    start: float  # seconds into the YouTube video
    end: float | None  # AudioSet gives it; VGGSound clips are the 10 s from ``start``
    labels: tuple[str, ...]  # as written in the CSV: class names (VGGSound) or MIDs (AudioSet)
    split: str
    line: int  # 1-based line of the CSV, for messages
    path: Path = field(default=Path(), compare=False)  # the mp4 (the first candidate when none exists)

    @property
    def name(self) -> str:
        return f"{self.ytid}_{int(self.start):06d}"

    @property
    def key(self) -> str:
        return f"{self.split}/{self.name}"


@dataclass
class ClipCorpus:
    """A labels CSV read against a media root: its clips, the class table and the format it was read as."""

    clips: list[Clip]
    classes: list[dict[str, Any]]  # {"index", "mid", "name"}, index = position
    multi_label: bool
    format: str
    duplicates: int = 0  # rows that repeated an earlier row exactly (kept once)

    def label_indices(self, clip: Clip) -> list[int]:
        lookup = self._lookup()
        return sorted({lookup[label] for label in clip.labels})

    def _lookup(self) -> dict[str, int]:
        table: dict[str, int] = {}
        for row in self.classes:  # by display name first, so a MID of the same text wins below
            table.setdefault(row["name"], row["index"])
        for row in self.classes:
            table[row["mid"]] = row["index"]
        return table


# ------------------------------------------------------------------------------------------------ reading


def _read_text(path: Path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AvkdError(f"{path}: cannot read {what} ({getattr(exc, 'strerror', None) or exc})") from None


def _rows(text: str) -> Iterable[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank, non-comment row; ", " separators are read as ","."""
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    line = 1
    for fields in reader:
        row_line, line = line, reader.line_num + 1
        if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        yield row_line, [f.strip() for f in fields]


def _number(path: Path, line: int, name: str, text: str, whole: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or (whole and value != int(value)):
        kind = "a whole number of seconds" if whole else "a number of seconds >= 0"
        raise AvkdError(f"{path}:{line}: {name} {text!r} is not {kind}")
    return value


def _split_name(path: Path, line: int, text: str) -> str:
    split = canonical_split(text.strip().lower())
    if split not in SPLITS:
        raise AvkdError(f"{path}:{line}: split {text!r} is not one of {', '.join(SPLITS)}")
    return split


def _user_split(text: str) -> str:
    split = canonical_split(text.strip().lower())
    if split not in SPLITS:
        raise UsageError(f"unknown split {text!r}; choose from {', '.join(SPLITS)}")
    return split


def parse_vggsound(path: str | Path) -> list[Clip]:
    """The rows of a VGGSound-layout CSV (``youtube_id,start_seconds,label,split``); a bad row is an error naming
    the file and line."""
    path = Path(path)
    clips = []
    for line, fields in _rows(_read_text(path, "labels CSV")):
        if not clips and line == 1 and fields[0].lower() in _HEADER_IDS:
            continue  # a header row
        if len(fields) != 4:
            raise AvkdError(
                f"{path}:{line}: expected 4 fields 'youtube_id,start_seconds,label,split', got {len(fields)}"
            )
        ytid, start, label, split = fields
        if not ytid:
            raise AvkdError(f"{path}:{line}: empty youtube_id")
        if not label:
            raise AvkdError(f"{path}:{line}: empty label")
        seconds = _number(path, line, "start_seconds", start, whole=True)
        clips.append(Clip(ytid, seconds, None, (label,), _split_name(path, line, split), line))
    return clips


def audioset_split(path: Path) -> str:
    """The split of an AudioSet segment CSV, from its name: ``eval_segments.csv`` is test, the others train."""
    return "test" if "eval" in Path(path).name.lower() else "train"


def parse_audioset(path: str | Path, split: str | None = None) -> list[Clip]:
    """The rows of an AudioSet segment CSV (``YTID, start_seconds, end_seconds, "mid,mid,..."``, ``#`` comments);
    every clip gets ``split`` (default: :func:`audioset_split`)."""
    path = Path(path)
    split = _user_split(split) if split else audioset_split(path)
    clips = []
    for line, fields in _rows(_read_text(path, "segments CSV")):
        if len(fields) != 4:
            raise AvkdError(
                f"{path}:{line}: expected 4 fields 'YTID, start_seconds, end_seconds, positive_labels', "
                f"got {len(fields)}"
            )
        ytid, start, end, labels = fields
        if not ytid:
            raise AvkdError(f"{path}:{line}: empty YTID")
        t0 = _number(path, line, "start_seconds", start)
        t1 = _number(path, line, "end_seconds", end)
        if t1 <= t0:
            raise AvkdError(f"{path}:{line}: end_seconds {end} is not after start_seconds {start}")
        mids = tuple(m.strip() for m in labels.split(",") if m.strip())
        if not mids:
            raise AvkdError(f"{path}:{line}: no positive_labels")
        clips.append(Clip(ytid, t0, t1, mids, split, line))
    return clips


def detect_format(path: str | Path) -> str:
    """``audioset`` for a file with ``#`` comment lines or a numeric third field (end_seconds), else
    ``vggsound``."""
    path = Path(path)
    text = _read_text(path, "labels CSV")
    for raw in text.splitlines():
        if raw.strip():
            if raw.lstrip().startswith("#"):
                return "audioset"
            break
    for _line, fields in _rows(text):
        if len(fields) >= 3:
            try:
                float(fields[2])
            except ValueError:
                return "vggsound"
            return "audioset"
        break
    return "vggsound"


def read_class_labels(path: str | Path) -> list[dict[str, Any]]:
    """A class table ``index,mid,display_name`` (AudioSet's ``class_labels_indices.csv`` and the VGGSound lists
    made like it); indices must be 0..K-1, each once."""
    path = Path(path)
    text = _read_text(path, "classes CSV")
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    need = {"index", "mid", "display_name"}
    if reader.fieldnames is None or not need <= {f.strip() for f in reader.fieldnames}:
        raise AvkdError(f"{path}:1: expected the header 'index,mid,display_name', got {reader.fieldnames}")
    rows: dict[int, dict[str, Any]] = {}
    for row in reader:
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        line = reader.line_num
        try:
            index = int(row["index"])
        except ValueError:
            raise AvkdError(f"{path}:{line}: index {row['index']!r} is not a whole number") from None
        if index in rows:
            raise AvkdError(f"{path}:{line}: index {index} given twice")
        if not row["mid"]:
            raise AvkdError(f"{path}:{line}: empty mid")
        rows[index] = {"index": index, "mid": row["mid"], "name": row["display_name"] or row["mid"]}
    if sorted(rows) != list(range(len(rows))) or not rows:
        raise AvkdError(f"{path}: indices must be 0..{len(rows) - 1} with none missing")
    return [rows[i] for i in range(len(rows))]


# ------------------------------------------------------------------------------------------------ corpus


def media_root(root: Path) -> Path:
    """Where the mp4 files are: ``ROOT/video`` (the VGGSound release's folder) if it exists, else ROOT."""
    return root / "video" if (root / "video").is_dir() else root


def _candidates(clip: Clip, media: Path, templates: Sequence[str], extension: str) -> list[Path]:
    out = []
    for template in templates:
        try:
            name = template.format(
                id=clip.ytid, start=int(clip.start), end=int(clip.end) if clip.end is not None else 0
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageError(
                f"file name template {template!r}: {exc}; use the fields {{id}}, {{start}}, {{end}}"
            ) from None
        out.append(media / f"{name}{extension}")
    return out


def list_clips(
    root: str | Path,
    labels: str | Path,
    format: str = "auto",
    classes_file: str | Path | None = None,
    splits: Iterable[str] | None = None,
    split: str | None = None,
    templates: Sequence[str] = NAME_TEMPLATES,
    extension: str = ".mp4",
) -> ClipCorpus:
    """Every clip of ``labels`` in file order (only ``splits``, when given), each with its mp4 path under
    ``root``, and the class table; ``split`` is the split of an AudioSet CSV's rows (see the module docstring)."""
    root, labels = Path(root), Path(labels)
    if not root.is_dir():
        raise AvkdError(f"{root}: corpus root not found")
    if not labels.is_file():
        raise AvkdError(f"{labels}: labels CSV not found")
    if format not in FORMATS:
        raise UsageError(f"unknown labels format {format!r}; choose from {', '.join(FORMATS)}")
    fmt = detect_format(labels) if format == "auto" else format
    rows = parse_audioset(labels, split) if fmt == "audioset" else parse_vggsound(labels)
    if split and fmt == "vggsound":
        raise UsageError(
            "--split is for AudioSet CSVs, which have no split column; VGGSound rows carry theirs"
        )
    if not rows:
        raise AvkdError(f"{labels}: no clips listed")
    classes = read_class_labels(classes_file) if classes_file else _classes_of(rows)
    corpus = ClipCorpus([], classes, multi_label=fmt == "audioset", format=fmt)
    lookup = corpus._lookup()
    wanted = None if splits is None else {_user_split(s) for s in splits}
    media = media_root(root)
    seen: dict[str, Clip] = {}
    for clip in rows:
        for label in clip.labels:
            if label not in lookup:
                raise AvkdError(f"{labels}:{clip.line}: label {label!r} is not in {classes_file}")
        earlier = seen.get(clip.key)
        if earlier is not None:
            if set(earlier.labels) != set(clip.labels):
                raise AvkdError(
                    f"{labels}:{clip.line}: clip {clip.name} is listed again with other labels (first on line "
                    f"{earlier.line})"
                )
            corpus.duplicates += 1
            continue
        seen[clip.key] = clip
        if wanted is not None and clip.split not in wanted:
            continue
        paths = _candidates(clip, media, templates, extension)
        path = next((p for p in paths if p.is_file()), paths[0])
        corpus.clips.append(Clip(clip.ytid, clip.start, clip.end, clip.labels, clip.split, clip.line, path))
    return corpus


def _classes_of(rows: list[Clip]) -> list[dict[str, Any]]:
    names = sorted({label for clip in rows for label in clip.labels})
    return [{"index": i, "mid": name, "name": name} for i, name in enumerate(names)]
