"""The benchmarks still run and print their comparisons (smoke runs at toy sizes; no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--threads", "1", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _positive(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the output:\n{text}"
    value = float(match.group(1).replace(",", ""))
    assert value > 0
    return value


@pytest.mark.slow
def test_emotion_benchmark_small() -> None:
    out = _run("emotion.py", "--small")
    _positive(r"ours is ([\d.]+)x faster", out)
    assert "4.54 GB for the real train split" in out  # 16,326 segments × 278,000 bytes
    for method in ("none", "crd-final", "crd-attention", "edam-s", "edam-t"):
        _positive(rf"{method}:\s+([\d.]+) samples/s", out)
    # The straightforward teacher pass keeps activations for backward; avkd's keeps none.
    assert _positive(r"([\d,]+) MB of activations kept for backward", out) > 0
    assert "0 MB kept for backward" in out
    _positive(r"time ratio: ([\d.]+)x", out)


@pytest.mark.slow
def test_distill_benchmark_lite() -> None:
    out = _run("distill.py", "--lite", "--steps", "1")
    for method in ("bce", "fitnets", "mtd"):
        _positive(rf"{method} \(\w+\):\s+([\d.]+) samples/s", out)
    _positive(r"([\d,]+) MB of activations kept for backward", out)
    _positive(r"time ratio: ([\d.]+)x", out)
