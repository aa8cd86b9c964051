"""Sync-evaluator throughput: avkd's shared-front-end scoring against the straightforward per-window loop.

Prints, in one run, for the VocaLiST teacher (width 512, 80.1M) and the MTDVocaLiST student (width 200, 13.3M),
both with random weights, on synthetic random clips (random crops, random mel in [-4, 4]):
1. fast path (``avkd.evaluate.score_clip``): each front-end once per window, then the transformers + head on all
   valid (video, audio) candidate pairs in batches; timed on whole clips -> clips/s.
2. naive path (``score_clip_naive``): the reference's way (§4 ``calc_pdist``), one full forward per video window
   on a batch of its candidates (video repeated). It is too slow to run on whole clips of the teacher, so only a
   few windows are timed (edge and middle ones), the time per scored candidate is taken from them, and the clip
   time is extrapolated to the clip's number of valid candidates (the naive loop scores only those, like the fast
   path). The reference itself scores 31 candidates per window (zero-padded ones too) on N-5 windows; that
   extrapolation is printed as well ("ref-protocol").
3. max |ΔD| between the fast and naive score matrices on the timed windows (exactness check).

Timing is noisy on shared machines: compare ratios from the same run, not absolute numbers across runs.
Usage: python benchmarks/evaluate.py [--frames 30] [--threads 1,2] [--models teacher,student] [--naive-windows 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from avkd.evaluate.sync import score_clip, score_clip_naive, valid_candidates, window_count
from avkd.models import build_model

MODELS = {"teacher": 512, "student": 200}


def random_clip(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    crops = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
    mel = rng.uniform(-4, 4, (80, 640 * n // 200 + 1)).astype(np.float32)
    return crops, mel


def naive_windows(w: int, count: int) -> list[int]:
    """``count`` windows spread over the clip, edges included (edge windows have fewer valid candidates)."""
    return sorted(set(np.linspace(0, w - 1, count).round().astype(int).tolist()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=30, help="frames per synthetic clip (default 30)")
    parser.add_argument("--clips", type=int, default=1, help="clips timed on the fast path (default 1)")
    parser.add_argument(
        "--naive-windows", type=int, default=3, help="windows timed on the naive path (default 3)"
    )
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (default 1,2)")
    parser.add_argument("--models", default="teacher,student", help="teacher,student (default both)")
    parser.add_argument("--batch-size", type=int, default=512, help="fast-path pairs per fuse batch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    threads = [int(t) for t in args.threads.split(",")]
    names = [m.strip() for m in args.models.split(",")]
    rng = np.random.default_rng(args.seed)
    clips = [random_clip(args.frames, rng) for _ in range(args.clips)]
    w = window_count(args.frames)
    if w < 1:
        parser.error("--frames must be at least 5")
    cands = int(valid_candidates(w).sum())
    timed_rows = naive_windows(w, args.naive_windows)
    print("# sync evaluator: fast (shared front-ends) vs naive (one full forward per window)")
    print(
        f"clip: {args.frames} frames -> W={w} windows, {cands} valid candidates "
        f"(reference protocol: 31 x {w - 1} = {31 * (w - 1)} scored); CPU, random weights; "
        f"naive path timed on windows {timed_rows} and extrapolated per candidate; fast path timed on "
        f"{args.clips} whole clip(s)"
    )
    header = (
        f"{'model':<8} {'thr':>3} {'fast s/clip':>11} {'fast clip/s':>11} {'naive s/clip*':>13} "
        f"{'naive clip/s*':>13} {'ratio':>6} {'ref s/clip*':>11} {'ratio':>6} {'max|dD|':>9}"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        torch.manual_seed(args.seed)
        model = build_model("vocalist", width=MODELS[name]).eval()
        warm = random_clip(6, rng)
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            score_clip(model, *warm)  # warm-up (allocator, oneDNN kernels) outside the timings
            score_clip_naive(model, *warm, windows=[0])

            start = time.perf_counter()
            fast = [score_clip(model, c, m, batch_size=args.batch_size) for c, m in clips]
            fast_s = (time.perf_counter() - start) / len(clips)

            crops, mel = clips[0]
            start = time.perf_counter()
            naive = score_clip_naive(model, crops, mel, windows=timed_rows)
            naive_time = time.perf_counter() - start
            per_cand = naive_time / int(valid_candidates(w)[timed_rows].sum())
            naive_s = per_cand * cands
            ref_s = per_cand * 31 * (w - 1)
            delta = float(np.nanmax(np.abs(fast[0][timed_rows] - naive[timed_rows])))
            print(
                f"{name:<8} {n_threads:>3} {fast_s:>11.2f} {1 / fast_s:>11.4f} {naive_s:>13.1f} "
                f"{1 / naive_s:>13.5f} {naive_s / fast_s:>5.1f}x {ref_s:>11.1f} {ref_s / fast_s:>5.1f}x "
                f"{delta:>9.1e}"
            )
    print(
        "* naive and ref-protocol times are extrapolated from the timed windows at their measured time per "
        "candidate (batches of <= 31 candidates); 'ratio' = extrapolated naive time / measured fast time."
    )


if __name__ == "__main__":
    main()
