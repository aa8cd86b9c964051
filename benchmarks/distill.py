"""Distillation throughput: student training samples/s per method, and the cost of the frozen teacher's pass.

Prints, in one run on the same synthetic features and the real model sizes (VocaLiST teacher 80.1M, MTDVocaLiST
student 13.3M, random weights):
1. student training samples per second for ``bce``, ``fitnets`` and ``mtd`` (all 12 layers, UW-25D), each
   through the stage's own training step (teacher pass + student forward/backward + optimizer step);
2. the teacher pass as avkd runs it (eval, ``torch.inference_mode``, only the internals MTD needs) against the
   straightforward way (autograd on, every internal materialised), and their ratio.

Timing is noisy on shared machines: compare ratios from the same run. Usage:
python benchmarks/distill.py [--batch 8] [--steps 3] [--threads 2] [--lite]
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import tempfile
from pathlib import Path

import torch
from timing import bytes_kept_for_backward, interleaved_medians, median_time

from avkd.data.lrs2.preprocess import LRS2PreprocessConfig, preprocess_lrs2
from avkd.data.lrs2.store import FeatureStore
from avkd.data.lrs2.synthetic import SynthLRS2Config, synthesize_lrs2
from avkd.models.attention import TapRequest
from avkd.models.io import ModelSpec
from avkd.tasks.sync.config import DistillConfig, SyncModelConfig
from avkd.tasks.sync.distill import DistillTask, TeacherTaps
from avkd.train.loop import LoopConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--steps", type=int, default=3, help="timed training steps per method (after one warm-up)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--lite", action="store_true", help="vocalist_lite teacher/student instead of the real sizes"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="avkd-bench-distill-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # the corpus and features it made: tens of MB
    synthesize_lrs2(
        work / "corpus",
        SynthLRS2Config(utterances=8, speakers=3, seed=0, min_seconds=2, max_seconds=2, workers=1),
    )
    art = preprocess_lrs2(
        LRS2PreprocessConfig(splits=["pretrain", "val"]), work / "corpus", work / "feats", show_progress=False
    ).artifact
    store = FeatureStore(art)
    if args.lite:
        teacher_spec = ModelSpec("vocalist_lite", {"width": 64})
        student = SyncModelConfig(name="vocalist_lite", width=32)
    else:
        teacher_spec = ModelSpec("vocalist", {"width": 512})
        student = SyncModelConfig(name="mtdvocalist", width=200)
    teacher = teacher_spec.build().eval()
    print(
        f"# distillation benchmark: teacher {teacher_spec.name} ({sum(p.numel() for p in teacher.parameters()) / 1e6:.1f}M), "
        f"student {student.name} width {student.width}; batch {args.batch}, {args.threads} threads, CPU, random weights"
    )

    print("\n## 1. student training samples per second (teacher pass + student step)")
    steps = {}
    batch = None
    for method in ("bce", "fitnets", "mtd"):
        config = DistillConfig(
            method=method,
            student=student,
            loop=LoopConfig(batch_size=args.batch, device="cpu"),
            samples_per_epoch=args.batch,
            val_samples=args.batch,
            monitor_losses=False,
        ).resolved()
        task = DistillTask(config, teacher, teacher_spec, store)
        params = [p for g in task.param_groups() for p in g["params"]]
        optimizer = torch.optim.Adam(params, lr=1e-5)
        batch = next(iter(torch.utils.data.DataLoader(task.train, batch_size=args.batch)))
        task.student.train()

        def step(task=task, optimizer=optimizer, batch=batch) -> None:
            loss, _ = task.loss(batch, torch.device("cpu"))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        step()  # warm-up
        steps[f"{method} ({config.weighting})"] = step
    for name, seconds in interleaved_medians(steps, args.steps).items():
        print(
            f"{name:>18}: {args.batch / seconds:7.2f} samples/s ({seconds:.2f} s per step, median of {args.steps})"
        )

    print("\n## 2. the frozen teacher's pass per batch")
    video, mel, _ = batch
    mtd_taps = DistillTask(
        DistillConfig(
            method="mtd",
            student=student,
            loop=LoopConfig(batch_size=args.batch, device="cpu"),
            samples_per_epoch=args.batch,
            val_samples=args.batch,
            monitor_losses=False,
        ).resolved(),
        teacher,
        teacher_spec,
        store,
    ).taps
    ours = TeacherTaps(teacher, mtd_taps)
    fast = median_time(lambda: ours(video, mel), args.steps)
    teacher.requires_grad_(True)

    def straightforward() -> None:
        with torch.enable_grad():
            out = teacher(video, mel, taps=TapRequest("*"))
            assert out.logits.requires_grad  # the graph and every internal are kept, as a naive loop would

    slow = median_time(straightforward, args.steps)
    kept = bytes_kept_for_backward(straightforward)
    print(f"avkd (inference_mode, {len(mtd_taps)} taps): {fast:.3f} s per batch, 0 MB kept for backward")
    print(
        f"straightforward (autograd on, every internal): {slow:.3f} s per batch, "
        f"{kept / 1e6:.0f} MB of activations kept for backward"
    )
    print(f"time ratio: {slow / fast:.2f}x")


if __name__ == "__main__":
    main()
