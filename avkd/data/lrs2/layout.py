"""The LRS2 corpus layout: split files, utterance paths, and ``avkd data check lrs2``.

Layout (LRS2 release): ``ROOT/{pretrain,train,val,test}.txt`` and media under ``ROOT/main/<speaker>/<utt>.mp4``
(train, val, test) and ``ROOT/pretrain/<speaker>/<utt>.mp4`` (pretrain). The release unpacks media into
``mvlrs_v1/``; both ``ROOT/main`` and ``ROOT/mvlrs_v1/main`` are accepted. Split lines are ``<speaker>/<utt>``;
test lines carry a second field (``NF`` or ``MV``), dropped as VocaLiST does (docs/reference/vocalist.md §1.2).

Keys: the same ``<speaker>/<utt>`` appears in ``pretrain.txt`` and ``train.txt`` but names two different files
(``pretrain/`` vs ``main/``), so avkd keys an utterance by ``<split>/<speaker>/<utt>`` — unique, and it records
split membership in the key itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from avkd.core.artifacts import atomic_write_text
from avkd.core.errors import AvkdError, UsageError
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


def write_corpus_manifest(
    root: str | Path, fps: float = 25, sample_rate: int = 16000, size: int = 160
) -> Path:
    """Write ``ROOT/lrs2.yaml`` describing the corpus as it is now (split counts and checksums, media format).

    The synthetic corpus carries one so that ``avkd data check lrs2 ROOT --manifest ROOT/lrs2.yaml`` can verify
    it the way the official manifest verifies a real LRS2 copy.
    """
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
