"""Seeds as an axis (``avkd.report.aggregate``): grouping by label, mean / sample sd / n against hand-computed
values, None and NaN left out, and labels whose evaluations differ kept apart with a note."""

from __future__ import annotations

import math

import pytest

from avkd.report.aggregate import Stat, group_rows, mean_sd_text, stat, summarise


def test_stat_is_the_mean_and_sample_sd_of_the_finite_values() -> None:
    # mean 0.42; deviations ±0.02, 0 -> sum of squares 0.0008 over n - 1 = 2 -> sd sqrt(0.0004) = 0.02
    s = stat([0.40, 0.42, 0.44])
    assert (s.mean, s.sd, s.n) == (pytest.approx(0.42), pytest.approx(0.02), 3)
    # 1, 2, 3, 4: mean 2.5, squares 2.25 + 0.25 + 0.25 + 2.25 = 5 over 3 -> sd sqrt(5/3)
    s = stat([1, 2, 3, 4])
    assert (s.mean, s.sd, s.n) == (2.5, pytest.approx(math.sqrt(5 / 3)), 4)
    # None, NaN, inf, booleans and text are not values: only 0.5 and 0.7 count (sd sqrt(0.02) = 0.1414...)
    s = stat([0.5, None, math.nan, math.inf, True, "0.9", 0.7])
    assert (s.mean, s.sd, s.n) == (pytest.approx(0.6), pytest.approx(math.sqrt(0.02)), 2)
    assert stat([0.3]) == Stat(0.3, None, 1)  # one value has no sample sd
    assert stat([None, math.nan]) == Stat(None, None, 0)


def test_summarise_finds_the_numeric_metrics() -> None:
    records = [
        {"label": "t", "acc7": 0.40, "f1": 0.30, "parameters": 100, "ids": ["a"], "ok": True},
        {"label": "t", "acc7": 0.46, "f1": None, "parameters": 100, "ids": ["b"], "ok": True},
    ]
    stats = summarise(records)
    assert list(stats) == ["acc7", "f1", "parameters"]  # text, lists and booleans are not metrics
    assert stats["acc7"].mean == pytest.approx(0.43) and stats["acc7"].sd == pytest.approx(math.sqrt(0.0018))
    assert stats["f1"] == Stat(0.30, None, 1)
    assert stats["parameters"] == Stat(100.0, 0.0, 2)
    assert list(summarise(records, ["f1"])) == ["f1"]
    assert stats["acc7"].to_json() == {"mean": stats["acc7"].mean, "sd": stats["acc7"].sd, "n": 2}


def test_group_rows_keeps_first_seen_order_and_splits_differing_facts() -> None:
    items = [
        ("teacher", "test", 1),
        ("student", "test", 2),
        ("teacher", "test", 3),
        ("teacher", "val", 4),
        ("student", "test", 5),
        ("once", "test", 6),
    ]
    groups, notes = group_rows(items, lambda i: i[0], lambda i: {"split": i[1], "protocol": "avkd"})
    assert [[i[2] for i in g] for g in groups] == [[1, 3], [2, 5], [4], [6]]
    assert notes == ["'teacher' is 2 rows, not averaged: its evaluations differ in split (test, val)"]
    # Two facts differing at once are both named.
    _, notes = group_rows(
        [("a", "test", "avkd"), ("a", "val", "reference")],
        lambda i: i[0],
        lambda i: {"split": i[1], "protocol": i[2]},
    )
    assert notes == [
        "'a' is 2 rows, not averaged: its evaluations differ in split (test, val); protocol (avkd, reference)"
    ]


def test_mean_sd_text() -> None:
    assert mean_sd_text(Stat(0.4154, 0.012, 3)) == "41.54 ± 1.20 (n=3)"
    assert mean_sd_text(Stat(0.4154, None, 1)) == "41.54 (n=1)"
    assert mean_sd_text(Stat(None, None, 0)) == "–"
    assert mean_sd_text(Stat(12.25, 0.5, 2), scale=1, digits=1) == "12.2 ± 0.5 (n=2)"
