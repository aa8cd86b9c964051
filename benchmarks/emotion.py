"""Emotion track: ingest speed, segment reads and memory, and distillation throughput at CMU-MOSEI sizes.

Prints, in one run on a synthetic corpus (real MOSEI lengths 50 / 500 / 500 and dims 300 / 74 / 35):
1. ingest segments per second from the SDK ``.csd`` files and from the MulT pickle;
2. random segment reads per second: ``MoseiDataset`` (one open HDF5 handle per process) against the
   straightforward way (open the file for every read) and against MulT's way (the whole pickle in RAM), with
   what each holds in memory, and the RAM MulT's way needs for the real train split (16,326 segments);
3. student training samples per second per method (none, crd-final, crd-attention, edam-s, edam-t) through
   the stage's own step, MulT teacher at the reference size (d = 30, 5 heads, 5 layers; 1,074,817 parameters);
4. the frozen teacher's pass for EDAM-S as avkd runs it (``no_grad``, only the maps the loss reads) against the
   straightforward way (autograd on, every internal kept), with the activations the latter keeps.

Timing is noisy on shared machines: compare ratios from the same run. Usage:
python benchmarks/emotion.py [--batch 24] [--steps 3] [--threads 2] [--reads 2000] [--small]
"""

from __future__ import annotations

import argparse
import atexit
import pickle
import shutil
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from timing import bytes_kept_for_backward, interleaved_medians, median_time

from avkd.data.mosei.dataset import MoseiDataset
from avkd.data.mosei.format import FEATURES
from avkd.data.mosei.ingest import MoseiIngestConfig, ingest_mosei
from avkd.data.mosei.synthetic import SynthMoseiConfig, synthesize_mosei
from avkd.models.attention import Tapped, TapRequest
from avkd.models.io import ModelSpec
from avkd.tasks.emotion.config import EmotionDistillConfig
from avkd.tasks.emotion.distill import EmotionDistillTask
from avkd.train.loop import LoopConfig

#: MulT train split size of the real unaligned pickle (docs/reference/mult-mosei.md §2.1, third-party count).
REAL_TRAIN_SEGMENTS = 16_326


