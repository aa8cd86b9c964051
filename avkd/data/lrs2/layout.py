"""The LRS2 corpus layout: split files, utterance paths, and ``avkd data check lrs2``.

Layout (LRS2 release): ``ROOT/{pretrain,train,val,test}.txt`` and media under ``ROOT/main/<speaker>/<utt>.mp4``
(train, val, test) and ``ROOT/pretrain/<speaker>/<utt>.mp4`` (pretrain). The release unpacks media into
``mvlrs_v1/``; both ``ROOT/main`` and ``ROOT/mvlrs_v1/main`` are accepted. Split lines are ``<speaker>/<utt>``;
test lines carry a second field (``NF`` or ``MV``), dropped as VocaLiST does (reference §1.2).

Keys: the same ``<speaker>/<utt>`` appears in ``pretrain.txt`` and ``train.txt`` but names two different files
(``pretrain/`` vs ``main/``), so avkd keys an utterance by ``<split>/<speaker>/<utt>`` — unique, and it records
split membership in the key itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from avkd.core.errors import AvkdError, MediaError, UsageError
from avkd.data.manifests import manifest_dir

SPLITS: tuple[str, ...] = ("pretrain", "train", "val", "test")
SUBSET_OF_SPLIT: dict[str, str] = {"pretrain": "pretrain", "train": "main", "val": "main", "test": "main"}


@dataclass(frozen=True)
class Utterance:
    """One clip named by a split file."""

    split: str
    speaker: str
    utt: str
    path: Path
    tag: str | None = None  # the second field of test.txt lines (NF / MV)

    @property
    def key(self) -> str:
        return f"{self.split}/{self.speaker}/{self.utt}"

    @property
    def source_key(self) -> str:
        """``<subset>/<speaker>/<utt>``: the path under the media root without extension (used by boxes files)."""
        return f"{SUBSET_OF_SPLIT[self.split]}/{self.speaker}/{self.utt}"


def load_corpus_manifest(path: str | Path | None = None) -> dict[str, Any]:
    path = Path(path) if path is not None else manifest_dir() / "lrs2.yaml"
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read corpus manifest ({exc})") from None


def media_root(root: Path) -> Path:
    """Where ``main/`` and ``pretrain/`` live: ROOT itself or ROOT/mvlrs_v1 (the release's folder name)."""
    root = Path(root)
    for candidate in (root, root / "mvlrs_v1"):
        if (candidate / "main").is_dir() or (candidate / "pretrain").is_dir():
            return candidate
    return root


def parse_split_file(path: Path, split: str, media: Path, extension: str = ".mp4") -> list[Utterance]:
    """Read one split file; a malformed line is a one-line error naming file and line."""
    items = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise AvkdError(f"{path}: cannot read split file ({exc.strerror})") from None
    subset = SUBSET_OF_SPLIT[split]
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        name = fields[0]
        parts = name.split("/")
        if len(parts) != 2 or not all(parts):
            raise AvkdError(f"{path}:{lineno}: expected '<speaker>/<utt>', got {line.strip()!r}")
        speaker, utt = parts
        tag = fields[1] if len(fields) > 1 else None
        items.append(Utterance(split, speaker, utt, media / subset / speaker / f"{utt}{extension}", tag))
    return items


def list_utterances(root: str | Path, splits: Iterable[str] = SPLITS) -> list[Utterance]:
    """Every utterance of the named splits, in split-file order; a missing split file is an error."""
    root = Path(root)
    if not root.is_dir():
        raise AvkdError(f"{root}: corpus root not found")
    media = media_root(root)
    out: list[Utterance] = []
    for split in splits:
        if split not in SUBSET_OF_SPLIT:
            raise UsageError(f"unknown LRS2 split {split!r}; choose from {', '.join(SPLITS)}")
        split_file = root / f"{split}.txt"
        if not split_file.is_file():
            raise AvkdError(f"{split_file}: split file missing")
        out.extend(parse_split_file(split_file, split, media))
    return out


# --------------------------------------------------------------------------------------------- check


@dataclass
class SplitReport:
    split: str
    file_present: bool
    count: int = 0
    expected: int | None = None
    not_in_official: list[str] = field(default_factory=list)  # listed here, absent from the official list
    missing_from_list: list[str] = field(default_factory=list)  # in the official list, absent here
    missing_media: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    off_format: dict[str, str] = field(default_factory=dict)  # readable but not 25 fps / 16 kHz / with audio

    @property
    def ok(self) -> bool:
        return (
            self.file_present
            and (self.expected is None or self.count == self.expected)
            and not (self.not_in_official or self.missing_from_list or self.missing_media)
            and not (self.unreadable or self.off_format)
        )


@dataclass
class CheckReport:
    root: Path
    manifest: str
    splits: list[SplitReport]
    extra_media: list[str] = field(
        default_factory=list
    )  # mp4 files under the media root named by no split file

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.splits) and not self.extra_media

    def to_json(self, limit: int = 50) -> dict[str, Any]:
        def cut(items: Any) -> Any:
            if isinstance(items, dict):
                return dict(list(items.items())[:limit])
            return items[:limit]

        return {
            "root": str(self.root),
            "manifest": self.manifest,
            "ok": self.ok,
            "extra_media": len(self.extra_media),
            "extra_media_examples": cut(self.extra_media),
            "splits": {
                s.split: {
                    "file_present": s.file_present,
                    "count": s.count,
                    "expected": s.expected,
                    "ok": s.ok,
                    **{
                        name: len(getattr(s, name))
                        for name in (
                            "not_in_official",
                            "missing_from_list",
                            "missing_media",
                            "unreadable",
                            "off_format",
                        )
                    },
                    "examples": {
                        name: cut(getattr(s, name))
                        for name in (
                            "not_in_official",
                            "missing_from_list",
                            "missing_media",
                            "unreadable",
                            "off_format",
                        )
                        if getattr(s, name)
                    },
                }
                for s in self.splits
            },
        }


