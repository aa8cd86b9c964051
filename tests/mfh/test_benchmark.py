"""benchmarks/mfh.py still runs and prints ratios that follow from its own times (a smoke run at toy size, as
tests/test_benchmarks.py does for the other benchmarks; no timing is asserted)."""

from __future__ import annotations

import pytest

from tests.test_benchmarks import NUMBER, _figure, _find, _quotient_agrees, _run


@pytest.mark.slow  # ~6 s: a fresh interpreter that imports torch, both engines at toy size
def test_mfh_benchmark_small() -> None:
    out = _run("mfh.py", "--small", "--runs", "2")
    for name, settings in (("exp1", 6), ("exp2", 5), ("table2", 2)):
        row = _find(
            rf"{name} \({settings} settings x 2 runs\): vectorised {NUMBER} s, per-run loop {NUMBER} s, "
            rf"ratio: {NUMBER}x; max \|accuracy difference\| {NUMBER} points",
            out,
        )
        _quotient_agrees(_figure(row, 3), _figure(row, 2), _figure(row, 1))
        assert _figure(row, 4)[0] == 0.0  # the two engines agree run for run
    total = _find(rf"total: vectorised {NUMBER} s, per-run loop {NUMBER} s, ratio: {NUMBER}x", out)
    _quotient_agrees(_figure(total, 3), _figure(total, 2), _figure(total, 1))