def bench_ingest(work: Path, videos: int) -> Path:
    print("## 1. ingest")
    synth = SynthMoseiConfig(train_videos=videos, val_videos=videos // 6, test_videos=videos // 3, seed=0)
    synthesize_mosei(work / "csd", synth, pickle_path=work / "mosei.pkl")
    paths = {}
    for name, src in (("csd", work / "csd"), ("pickle", work / "mosei.pkl")):
        start = time.perf_counter()
        art = ingest_mosei(MoseiIngestConfig(), src, work / f"feats-{name}")
        seconds = time.perf_counter() - start
        n = art.metrics["segments"]
        print(f"{name:>7}: {n} segments in {seconds:.2f} s = {n / seconds:.0f} segments/s")
        paths[name] = art.path
    return paths["csd"]


def bench_reads(features: Path, pkl: Path, reads: int) -> None:
    print("\n## 2. random segment reads (train split)")
    dataset = MoseiDataset(features, "train")
    n = len(dataset)
    order = np.random.default_rng(0).integers(0, n, size=reads)

    def ours() -> None:
        for i in order:
            dataset[int(i)]

    path = features / FEATURES

    def reopen() -> None:
        for i in order:
            with h5py.File(path, "r") as h5:
                group = h5["train"]
                (group["text"][i], group["audio"][i], group["vision"][i], group["label"][i])

    with open(pkl, "rb") as handle:
        in_ram = pickle.load(handle)["train"]

    def mult_way() -> None:
        for i in order:
            (in_ram["text"][i], in_ram["audio"][i], in_ram["vision"][i], in_ram["labels"][i])

    ours()  # warm the page cache and the handle
    t_ours, t_reopen, t_ram = (median_time(fn, 3) for fn in (ours, reopen, mult_way))
    per_segment = sum(in_ram[m][0].nbytes for m in ("text", "audio", "vision"))
    print(
        f"MoseiDataset (one handle): {reads / t_ours:8.0f} reads/s, holds one segment ({per_segment / 1e3:.0f} kB)"
    )
    print(
        f"open per read            : {reads / t_reopen:8.0f} reads/s -> ours is {t_reopen / t_ours:.1f}x faster"
    )
    print(
        f"whole pickle in RAM      : {reads / t_ram:8.0f} reads/s (numpy views), holds {n * per_segment / 1e6:.0f} MB here and "
        f"{REAL_TRAIN_SEGMENTS * per_segment / 1e9:.2f} GB for the real train split (per DataLoader worker "
        f"that copies it)"
    )


def bench_distill(features: Path, batch_size: int, steps: int, mult_kwargs: dict) -> None:
    print(f"\n## 3. student training samples per second (batch {batch_size}, MOSEI lengths 50 / 500 / 500)")
    teacher_spec = ModelSpec("mult", {"branch": "complete", "output_dim": 7, **mult_kwargs})
    teacher = teacher_spec.build().eval()
    print(
        f"teacher: MulT complete, {sum(p.numel() for p in teacher.parameters()):,} parameters (random weights)"
    )
    from avkd.core.artifacts import load_artifact

    art = load_artifact(features)
    runs = {}
    batch = None
    for method in ("none", "crd-final", "crd-attention", "edam-s", "edam-t"):
        config = EmotionDistillConfig(
            method=method, config_id=5, nce_k=256, loop=LoopConfig(batch_size=batch_size)
        )
        task = EmotionDistillTask(config, teacher, art)
        params = [p for g in task.param_groups() for p in g["params"]]
        optimizer = torch.optim.Adam(params, lr=1e-4)
        batch = next(iter(torch.utils.data.DataLoader(task.train, batch_size=batch_size)))
        task.student.train()

        def step(task=task, optimizer=optimizer, batch=batch) -> None:
            loss, _ = task.loss(batch, torch.device("cpu"))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        step()  # warm-up
        runs[method] = (step, sum(p.numel() for p in task.student.parameters()), task)
    medians = interleaved_medians({name: step for name, (step, _, _) in runs.items()}, steps)
    for name, seconds in medians.items():
        print(
            f"{name:>14}: {batch_size / seconds:6.1f} samples/s ({seconds:.2f} s per step; student "
            f"{runs[name][1]:,} parameters)"
        )

    print("\n## 4. the frozen teacher's pass per batch, EDAM-S")
    task = runs["edam-s"][2]
    request = task.loss_fn.tap_request()
    text, audio, vision = batch[0], batch[1], batch[2]

    def ours() -> Tapped:
        with torch.no_grad():
            return teacher(text, audio, vision, taps=request)

    fast = median_time(ours, steps)
    teacher.requires_grad_(True)

    def straightforward() -> None:
        with torch.enable_grad():
            out = teacher(text, audio, vision, taps=TapRequest("*"))
            assert out.logits.requires_grad

    slow = median_time(straightforward, steps)
    kept = bytes_kept_for_backward(straightforward)
    maps = sum(t.numel() * t.element_size() for t in ours().taps.values())
    print(
        f"avkd (no_grad, {len(request.patterns)} maps): {fast:.3f} s per batch, {maps / 1e6:.0f} MB of maps, "
        "0 MB kept for backward"
    )
    print(
        f"straightforward (autograd on, every internal): {slow:.3f} s per batch, "
        f"{kept / 1e6:.0f} MB of activations kept for backward"
    )
    print(f"time ratio: {slow / fast:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--steps", type=int, default=3, help="timed repeats (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument(
        "--small", action="store_true", help="a seconds-long smoke run: few videos, MulT d=10 with 1 layer"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="avkd-bench-emotion-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # the corpus and features it made: tens of MB
    print(f"# emotion benchmark: {args.threads} threads, CPU; work folder {work}\n")
    if args.small:
        args.batch, args.steps, args.reads = min(args.batch, 4), 1, min(args.reads, 100)
    features = bench_ingest(work, 12 if args.small else 60)
    bench_reads(features, work / "mosei.pkl", args.reads)
    bench_distill(features, args.batch, args.steps, {"d": 10, "layers": 1} if args.small else {})


if __name__ == "__main__":
    main()
