"""AVSiam pre-training: packed multi-ratio masking against padding, one shared encoder against two towers, and
pre-training samples/s, measured in one run at the toy and ``s`` sizes on random inputs and random weights.

Prints:

1. **Packed multi-ratio masking vs padding.** The contrastive pass (F_a, F_v under the released ratios
   {0, .2, .4, .6, .8}, the symmetric InfoNCE, backward) three ways, on the same batch:

   * *packed* (avkd, :meth:`AVSiam.multi_ratio_features`): every sample of a ratio keeps ``int(L·(1 − r))``
     tokens, so the samples of one kept count stack into a sub-batch of their own, with no padding
     (docs/reference/avsiam-mfh-syncnet.md §1.5, the released ``forward_encoder_mmixed``);
   * *padded* (the straightforward batching, written here as the baseline): each sample keeps its own tokens
     (the same masks), every sample is padded to the longest kept count (ratio 0: all L tokens) in **one** batch,
     attention ignores the padding through a key-padding mask, and the pooling is a masked mean;
   * *one sample at a time*: a Python loop, one sub-batch of one per sample (no padding, no batching); not timed
     when the batch is no larger than the ratio set (every packed sub-batch then holds one sample: it is the
     packed way itself).

   Before timing, the three give the pooled features of the same masks (the generator is replayed) and must agree
   within ``TOLERANCE`` (float32, autocast off; padding changes only summation order and the attention kernel,
   so the differences are rounding). Samples/s are the batch over the median seconds per step; "packed is
   N.NNx faster" is the baseline's seconds over packed's, from the same interleaved rounds. The tokens each way
   sends through the encoder are printed too: the ratio of the token counts (and of Σk² for attention) is what
   the time ratio approaches when the blocks' arithmetic dominates.
2. **Shared vs separate encoders.** AVSiam (one set of block weights for both modalities, LayerNorms per
   modality) against the same architecture with a separate copy of the blocks for audio (*two towers*, built
   here by deep-copying the blocks, each tower keeping only its own modality's LayerNorms; the released
   reconstruction pass runs audio through such a copy, ``ast_base``, §1.6). Parameters of each and their
   ratio, and the peak memory of two full pre-training steps (forward, backward, Adam step; the second is the
   steady state, with Adam's moments held through its backward), each variant in a fresh process and counted
   from right before the model is built (so it covers the weights, the random batch, gradients, Adam's moments
   and activations): on CUDA ``torch.cuda.max_memory_allocated`` (what torch's allocator hands out); on the
   CPU the process's peak resident memory (``VmHWM``, reset through ``/proc/self/clear_refs`` right before the
   model is built) minus its resident memory then. ``tracemalloc`` would not see torch's allocations, and
   torch's CPU memory profiler slows the step and leaves out oneDNN's workspaces; peak RSS is what the machine
   must provide, at the cost of counting allocator slack, so at the toy size (tens of MB) the figures are rough.
3. **Pre-training samples/s.** One step as ``avkd pretrain --method avsiam`` takes it
   (:class:`~avkd.tasks.avsiam.pretrain.AVSiamPretrainTask`'s own ``loss`` and ``param_groups``: multi-ratio
   contrastive + masked reconstruction at 0.75, summed; backward; Adam with the stage's lr, betas and weight
   decay; AMP and the grad scaler on CUDA as the training loop sets them), on random fbanks and frames.

The task is built without its clips artifact (the inputs are random tensors of the size's shapes), so the step
is the stage's loss and optimiser without its data loader. Timing is noisy on shared machines: compare ratios
from the same run, not absolute numbers across runs. One torch thread by default: on a loaded 2-core machine a
2-thread team waits for its second thread at every operator (measured here: about 12 ms per operator, whatever
its size, at load average 8), which penalises whichever way makes more operator calls (packing: one sub-batch
per kept count) and measures the scheduler rather than the arithmetic; use ``--threads 2`` on an idle machine.
``--small`` is the test suite's seconds-long run (toy size, small batches). Usage:
python benchmarks/avsiam.py [--sizes toy,s] [--device cpu|cuda] [--threads 1] [--rounds 3] [--batch N] [--small]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from timing import interleaved_medians
from torch import Tensor, nn

from avkd.losses.avsiam import ContrastiveLoss, ReconstructionLoss
from avkd.models import build_model
from avkd.models.avsiam import AVSiam
from avkd.models.device import amp_dtype, autocast
from avkd.models.masking import RELEASED_RATIOS, MaskGroup, keep_count, multi_ratio_groups, resolve_ratios
from avkd.tasks.avsiam.config import AVSiamPretrainConfig
from avkd.tasks.avsiam.pretrain import AVSiamPretrainTask

#: Largest |difference| allowed between the packed, padded and per-sample pooled features (float32; the
#: features come out of a LayerNorm and a mean, so they are O(1) and this is far above rounding, far below
#: what another mask or a bug in the padding gives, about 1e-1).
TOLERANCE = 1e-4

#: Per size: batch of the masking comparison, of the memory probe, of the pre-training step, and the timed
#: rounds (one untimed warm-up first). ``s`` keeps to a few samples: one s step takes seconds on a 2-core CPU.
SETTINGS = {
    "toy": {"mask_batch": 20, "memory_batch": 4, "pretrain_batch": 16, "rounds": 5},
    "s": {"mask_batch": 5, "memory_batch": 2, "pretrain_batch": 2, "rounds": 1},
}
SMALL = {"toy": {"mask_batch": 10, "memory_batch": 2, "pretrain_batch": 4, "rounds": 1}}


def machine(device: torch.device, threads: int) -> str:
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return (
        f"{where}, {threads} torch thread(s) of {os.cpu_count()} CPUs, load average {load} (1/5/15 min), "
        f"torch {torch.__version__}"
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_inputs(model: AVSiam, batch: int, device: torch.device, seed: int) -> tuple[Tensor, Tensor]:
    """Random fbanks (B, 1, F, T) and frames (B, 3, S, S) of the model's size (normal: both are normalised)."""
    g = torch.Generator().manual_seed(seed)
    audio = torch.randn(batch, 1, *model.cfg.audio_size, generator=g)
    video = torch.randn(batch, 3, model.cfg.image_size, model.cfg.image_size, generator=g)
    return audio.to(device), video.to(device)


