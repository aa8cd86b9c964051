"""Data-parallel training on this machine: samples/s of one process against two gloo processes, and the share of a
two-process step spent on the gradient all-reduce.

Each case trains the sync demo's teacher (``vocalist_lite`` width 64, 5-frame windows) for ``--steps`` steps of one
global batch (``--batch``, split over the processes as avkd's loop splits it) under ``DistributedDataParallel``,
as ``avkd train`` does under ``torchrun``. Cases:

* 1 process, 1 thread; 1 process, ``--threads`` threads (the whole machine in one process);
* ``--procs`` processes of 1 thread each (the whole machine in processes), timed with the all-reduce and again
  inside ``no_sync()`` (no communication): the difference is the communication share of a step.

The ratio that matters is ``--procs`` processes against one process with as many threads (the same cores). On a
CPU, small models scale poorly in threads, so processes can win; on GPUs the share of the all-reduce is what
limits scaling (the README's table gives the expected figures for the real model sizes).

Usage: python benchmarks/ddp.py [--steps 20] [--batch 32] [--procs 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from avkd.models.registry import build_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batch(size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(size, 15, 48, 96, generator=g)
    mel = torch.randn(size, 1, 80, 16, generator=g)
    label = (torch.rand(size, generator=g) < 0.5).float()
    return video, mel, label


def worker(rank: int, procs: int, port: int, steps: int, batch: int, threads: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(procs))
    torch.set_num_threads(threads)
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = build_model("vocalist_lite", width=64, channels=[8, 16, 32, 32, 64])
    ddp = torch.nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    video, mel, label = _batch(batch // procs, rank)

    def step() -> None:
        loss = F.binary_cross_entropy_with_logits(ddp(video, mel), label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def timed(no_sync: bool) -> float:
        for _ in range(2):  # warm-up
            step()
        dist.barrier()
        start = time.perf_counter()
        for _ in range(steps):
            if no_sync:
                with ddp.no_sync():
                    step()
            else:
                step()
        dist.barrier()
        return (time.perf_counter() - start) / steps

    result = {"sync": timed(False)}
    if procs > 1:
        result["no_sync"] = timed(True)
    result["parameters"] = sum(p.numel() for p in model.parameters())
    if rank == 0:
        Path(out).write_text(json.dumps(result))
    dist.destroy_process_group()


def run(procs: int, threads: int, steps: int, batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        mp.start_processes(
            worker,
            args=(procs, _free_port(), steps, batch, threads, str(out)),
            nprocs=procs,
            start_method="spawn",
        )
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32, help="global batch")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="threads of the one-process comparison")
    args = parser.parse_args()
    if args.batch % args.procs:
        parser.error(f"--batch {args.batch} must split evenly over --procs {args.procs}")

    one = run(1, 1, args.steps, args.batch)
    wide = run(1, args.threads, args.steps, args.batch)
    many = run(args.procs, 1, args.steps, args.batch)
    rate = {name: args.batch / r["sync"] for name, r in (("one", one), ("wide", wide), ("many", many))}
    comm = max(0.0, 1.0 - many["no_sync"] / many["sync"])
    grad_mb = one["parameters"] * 4 / 1e6

    print(
        f"vocalist_lite width 64 ({one['parameters']:,} parameters, {grad_mb:.1f} MB of fp32 gradients a step)"
    )
    print(f"global batch {args.batch}, {args.steps} timed steps after 2 warm-up steps, gloo on the CPU")
    print()
    print("| processes x threads | s/step | samples/s | vs 1 x 1 |")
    print("|---|---|---|---|")
    print(f"| 1 x 1 | {one['sync']:.4f} | {rate['one']:.1f} | 1.00x |")
    print(
        f"| 1 x {args.threads} | {wide['sync']:.4f} | {rate['wide']:.1f} | {rate['wide'] / rate['one']:.2f}x |"
    )
    print(
        f"| {args.procs} x 1 | {many['sync']:.4f} | {rate['many']:.1f} | {rate['many'] / rate['one']:.2f}x |"
    )
    print()
    print(
        f"{args.procs} processes against 1 process x {args.threads} threads (the same cores): "
        f"{rate['many'] / rate['wide']:.2f}x"
    )
    print(
        f"communication share of a {args.procs}-process step: {100 * comm:.1f}% "
        f"({many['sync']:.4f} s with the all-reduce, {many['no_sync']:.4f} s without)"
    )


if __name__ == "__main__":
    main()
