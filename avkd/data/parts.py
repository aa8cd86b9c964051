"""The HDF5 parts of a features artifact being written: resume, numbering and flushing, for every ingest.

A preprocessing stage (LRS2 utterances, labelled clips) writes its items into ``parts/part-NNNNN.h5`` files of
``part_size`` items each. Every part records its index entries and its failures in its own attributes
(:func:`avkd.data.lrs2.store.read_part_summary`), so a run that is killed keeps each part it finished, and a
resumed run (``--resume``) processes only the items no kept part holds. :class:`PartsWriter` is that mechanism
once; a stage supplies how one part is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from avkd.core.artifacts import ArtifactWriter, sha256_file
from avkd.core.progress import log
from avkd.data.lrs2.store import PARTS_DIR, read_part_summary

__all__ = ["PartsWriter", "kept_parts"]

#: ``write(path, records, failures) -> index entries``: writes one part atomically.
WritePart = Callable[[Path, list[Any], list[dict[str, Any]]], list[dict[str, Any]]]


def kept_parts(
    writer: ArtifactWriter, parts_dir: Path, unit: str = "items"
) -> tuple[list[Path], list[dict[str, Any]], list[dict[str, Any]]]:
    """The parts a resumed run keeps, each proved against the partial manifest, and what they hold.

    A part the manifest records must have its recorded size and sha256; a part written just before a kill (on
    disk, not yet recorded) must read back. A damaged part is deleted and a recorded one that is gone is
    dropped: either way its ``unit`` are processed again, so nothing the index names is missing.
    """
    recorded = writer.manifest["files"]
    kept: list[Path] = []
    entries: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for part in sorted(parts_dir.glob("part-*.h5")):
        name = f"{PARTS_DIR}/{part.name}"
        info = recorded.get(name)
        try:
            if info is not None and (
                info["size"] != part.stat().st_size or sha256_file(part) != info["sha256"]
            ):
                raise ValueError("differs from the manifest's record of it")
            part_entries, part_failures = read_part_summary(part)
        except (OSError, ValueError, KeyError) as exc:
            log(f"{part}: damaged ({exc}); its {unit} are processed again")
            part.unlink()
            recorded.pop(name, None)
            continue
        if info is None:
            writer.add_file(name)
        kept.append(part)
        entries += part_entries
        failures += part_failures
    for name in sorted(n for n in recorded if n.startswith(f"{PARTS_DIR}/")):
        if not (writer.workdir / name).is_file():
            log(f"{writer.workdir / name}: missing; its {unit} are processed again")
            del recorded[name]
    return kept, entries, failures


class PartsWriter:
    """Collects a stage's records and failures into parts of ``part_size`` items inside ``writer``.

    On creation it removes a killed run's half-written temporaries and keeps the parts that prove sound
    (:func:`kept_parts`); ``done_keys`` are the items they hold. New parts are numbered after the highest kept
    one, never over one (a missing part in the middle is not reused). ``entries()`` and ``failures()`` are the
    kept and new ones together, in corpus order (each item's ``order``).
    """

    def __init__(self, writer: ArtifactWriter, write: WritePart, part_size: int, unit: str = "items") -> None:
        self.writer = writer
        self.write = write
        self.part_size = part_size
        self.dir = writer.path(PARTS_DIR)
        self.dir.mkdir(exist_ok=True)
        for stray in self.dir.glob(".*.tmp"):
            stray.unlink()
        kept, self.done_entries, self.done_failures = kept_parts(writer, self.dir, unit)
        self.done_keys = {e["key"] for e in self.done_entries} | {f["key"] for f in self.done_failures}
        self._next = max((int(p.stem.split("-")[1]) for p in kept), default=-1) + 1
        self._records: list[Any] = []
        self._failures: list[dict[str, Any]] = []
        self.new_entries: list[dict[str, Any]] = []
        self.new_failures: list[dict[str, Any]] = []

    def add(self, record: Any) -> None:
        """One processed item (written with the next part)."""
        self._records.append(record)
        self._maybe_flush()

    def fail(self, failure: dict[str, Any]) -> None:
        """One failed item (``key``, ``order``, ``path``, ``reason``), kept in the next part's attributes."""
        self._failures.append(failure)
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if len(self._records) + len(self._failures) >= self.part_size:
            self.flush()

    def flush(self) -> None:
        """Write what is pending as one part and record it in the manifest (nothing when nothing is pending)."""
        if not self._records and not self._failures:
            return
        name = f"part-{self._next:05d}.h5"
        self.new_entries.extend(self.write(self.dir / name, self._records, self._failures))
        self.writer.add_file(f"{PARTS_DIR}/{name}")
        self.new_failures.extend(self._failures)
        self._next += 1
        self._records, self._failures = [], []

    def entries(self) -> list[dict[str, Any]]:
        return _in_order(self.done_entries + self.new_entries)

    def failures(self) -> list[dict[str, Any]]:
        return _in_order(self.done_failures + self.new_failures)


def _in_order(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: row["order"])
