"""MFH simulation: avkd's vectorised experiments against the straightforward per-run loop, measured in one run.

Prints, for each experiment of ``avkd mfh simulate`` (exp1, exp2, table2) at the default sizes:
1. the seconds of avkd's engine (``avkd.mfh.linear``: every model of the experiment trained together, batched
   matmuls over runs, settings and channel modes; Algorithm 1's salience as one broadcast per run);
2. the seconds of the straightforward engine (``avkd.mfh.naive``: one ``nn.Linear`` + autograd + ``optim.SGD``
   per problem, the salience by permuting a copy of the input per repeat and channel), on the same data,
   initial weights and permutations;
3. their ratio, and the largest difference between the two engines' per-run accuracies (points).

The straightforward engine is what the official scripts do less their evaluation at every epoch, which makes them
slower still. Timing is noisy on shared machines: compare ratios from the same run. Usage:
python benchmarks/mfh.py [--runs 10] [--threads 1] [--experiments exp1,exp2,table2] [--small]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from avkd.mfh.naive import NaiveEngine
from avkd.mfh.simulate import EXPERIMENTS, VECTORISED, SimulateConfig, run_simulation


def _max_difference(ours: dict, loop: dict) -> float:
    worst = 0.0
    for mine, theirs in zip(ours["rows"], loop["rows"], strict=True):
        for key, values in mine["runs"].items():
            if key.endswith("_channels"):
                continue
            worst = max(worst, *(abs(a - b) for a, b in zip(values, theirs["runs"][key], strict=True)))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS))
    parser.add_argument(
        "--small", action="store_true", help="toy sizes (50 epochs, 60 samples, 3 permutations): a smoke run"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    small = {"n_train": 60, "n_test": 200, "epochs": 50, "permutations": 3, "joint_epochs": 50, "cs": [5, 30]}
    config = SimulateConfig(
        runs=args.runs,
        experiments=[e.strip() for e in args.experiments.split(",") if e.strip()],
        **(small if args.small else {}),
    )
    print(
        f"# MFH simulation benchmark: {config.runs} runs, {config.epochs} epochs, {config.n_train} training "
        f"samples, {config.permutations} permutations, {args.threads} thread(s), CPU"
    )
    totals = {"vectorised": 0.0, "loop": 0.0}
    for name in config.experiments:
        one = dataclasses.replace(config, experiments=[name])
        start = time.perf_counter()
        ours = run_simulation(one, VECTORISED)
        fast = time.perf_counter() - start
        start = time.perf_counter()
        loop = run_simulation(one, NaiveEngine())
        slow = time.perf_counter() - start
        totals["vectorised"] += fast
        totals["loop"] += slow
        settings = len(ours[name]["rows"])
        print(
            f"{name} ({settings} settings x {config.runs} runs): vectorised {fast:.3f} s, per-run loop "
            f"{slow:.3f} s, ratio: {slow / fast:.1f}x; max |accuracy difference| "
            f"{_max_difference(ours[name], loop[name]):.2f} points"
        )
    print(
        f"total: vectorised {totals['vectorised']:.3f} s, per-run loop {totals['loop']:.3f} s, ratio: "
        f"{totals['loop'] / totals['vectorised']:.1f}x"
    )


if __name__ == "__main__":
    main()