def check_corpus(
    root: str | Path,
    manifest_path: str | Path | None = None,
    probe_media: bool = True,
    probe: Callable[[Path], dict[str, Any]] | None = None,
) -> CheckReport:
    """Compare a corpus with its manifest: split files, counts, list contents, media presence and readability.

    Reads split files and probes container metadata only (no decoding, no preprocessing), so it is cheap enough
    to run before committing cluster hours to ``avkd preprocess``.
    """
    root = Path(root)
    if not root.is_dir():
        raise AvkdError(f"{root}: corpus root not found")
    manifest = load_corpus_manifest(manifest_path)
    mdir = Path(manifest_path).parent if manifest_path else manifest_dir()
    media = media_root(root)
    fmt = manifest.get("media", {})
    ext = fmt.get("extension", ".mp4")
    if probe is None:
        from avkd.media.video import probe as probe_file

        probe = probe_file
    reports = []
    named: set[Path] = set()
    for split, spec in manifest["splits"].items():
        split_file = root / spec.get("file", f"{split}.txt")
        report = SplitReport(split, split_file.is_file(), expected=spec.get("count"))
        reports.append(report)
        if not report.file_present:
            continue
        utts = parse_split_file(split_file, split, media, ext)
        report.count = len(utts)
        names = [f"{u.speaker}/{u.utt}" for u in utts]
        if spec.get("list"):
            official_path = mdir / spec["list"]
            official = parse_split_file(official_path, split, media, ext)
            official_names = {f"{u.speaker}/{u.utt}" for u in official}
            here = set(names)
            report.not_in_official = sorted(here - official_names)
            report.missing_from_list = sorted(official_names - here)
        for utt in utts:
            named.add(utt.path)
            if not utt.path.is_file():
                report.missing_media.append(utt.source_key)
                continue
            if not probe_media:
                continue
            try:
                info = probe(utt.path)
            except MediaError as exc:
                report.unreadable[utt.source_key] = str(exc).removeprefix(f"{utt.path}: ")
                continue
            problem = _format_problem(info, fmt)
            if problem:
                report.off_format[utt.source_key] = problem
    extra = sorted(
        p.relative_to(media).with_suffix("").as_posix()
        for subset in sorted(set(SUBSET_OF_SPLIT.values()))
        if (media / subset).is_dir()
        for p in (media / subset).rglob(f"*{ext}")
        if p not in named
    )
    return CheckReport(
        root=root, manifest=str(manifest_path or "lrs2.yaml"), splits=reports, extra_media=extra
    )


def _format_problem(info: dict[str, Any], fmt: dict[str, Any]) -> str | None:
    problems = []
    fps = info.get("fps")
    if fmt.get("fps") and fps and abs(fps - fmt["fps"]) > 0.01:
        problems.append(f"{fps:g} fps (expected {fmt['fps']})")
    if not info.get("has_audio"):
        problems.append("no audio stream")
    elif fmt.get("sample_rate") and info.get("sample_rate") != fmt["sample_rate"]:
        problems.append(f"{info.get('sample_rate')} Hz audio (expected {fmt['sample_rate']})")
    return ", ".join(problems) or None


def write_corpus_manifest(
    root: str | Path, fps: float = 25, sample_rate: int = 16000, size: int = 160
) -> Path:
    """Write ``ROOT/lrs2.yaml`` describing the corpus as it is now (split counts and checksums, media format).

    The synthetic corpus carries one so that ``avkd data check lrs2 ROOT --manifest ROOT/lrs2.yaml`` can verify
    it the way the official manifest verifies a real LRS2 copy.
    """
    import hashlib

    from avkd.core.artifacts import atomic_write_text

    root = Path(root)
    splits = {}
    for split in SPLITS:
        path = root / f"{split}.txt"
        if path.is_file():
            text = path.read_bytes()
            splits[split] = {
                "file": path.name,
                "subset": SUBSET_OF_SPLIT[split],
                "count": sum(1 for line in text.decode().splitlines() if line.strip()),
                "sha256": hashlib.sha256(text).hexdigest(),
            }
    manifest = {
        "corpus": "lrs2",
        "media": {"extension": ".mp4", "fps": fps, "sample_rate": sample_rate, "width": size, "height": size},
        "splits": splits,
    }
    target = root / "lrs2.yaml"
    atomic_write_text(target, yaml.safe_dump(manifest, sort_keys=False))
    return target
