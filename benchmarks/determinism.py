"""What ``--deterministic`` costs: training steps of the demo models with deterministic kernels against without.

Prints, for the sync demo's teacher (``vocalist_lite`` width 64) and the emotion demo's MulT (d = 20), the
seconds per training step (forward, loss, backward, Adam) with :func:`avkd.train.determinism.deterministic_mode`
on and off, timed in interleaved rounds in one run, and their ratio; then whether two deterministic runs of the
same steps from the same seed end with identical weights (they must), and whether two default runs do.

Timing is noisy on shared machines: compare the ratio, not the seconds. On CUDA (``--device cuda``) the cost
is cuDNN's deterministic algorithms and cuBLAS's workspace; on the CPU it is oneDNN's.

Usage: python benchmarks/determinism.py [--batch 32] [--rounds 7] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F
from timing import interleaved_medians

from avkd.models.registry import build_model
from avkd.train.determinism import deterministic_mode


def sync_case(batch: int, device: torch.device) -> tuple[Callable[[], torch.nn.Module], Callable]:
    """The sync demo's teacher and one of its training steps on random (video, mel, label) batches."""
    g = torch.Generator().manual_seed(0)
    video = torch.rand(batch, 15, 48, 96, generator=g).to(device)
    mel = torch.randn(batch, 1, 80, 16, generator=g).to(device)
    label = (torch.rand(batch, generator=g) < 0.5).float().to(device)

    def make() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model("vocalist_lite", width=64, channels=[8, 16, 32, 32, 64]).to(device)

    def loss(model: torch.nn.Module) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(model(video, mel), label)

    return make, loss


def emotion_case(batch: int, device: torch.device) -> tuple[Callable[[], torch.nn.Module], Callable]:
    """The emotion demo's MulT teacher (d = 20, 2 layers) and one 7-way cross-entropy training step."""
    g = torch.Generator().manual_seed(0)
    text = torch.randn(batch, 6, 300, generator=g).to(device)
    audio = torch.randn(batch, 60, 74, generator=g).to(device)
    vision = torch.randn(batch, 60, 35, generator=g).to(device)
    target = torch.randint(0, 7, (batch,), generator=g).to(device)

    def make() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model("mult", branch="complete", output_dim=7, d=20, num_heads=5, layers=2).to(device)

    def loss(model: torch.nn.Module) -> torch.Tensor:
        return F.cross_entropy(model(text, audio, vision), target)

    return make, loss


def trainer(
    make: Callable[[], torch.nn.Module], loss: Callable
) -> tuple[torch.nn.Module, Callable[[], None]]:
    model = make()
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss(model).backward()
        optimizer.step()

    return model, step


def steps_under(deterministic: bool, step: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        with deterministic_mode(deterministic):
            step()

    return run


def same_weights(make: Callable, loss: Callable, deterministic: bool, steps: int) -> bool:
    """Whether two runs of ``steps`` training steps from the same seed end with bit-identical weights."""
    finals = []
    for _ in range(2):
        model, step = trainer(make, loss)
        with deterministic_mode(deterministic):
            for _ in range(steps):
                step()
        finals.append([p.detach().clone() for p in model.parameters()])
    return all(torch.equal(a, b) for a, b in zip(*finals, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--check-steps", type=int, default=5, help="steps of the identical-weights check")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"# deterministic kernels: cost per training step ({args.device}, {args.threads} threads)")
    for name, case in (("sync demo teacher", sync_case), ("emotion demo MulT", emotion_case)):
        make, loss = case(args.batch, device)
        _, default_step = trainer(make, loss)
        _, det_step = trainer(make, loss)
        default_step(), det_step()  # warm-up: first-call allocations and kernel selection
        times = interleaved_medians(
            {"default": steps_under(False, default_step), "deterministic": steps_under(True, det_step)},
            args.rounds,
        )
        ratio = times["deterministic"] / times["default"]
        print(
            f"{name} (batch {args.batch}): default {times['default']:.4f} s per step, "
            f"deterministic {times['deterministic']:.4f} s per step, cost ratio: {ratio:.2f}x"
        )
        for mode in (True, False):
            same = same_weights(make, loss, mode, args.check_steps)
            label = "deterministic" if mode else "default"
            print(
                f"  {label}: two runs of {args.check_steps} steps give identical weights: {'yes' if same else 'no'}"
            )


if __name__ == "__main__":
    main()
