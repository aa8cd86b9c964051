"""``avkd data check lrs2``: compare an LRS2 copy on disk with the manifest it should match, without
preprocessing anything (missing, extra, unreadable and off-format media; split lists against the official ones).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avkd.core.errors import AvkdError, MediaError
from avkd.data.lrs2.layout import SUBSET_OF_SPLIT, load_corpus_manifest, media_root, parse_split_file
from avkd.data.manifests import manifest_dir
from avkd.media.video import scan

__all__ = ["CheckReport", "SplitReport", "check_corpus"]


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
    reader: Callable[[Path], Any] | None = None,
) -> CheckReport:
    """Compare a corpus with its manifest: split files, counts, list contents, media presence and readability.

    Default: each media file's metadata and packets are read without decoding (:func:`avkd.media.video.scan`),
    cheap enough to run before committing cluster hours to ``avkd preprocess``; it finds missing, unreadable,
    off-format and truncated files. ``reader`` (``--deep``): each file also goes through it, and whatever it
    raises is reported; ``avkd data check --deep`` passes the preprocessing's own reader
    (:func:`avkd.data.lrs2.preprocess.read_clip`), so every file the preprocessing would reject is reported,
    with the same reason.
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
        probe = scan
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
            elif reader is not None:
                try:
                    reader(utt.path)
                except MediaError as exc:
                    report.unreadable[utt.source_key] = str(exc).removeprefix(f"{utt.path}: ")
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