# ------------------------------------------------------------------------------------- 1. masking ways


def draw_groups(
    model: AVSiam,
    batch: int,
    ratios: tuple[float, ...],
    generator: torch.Generator | None,
    device: torch.device,
) -> tuple[list[MaskGroup], list[MaskGroup]]:
    """The masks :meth:`AVSiam.multi_ratio_features` draws, in its order (audio structured, then video), so that a
    generator seeded alike replays them."""
    num_a, num_v = model.num_tokens
    groups_a = multi_ratio_groups(batch, num_a, ratios, grid=model.grid_a, generator=generator, device=device)
    groups_v = multi_ratio_groups(batch, num_v, ratios, generator=generator, device=device)
    return groups_a, groups_v


def _padded_block(blk: nn.Module, x: Tensor, modality: str, attend: Tensor) -> Tensor:
    """One shared block with a key-padding mask (``attend`` (B, 1, 1, K): True on real tokens)."""
    norm1, norm2 = (blk.norm1_a, blk.norm2_a) if modality == "a" else (blk.norm1_v, blk.norm2_v)
    attn = blk.attn
    b, n, d = x.shape
    q, k, v = attn.qkv(norm1(x)).reshape(b, n, 3, attn.num_heads, d // attn.num_heads).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
    x = x + attn.proj(out.transpose(1, 2).reshape(b, n, d))
    return x + blk.mlp(norm2(x))


def padded_features(model: AVSiam, x: Tensor, modality: str, groups: list[MaskGroup]) -> Tensor:
    """The straightforward batching: each sample's own kept tokens, padded with zeros to the longest kept count,
    one batch through the blocks with a key-padding mask, then the mean over the real tokens → (B, d)."""
    e = model.embed(x, modality)
    b, _, d = e.shape
    longest = max(g.keep.size(1) for g in groups)
    index = torch.zeros(b, longest, dtype=torch.long, device=e.device)
    real = torch.zeros(b, longest, dtype=torch.bool, device=e.device)
    for g in groups:
        index[g.rows, : g.keep.size(1)] = g.keep
        real[g.rows, : g.keep.size(1)] = True
    h = torch.gather(e, 1, index[..., None].expand(-1, -1, d)) * real[..., None]
    attend = real[:, None, None, :]
    for blk in model.blocks:
        h = _padded_block(blk, h, modality, attend)
    h = (model.norm_a if modality == "a" else model.norm_v)(h)
    return (h * real[..., None]).sum(dim=1) / real.sum(dim=1, keepdim=True)


def looped_features(model: AVSiam, x: Tensor, modality: str, groups: list[MaskGroup]) -> Tensor:
    """One sub-batch of one sample at a time (no padding, no batching) → (B, d) in batch order."""
    e = model.embed(x, modality)
    feats = [torch.empty(0)] * e.size(0)
    for g in groups:
        for j, row in enumerate(g.rows.tolist()):
            feats[row] = model.encode_tokens(e[row : row + 1], modality, g.keep[j : j + 1]).mean(dim=1)[0]
    return torch.stack(feats)


WAYS: dict[str, Callable[[AVSiam, Tensor, str, list[MaskGroup]], Tensor]] = {
    "padded": padded_features,
    "loop": looped_features,
}
LABELS = {"packed": "packed (avkd)", "padded": "padded to the longest", "loop": "one sample at a time"}


def check_same_features(
    model: AVSiam, audio: Tensor, video: Tensor, ratios: tuple[float, ...], seed: int
) -> dict[str, float]:
    """Max |difference| of each baseline's (F_a, F_v) from avkd's packed ones, on the same masks (replayed)."""
    device = audio.device
    with torch.no_grad():
        packed = model.multi_ratio_features(
            audio, video, ratios, generator=torch.Generator(device=device).manual_seed(seed)
        )
        groups_a, groups_v = draw_groups(
            model, audio.size(0), ratios, torch.Generator(device=device).manual_seed(seed), device
        )
        out = {}
        for name, way in WAYS.items():
            theirs = (way(model, audio, "a", groups_a), way(model, video, "v", groups_v))
            out[name] = max(float((p - t).abs().max()) for p, t in zip(packed, theirs, strict=True))
    return out


def contrastive_steps(
    model: AVSiam, audio: Tensor, video: Tensor, ratios: tuple[float, ...], use_amp: bool
) -> dict[str, Callable[[], None]]:
    """Forward + backward of the contrastive pass, each way; masks drawn inside the step (global RNG) each way."""
    device = audio.device
    loss = ContrastiveLoss()

    def run(features: Callable[[], tuple[Tensor, Tensor]]) -> Callable[[], None]:
        def step() -> None:
            model.zero_grad(set_to_none=True)
            with autocast(device, use_amp):
                term = loss(*features())["contrastive"]
            term.backward()
            sync(device)

        return step

    def baseline(way: Callable[[AVSiam, Tensor, str, list[MaskGroup]], Tensor]) -> Callable[[], None]:
        def features() -> tuple[Tensor, Tensor]:
            groups_a, groups_v = draw_groups(model, audio.size(0), ratios, None, device)
            return way(model, audio, "a", groups_a), way(model, video, "v", groups_v)

        return run(features)

    steps = {"packed": run(lambda: model.multi_ratio_features(audio, video, ratios))}
    steps.update({name: baseline(way) for name, way in WAYS.items()})
    return steps


def token_counts(num_tokens: int, batch: int, ratios: tuple[float, ...]) -> tuple[int, int, int, int]:
    """(packed tokens, padded tokens, packed Σk², padded Σk²) for one modality when the ratios are dealt evenly
    (:func:`~avkd.models.masking.assign_ratios`; the remainder's ratios vary, so the first ones are taken)."""
    keeps = [keep_count(num_tokens, ratios[i % len(ratios)]) for i in range(batch)]
    longest = max(keeps)
    return sum(keeps), batch * longest, sum(k * k for k in keeps), batch * longest * longest


def bench_masking(size: str, batch: int, rounds: int, device: torch.device, use_amp: bool) -> None:
    ratios = resolve_ratios(RELEASED_RATIOS)
    torch.manual_seed(0)
    model = build_model("avsiam", size=size, decoder=False).to(device).train()
    audio, video = random_inputs(model, batch, device, seed=1)
    num_a, num_v = model.num_tokens
    kept = {
        m: "/".join(str(keep_count(n, r)) for r in ratios) for m, n in (("audio", num_a), ("video", num_v))
    }
    print(
        f"\n{size} (batch {batch}, ratios {'/'.join(f'{r:g}' for r in ratios)}; tokens kept: audio {num_a} -> "
        f"{kept['audio']}, video {num_v} -> {kept['video']}):"
    )
    counts = [token_counts(n, batch, ratios) for n in (num_a, num_v)]
    tokens = [sum(c[i] for c in counts) for i in range(4)]
    print(
        f"  tokens through the encoder per batch: packed {tokens[0]:,}, padded {tokens[1]:,} "
        f"({tokens[1] / tokens[0]:.2f}x); attention sum of k^2: packed {tokens[2]:,}, padded {tokens[3]:,} "
        f"({tokens[3] / tokens[2]:.2f}x)"
    )
    diffs = check_same_features(model, audio, video, ratios, seed=2)
    for name, diff in diffs.items():
        verdict = "same" if diff <= TOLERANCE else "DIFFERENT"
        print(
            f"  same masks, max |F(packed) - F({name})| over F_a, F_v: {diff:.1e} "
            f"(tolerance {TOLERANCE:.0e}): {verdict}"
        )
        if diff > TOLERANCE:
            raise SystemExit(f"{size}: the {name} baseline does not give the packed features; no timing")
    steps = contrastive_steps(model, audio, video, ratios, use_amp)
    if batch <= len(ratios):
        # Every sub-batch holds one sample: packing is then the loop itself, so it is not timed twice.
        del steps["loop"]
        print(f"  {LABELS['loop']:>21}: the packed way itself at this batch (one sample per kept count)")
    for step in steps.values():
        step()  # warm-up: allocator, kernels
    seconds = interleaved_medians(steps, rounds)
    packed = seconds["packed"]
    for name, s in seconds.items():
        line = f"  {LABELS[name]:>21}: {batch / s:8.2f} samples/s ({s:.3f} s per step, median of {rounds})"
        if name != "packed":
            line += f" -> packed is {s / packed:.2f}x faster"
        print(line)


# ------------------------------------------------------------------------------ 2. and 3. pre-training


class TwoTowers(AVSiam):
    """AVSiam with a separate copy of the encoder blocks for audio (the baseline of section 2): ``blocks`` serve
    video only, ``blocks_a`` (a deep copy, trained on its own) audio only; each tower keeps only its own
    modality's LayerNorms. Everything else (patch embeddings, fusion, heads, decoder) is AVSiam's."""

    def __init__(self, size: str) -> None:
        super().__init__(size=size)
        self.blocks_a = copy.deepcopy(self.blocks)
        for blk in self.blocks_a:
            del blk.norm1_v, blk.norm2_v
        for blk in self.blocks:
            del blk.norm1_a, blk.norm2_a

    def encode_tokens(
        self, x: Tensor, modality: str, keep: Tensor | None = None, rec: object = None
    ) -> Tensor:
        if keep is not None:
            x = torch.gather(x, 1, keep[..., None].expand(-1, -1, x.size(-1)))
        for blk in self.blocks_a if modality == "a" else self.blocks:
            x = blk(x, modality)
        return (self.norm_a if modality == "a" else self.norm_v)(x)


def build_variant(variant: str, size: str) -> AVSiam:
    return build_model("avsiam", size=size) if variant == "shared" else TwoTowers(size)


def pretrain_step(model: AVSiam, batch: int, device: torch.device, use_amp: bool) -> Callable[[], None]:
    """One pre-training step of ``avkd pretrain --method avsiam`` on random inputs (see the module docstring)."""
    config = AVSiamPretrainConfig(size=model.size)
    task = AVSiamPretrainTask.__new__(AVSiamPretrainTask)  # the stage's task, without its clips artifact
    task.config, task.model, task.ratios = config, model, resolve_ratios(config.ratios)
    task.contrastive = ContrastiveLoss(config.temperature)
    task.reconstruction = ReconstructionLoss(config.norm_pix)
    loop = config.loop
    optimizer = torch.optim.Adam(task.param_groups(), lr=loop.lr, weight_decay=loop.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype() == torch.float16)
    audio, video = random_inputs(model, batch, device, seed=3)
    data = (audio, video, torch.zeros(batch, dtype=torch.long))

    def step() -> None:
        with autocast(device, use_amp):
            loss, _ = task.loss(data, device)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        sync(device)

    return step


def _resident_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_probe(variant: str, size: str, batch: int, device: torch.device, use_amp: bool) -> dict:
    """Run in a fresh process: build ``variant``, take two pre-training steps, return its parameters and the peak
    memory of building and training it (bytes; see the module docstring for how)."""
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := the current resident memory
        base = _resident_kb("VmRSS") * 1024
    model = build_variant(variant, size).to(device).train()
    step = pretrain_step(model, batch, device, use_amp)
    step()
    step()
    cuda = device.type == "cuda"
    peak = torch.cuda.max_memory_allocated(device) if cuda else _resident_kb("VmHWM") * 1024
    return {"parameters": sum(p.numel() for p in model.parameters()), "peak_bytes": peak - base}


def start_probe(variant: str, size: str, batch: int, args: argparse.Namespace) -> subprocess.Popen:
    """This script in a fresh interpreter with ``--memory-probe`` (one JSON line on stdout)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-probe", variant, "--sizes", size]
    command += ["--batch", str(batch), "--device", args.device, "--threads", str(args.threads)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def probe_result(process: subprocess.Popen, what: str) -> dict:
    out, err = process.communicate()
    if process.returncode:
        raise SystemExit(f"memory probe {what} failed:\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def block_weights(model: AVSiam) -> int:
    """Parameters of the encoder blocks' attention and MLP (what the two towers hold twice)."""
    return sum(p.numel() for blk in model.blocks for part in (blk.attn, blk.mlp) for p in part.parameters())


def bench_encoders(batches: dict[str, int], args: argparse.Namespace) -> None:
    # Every probe at once: they time nothing, and each is its own process, so they do not see each other's memory.
    probes = {
        (size, v): start_probe(v, size, b, args) for size, b in batches.items() for v in ("shared", "towers")
    }
    mb = 1e6
    for size, batch in batches.items():
        shared, towers = (probe_result(probes[size, v], f"{v} {size}") for v in ("shared", "towers"))
        print(
            f"{size}: parameters shared {shared['parameters']:,} vs two towers {towers['parameters']:,} "
            f"({towers['parameters'] / shared['parameters']:.3f}x); peak memory of 2 training steps "
            f"(batch {batch}): shared {shared['peak_bytes'] / mb:,.0f} MB vs two towers "
            f"{towers['peak_bytes'] / mb:,.0f} MB ({towers['peak_bytes'] / shared['peak_bytes']:.2f}x)"
        )


def bench_pretrain(size: str, batch: int, rounds: int, device: torch.device, use_amp: bool) -> None:
    torch.manual_seed(0)
    model = build_model("avsiam", size=size).to(device).train()
    step = pretrain_step(model, batch, device, use_amp)
    step()  # warm-up (and Adam's moments)
    seconds = interleaved_medians({"step": step}, rounds)["step"]
    print(
        f"{size} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, batch {batch}): "
        f"{batch / seconds:8.2f} samples/s ({seconds:.3f} s per step, median of {rounds})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default=None, help="comma-separated avsiam sizes (default toy,s; --small: toy)"
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: see the docstring on shared machines)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per step (default: per size)")
    parser.add_argument(
        "--batch", type=int, default=None, help="one batch for every section (default: per size)"
    )
    parser.add_argument("--small", action="store_true", help="toy size and small batches: a smoke run")
    parser.add_argument("--memory-probe", choices=["shared", "towers"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    use_amp = device.type == "cuda"  # as the training loop: AMP on CUDA only
    sizes = [s.strip() for s in (args.sizes or ("toy" if args.small else "toy,s")).split(",") if s.strip()]
    table = SMALL if args.small else SETTINGS
    unknown = [s for s in sizes if s not in table]
    if unknown:
        parser.error(f"--sizes: no settings for {unknown}; choose from {sorted(table)}")
    settings = {s: dict(table[s]) for s in sizes}
    for s in settings.values():
        if args.batch is not None:
            s.update(mask_batch=args.batch, memory_batch=args.batch, pretrain_batch=args.batch)
        if args.rounds is not None:
            s["rounds"] = args.rounds
    if args.memory_probe:
        size = sizes[0]
        print(
            json.dumps(memory_probe(args.memory_probe, size, settings[size]["memory_batch"], device, use_amp))
        )
        return

    precision = f"AMP {str(amp_dtype()).split('.')[-1]}" if use_amp else "float32"
    print(f"# AVSiam benchmark: sizes {', '.join(sizes)}; {precision}; random weights and inputs")
    print(f"machine: {machine(device, args.threads)}")
    print("\n## 1. contrastive pass (forward + backward): packed multi-ratio masking vs padding")
    for size in sizes:
        s = settings[size]
        bench_masking(size, s["mask_batch"], s["rounds"], device, use_amp)
    print("\n## 2. shared encoder vs two towers (a separate copy of the blocks for audio)")
    bench_encoders({size: settings[size]["memory_batch"] for size in sizes}, args)
    print("\n## 3. pre-training samples per second (contrastive + reconstruction, backward, Adam step)")
    for size in sizes:
        s = settings[size]
        bench_pretrain(size, s["pretrain_batch"], s["rounds"], device, use_amp)
    print(f"\nload average at the end: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
