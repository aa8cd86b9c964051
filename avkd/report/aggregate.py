"""Seeds as an axis of ``avkd report``: evaluations that share a label become one row of mean ± sd.

The same recipe trained with several seeds gives several evaluation artifacts with one label (the demo's
``--seeds 3`` labels its runs "teacher", "MTD student", "BCE student" once per seed; each model artifact's config
records its seed as ``loop.seed``). Both report tracks (:mod:`avkd.report.sync`, :mod:`avkd.report.emotion`) use
this module, which knows nothing of either:

- :func:`group_rows` groups items by label, in the order labels are first seen;
- :func:`stat` / :func:`summarise` give the mean, the sample standard deviation (``ddof = 1``) and the count of
  the finite values of each metric (None and NaN are left out, so a run not evaluated at some K still counts at
  the others);
- :func:`mean_sd_text` writes one as ``41.54 ± 1.20 (n=3)``.

**Same label, different conditions: kept apart, with a note.** Items sharing a label are averaged only when the
caller's ``facts`` (the features artifact, the split, the protocol, ...) agree; otherwise each set of equal facts
becomes its own row and a note names the label and what differs. They are kept apart rather than refused because
a label defaults to the model folder's name: one model evaluated on two splits, or under both protocols, shares a
label with no mistake made, and such a report worked before seeds were an axis. Averaging them would mix numbers
that are not comparable; refusing would break that report for nothing. The note keeps it from being silent.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Stat", "group_rows", "mean_sd_text", "stat", "summarise"]

T = TypeVar("T")


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (``ddof = 1``; None below two values) and count of a metric's finite
    values (None for the mean when there are none)."""

    mean: float | None
    sd: float | None
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean, "sd": self.sd, "n": self.n}


def _finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite number (booleans are not), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def stat(values: Iterable[Any]) -> Stat:
    """The :class:`Stat` of the finite numbers among ``values``; None, NaN and non-numbers are skipped."""
    finite = [v for v in (_finite(x) for x in values) if v is not None]
    if not finite:
        return Stat(None, None, 0)
    sd = statistics.stdev(finite) if len(finite) > 1 else None
    return Stat(statistics.fmean(finite), sd, len(finite))


def summarise(records: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None) -> dict[str, Stat]:
    """A :class:`Stat` per metric over ``records``. ``keys`` default to the fields that hold a number (or None)
    in every record, in the first record's order: labels, ids and lists are not metrics."""
    if keys is None:
        first = records[0] if records else {}
        keys = [
            key
            for key in first
            if all(r.get(key) is None or _is_number(r.get(key)) for r in records)
            and any(_is_number(r.get(key)) for r in records)
        ]
    return {key: stat(r.get(key) for r in records) for key in keys}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def group_rows(
    items: Sequence[T],
    label: Callable[[T], str],
    facts: Callable[[T], Mapping[str, Hashable]],
) -> tuple[list[list[T]], list[str]]:
    """Items grouped by label and equal ``facts``, groups in first-seen order and items in their given order;
    plus one note per label whose items were kept apart because their facts differ (module docstring)."""
    groups: dict[tuple[str, tuple[tuple[str, Hashable], ...]], list[T]] = {}
    for item in items:
        key = (label(item), tuple(facts(item).items()))
        groups.setdefault(key, []).append(item)
    notes = []
    for name in dict.fromkeys(label(item) for item in items):
        variants = [dict(key[1]) for key in groups if key[0] == name]
        if len(variants) > 1:
            notes.append(_apart_note(name, variants))
    return list(groups.values()), notes


def _apart_note(name: str, variants: Sequence[Mapping[str, Hashable]]) -> str:
    """``'teacher' is 2 rows, not averaged: they differ in split (test, val)``."""
    differing = [key for key in variants[0] if len({v.get(key) for v in variants}) > 1]
    what = "; ".join(
        f"{key} ({', '.join(str(v) for v in dict.fromkeys(variant.get(key) for variant in variants))})"
        for key in differing
    )
    return f"{name!r} is {len(variants)} rows, not averaged: its evaluations differ in {what}"


def mean_sd_text(value: Stat, scale: float = 100.0, digits: int = 2) -> str:
    """``41.54 ± 1.20 (n=3)`` (``scale`` 100 writes fractions as %); ``41.54 (n=1)`` for one value, ``–`` for none."""
    if value.mean is None:
        return "–"
    mean = f"{scale * value.mean:.{digits}f}"
    if value.sd is None:
        return f"{mean} (n={value.n})"
    return f"{mean} ± {scale * value.sd:.{digits}f} (n={value.n})"
