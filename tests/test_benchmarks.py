"""The benchmarks still run and print comparisons that agree with their own figures (smoke runs at toy sizes).

No timing is asserted: each printed ratio or rate must follow from the printed times within their rounding,
the straightforward teacher pass must keep activations for backward where avkd's keeps none, and the counts
printed must be the library's.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from avkd.losses import build_loss

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
NUMBER = r"([\d,]+(?:\.\d+)?)"


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


def _figure(match: re.Match, group: int) -> tuple[float, float]:
    """A printed number and half a unit of its last printed digit (its rounding)."""
    text = match.group(group).replace(",", "")
    decimals = len(text.partition(".")[2])
    return float(text), 0.5 * 10.0**-decimals


def _find(pattern: str, text: str) -> re.Match:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the output:\n{text}"
    return match


def _quotient_agrees(
    printed: tuple[float, float], num: tuple[float, float], den: tuple[float, float]
) -> None:
    """``printed`` is num / den, each rounded as printed: it lies in the range the roundings allow."""
    (q, dq), (a, da), (b, db) = printed, num, den
    low = (a - da) / (b + db)
    high = (a + da) / (b - db) if b - db > 0 else math.inf
    assert low - dq <= q <= high + dq, f"{q} is not {a}/{b} within rounding ([{low:.4g}, {high:.4g}])"


def test_figure_rounding_helpers_can_fail() -> None:
    match = re.match(r"(\S+) (\S+) (\S+)", "2.80 0.367 0.131")
    _quotient_agrees(_figure(match, 1), _figure(match, 2), _figure(match, 3))
    with pytest.raises(AssertionError, match="not"):
        _quotient_agrees((2.5, 0.005), (0.367, 0.0005), (0.131, 0.0005))


def _check_teacher_pass(out: str, expected_taps: int, what: str) -> None:
    """Section "the frozen teacher's pass": avkd's and the straightforward time, their ratio, what is kept."""
    ours = _find(
        rf"avkd \({what}, (\d+) \w+\): {NUMBER} s per batch,[^\n]* {NUMBER} MB kept for backward", out
    )
    slow = _find(rf"straightforward \(autograd on, every internal\): {NUMBER} s per batch, {NUMBER} MB", out)
    ratio = _find(rf"time ratio: {NUMBER}x", out)
    assert int(ours.group(1)) == expected_taps
    _quotient_agrees(_figure(ratio, 1), _figure(slow, 1), _figure(ours, 2))
    # The straightforward pass keeps activations for backward; avkd's keeps none.
    assert _figure(ours, 3)[0] == 0 < _figure(slow, 2)[0]


@pytest.mark.slow
def test_emotion_benchmark_small() -> None:
    out = _run("emotion.py", "--small")
    # Reads: "ours is X times faster" is the quotient of the two read rates printed above it.
    ours = _find(rf"MoseiDataset \(one handle\):\s+{NUMBER} reads/s, holds one segment \({NUMBER} kB\)", out)
    reopen = _find(rf"open per read\s+:\s+{NUMBER} reads/s -> ours is {NUMBER}x faster", out)
    _quotient_agrees(_figure(reopen, 2), _figure(ours, 1), _figure(reopen, 1))
    # 16,326 real train segments of the printed size: (50·300 + 500·74 + 500·35)·4 bytes = 278 kB -> 4.54 GB.
    per_segment_kb = _figure(ours, 2)
    assert per_segment_kb[0] == 278
    real = _find(rf"and {NUMBER} GB for the real train split", out)
    gb = _figure(real, 1)
    assert abs(gb[0] - 16_326 * per_segment_kb[0] / 1e6) <= gb[1] + 16_326 * per_segment_kb[1] / 1e6
    # Training rates: samples/s is the batch over the seconds per step, for every method.
    batch = int(_find(r"\(batch (\d+), MOSEI lengths", out).group(1))
    for method in ("none", "crd-final", "crd-attention", "edam-s", "edam-t"):
        row = _find(rf"{method}:\s+{NUMBER} samples/s \({NUMBER} s per step", out)
        _quotient_agrees(_figure(row, 1), (batch, 0.0), _figure(row, 2))
    # The teacher pass requests exactly the EDAM-S maps (student configuration 5, the --small teacher's 1 layer).
    maps = len(build_loss("edam-s", config=5, num_layers=1).taps())
    _check_teacher_pass(out, maps, "no_grad")


@pytest.mark.slow
def test_distill_benchmark_lite() -> None:
    out = _run("distill.py", "--lite", "--steps", "1")
    batch = int(_find(r"; batch (\d+),", out).group(1))
    for method in ("bce", "fitnets", "mtd"):
        row = _find(rf"{method} \(\w+\):\s+{NUMBER} samples/s \({NUMBER} s per step", out)
        _quotient_agrees(_figure(row, 1), (batch, 0.0), _figure(row, 2))
    # The teacher pass requests exactly MTD's taps (every layer's scores and values).
    _check_teacher_pass(out, len(build_loss("mtd").taps()), "inference_mode")


def test_determinism_benchmark_small() -> None:
    out = _run("determinism.py", "--batch", "2", "--rounds", "1", "--check-steps", "2")
    for name in ("sync demo teacher", "emotion demo MulT"):
        row = _find(
            rf"{name} \(batch 2\): default {NUMBER} s per step, deterministic {NUMBER} s per step, "
            rf"cost ratio: {NUMBER}x",
            out,
        )
        _quotient_agrees(_figure(row, 3), _figure(row, 2), _figure(row, 1))
    # Deterministic kernels must reproduce the weights; what default kernels do is printed, not asserted.
    assert out.count("deterministic: two runs of 2 steps give identical weights: yes") == 2


def test_ddp_benchmark_small() -> None:
    out = _run("ddp.py", "--steps", "1", "--batch", "4")
    batch = int(_find(r"global batch (\d+),", out).group(1))
    for label in ("1 x 1", "1 x 1", "2 x 1"):
        row = _find(rf"\| {label} \| {NUMBER} \| {NUMBER} \|", out)
        _quotient_agrees(_figure(row, 2), (batch, 0.0), _figure(row, 1))
    share = _find(rf"communication share of a 2-process step: {NUMBER}% \({NUMBER} s with", out)
    assert 0.0 <= float(share.group(1)) <= 100.0


@pytest.mark.slow
def test_avsiam_benchmark_small() -> None:
    from avkd.models import build_model
    from avkd.models.masking import RELEASED_RATIOS, keep_count

    out = _run("avsiam.py", "--small")
    model = build_model("avsiam", size="toy")
    # 1. The baselines are checked against avkd's packed features on the same masks before anything is timed.
    for way in ("padded", "loop"):
        check = _find(
            rf"max \|F\(packed\) - F\({way}\)\| over F_a, F_v: (\S+) \(tolerance (\S+)\): (\w+)", out
        )
        assert check.group(3) == "same" and float(check.group(1)) <= float(check.group(2)) <= 1e-4
    header = _find(r"toy \(batch (\d+), ratios ([\d./]+);", out)
    batch = int(header.group(1))
    assert header.group(2) == "/".join(f"{r:g}" for r in RELEASED_RATIOS)
    # The printed token counts are the masking's kept counts, the ratios dealt evenly over the batch.
    keeps = [[keep_count(n, RELEASED_RATIOS[i % 5]) for i in range(batch)] for n in model.num_tokens]
    tokens = _find(rf"per batch: packed {NUMBER}, padded {NUMBER} \({NUMBER}x\)", out)
    assert _figure(tokens, 1)[0] == sum(map(sum, keeps))
    assert _figure(tokens, 2)[0] == sum(len(k) * max(k) for k in keeps)
    _quotient_agrees(_figure(tokens, 3), _figure(tokens, 2), _figure(tokens, 1))
    packed = _find(rf"packed \(avkd\):\s+{NUMBER} samples/s \({NUMBER} s per step", out)
    _quotient_agrees(_figure(packed, 1), (batch, 0.0), _figure(packed, 2))
    for label in ("padded to the longest", "one sample at a time"):
        row = _find(rf"{label}:\s+{NUMBER} samples/s \({NUMBER} s per step[^\n]* packed is {NUMBER}x", out)
        _quotient_agrees(_figure(row, 1), (batch, 0.0), _figure(row, 2))
        _quotient_agrees(_figure(row, 3), _figure(row, 2), _figure(packed, 2))
    # 2. Two towers hold every block's attention and MLP twice, and one pair of LayerNorms per block per tower.
    enc = _find(
        rf"toy: parameters shared {NUMBER} vs two towers {NUMBER} \({NUMBER}x\); peak memory of 2 training "
        rf"steps \(batch \d+\): shared {NUMBER} MB vs two towers {NUMBER} MB \({NUMBER}x\)",
        out,
    )
    shared = sum(p.numel() for p in model.parameters())
    blocks = sum(p.numel() for blk in model.blocks for part in (blk.attn, blk.mlp) for p in part.parameters())
    assert _figure(enc, 1)[0] == shared and _figure(enc, 2)[0] == shared + blocks
    _quotient_agrees(_figure(enc, 3), _figure(enc, 2), _figure(enc, 1))
    assert _figure(enc, 4)[0] > 0 and _figure(enc, 5)[0] > 0
    _quotient_agrees(_figure(enc, 6), _figure(enc, 5), _figure(enc, 4))
    # 3. Pre-training samples/s is the batch over the seconds per step.
    row = _find(rf"toy \([\d.]+M parameters, batch (\d+)\):\s+{NUMBER} samples/s \({NUMBER} s per step", out)
    _quotient_agrees(_figure(row, 2), (int(row.group(1)), 0.0), _figure(row, 3))
