"""``avkd bench``: latency and throughput of models and their ONNX exports, into a ``bench`` artifact (issue 17,
part 3).

What is measured, and how:

* **Sources.** A model artifact, an export artifact (its source model, when still where the export says, gives the
  PyTorch rows) or a registered model name (``vocalist``, ``mtdvocalist``, ...: built with seeded random weights;
  latency does not depend on the weights' values). A model without an export is exported for the run into a
  temporary folder, with ``--quantize dynamic`` (:mod:`avkd.models.export`).
* **Backends.** PyTorch eager fp32; PyTorch int8 (``torch.ao.quantization.quantize_dynamic`` of every
  ``nn.Linear``, qint8 weights; attention in-projections are ``F.linear`` on a packed weight and stay fp32);
  ONNX Runtime fp32 and int8 (the export's graphs, :mod:`avkd.models.onnx_model`); on CUDA, where present,
  PyTorch fp32 and ONNX Runtime's CUDA provider when installed.
* **Workloads.** Sync models: ``batch1``, one (video, audio) pair through the three parts; ``window``, one video
  window against its 31 audio candidates as the evaluator scores them (the video encoded once, 31 audio windows
  encoded, 31 pairs fused; docs/reference/vocalist.md §4). Emotion models: ``batch1`` and ``batch31`` segments at
  the export's sequence lengths. Throughput counts pairs (candidates) or segments per second.
* **Threads.** Each CPU row runs at each of ``threads`` (default 1 and every CPU thread, ``os.cpu_count()``):
  ``torch.set_num_threads`` for PyTorch, ``SessionOptions.intra_op_num_threads`` (with one inter-op thread) for
  ONNX Runtime.
* **Timing.** ``warmup`` untimed calls, then ``repeats`` calls each timed with ``time.perf_counter`` (after
  ``torch.cuda.synchronize`` on CUDA); p50 / p90 are ``numpy.percentile`` (linear interpolation) of those,
  throughput is the batch over the mean latency. On CUDA each call includes copying its inputs to the GPU.
* **Size.** Parameters, the bytes of ``model.pt`` (when an artifact) and of the fp32 and int8 ONNX graphs, and
  GMACs per workload, counted by ``torch.utils.flop_counter.FlopCounterMode`` on the PyTorch fp32 model with
  the explicit math attention (so attention's matmuls are counted as matmuls), MACs = FLOPs / 2 (the counter
  counts a multiply-add as two FLOPs). Each row also records its max |output − PyTorch fp32| on the same input.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from avkd.core.artifacts import (
    BENCH,
    EXPORT,
    MODEL,
    Artifact,
    ArtifactWriter,
    atomic_write_text,
    load_artifact,
)
from avkd.core.errors import UsageError
from avkd.models import attention
from avkd.models.device import resolve_device
from avkd.models.export import ExportConfig, export_model, require
from avkd.models.io import WEIGHTS, ModelSpec, count_parameters, import_checkpoint, load_model
from avkd.models.onnx_model import load_export
from avkd.models.registry import list_models

__all__ = ["BenchConfig", "bench_markdown", "bench_models", "time_call"]

#: One window's candidates: 2·15 + 1 offsets (docs/reference/vocalist.md §4, ``vshift`` 15).
CANDIDATES = 31


@dataclass
class BenchConfig:
    """``avkd bench`` settings (the manifest's ``config``)."""

    #: CPU threads of each row; 0 means every CPU thread (``os.cpu_count()``).
    threads: list[int] = field(default_factory=lambda: [1, 0])
    warmup: int = 3
    repeats: int = 20
    #: cpu, or cuda (adds CUDA rows to the CPU ones).
    device: str = "cpu"
    seed: int = 0
    #: Exporter of a model benched without an export (avkd export's ``--exporter``).
    exporter: str = "auto"

    def validate(self) -> None:
        if not self.threads or any(t < 0 for t in self.threads):
            raise UsageError(f"--threads {self.threads}: give thread counts >= 1 (0 = every CPU thread)")
        if self.warmup < 0 or self.repeats < 1:
            raise UsageError(f"warmup {self.warmup} / repeats {self.repeats}: need warmup >= 0, repeats >= 1")


def time_call(
    fn: Callable[[], Any], warmup: int, repeats: int, sync: Callable[[], None] | None = None
) -> dict:
    """p50 / p90 / mean / min milliseconds of ``fn`` over ``repeats`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        times.append(1000 * (time.perf_counter() - start))
    p50, p90 = np.percentile(times, [50, 90])
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "mean_ms": float(np.mean(times)),
        "min_ms": float(np.min(times)),
        "repeats": repeats,
    }


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# ------------------------------------------------------------------------------------------------ sources


@dataclass
class _Source:
    label: str
    model: nn.Module | None  # PyTorch fp32 on the CPU (None: the export's source model is gone)
    spec: ModelSpec
    export: Artifact
    artifacts: list[Artifact]
    weights_bytes: int | None
    notes: list[str]


def _resolve(source: str | Path, label: str | None, tmp: Path, index: int, config: BenchConfig) -> _Source:
    """A source (module docstring) as a PyTorch model plus an export with int8 graphs."""
    path = Path(source)
    notes: list[str] = []
    if not path.exists() and str(source) in list_models():
        seed = config.seed
        torch.manual_seed(seed)
        spec = ModelSpec(str(source))
        model = spec.build()
        torch.save({"state_dict": model.state_dict()}, tmp / f"{index}.pt")
        import_checkpoint(tmp / f"{index}.pt", tmp / f"model-{index}", spec)
        (tmp / f"{index}.pt").unlink()
        notes.append(f"{source}: random weights (seed {seed}); latency does not depend on their values")
        export = _export(tmp / f"model-{index}", tmp / f"export-{index}", config)
        return _Source(label or str(source), model.eval(), spec, export, [], None, notes)
    if not path.exists():
        raise UsageError(
            f"{source}: no such artifact, and not a registered model ({', '.join(list_models())})"
        )
    kind = load_artifact(path).kind
    if kind == MODEL:
        loaded = load_model(path)
        export = _export(path, tmp / f"export-{index}", config)
        weights = loaded.artifact.file(WEIGHTS).stat().st_size if loaded.artifact else None
        return _Source(
            label or path.name, loaded.model, loaded.spec, export, [loaded.artifact], weights, notes
        )  # type: ignore[list-item]
    if kind != EXPORT:
        raise UsageError(f"{path}: a {kind!r} artifact; avkd bench takes a model or an export artifact")
    export = load_artifact(path, kind=EXPORT)
    if not export.manifest.get("quantized"):
        notes.append(f"{path}: no int8 graphs (export with --quantize dynamic); no ONNX Runtime int8 rows")
    ref = next((i for i in export.manifest.get("inputs", []) if i.get("kind") == MODEL), None)
    model, weights, arts = None, None, [export]
    try:
        source_model = load_artifact(ref["path"], kind=MODEL) if ref else None
    except Exception:  # gone or changed: the ONNX rows still stand
        source_model = None
    if source_model is not None and source_model.id == ref["id"]:  # type: ignore[index]
        model = load_model(source_model.path).model
        weights = source_model.file(WEIGHTS).stat().st_size
        arts.append(source_model)
    else:
        notes.append(f"{path}: its source model is not where the export says; no PyTorch rows")
    spec = ModelSpec(**export.manifest["spec"])
    return _Source(label or path.name, model, spec, export, arts, weights, notes)


def _export(model: Path, out: Path, config: BenchConfig) -> Artifact:
    return export_model(model, out, ExportConfig(quantize="dynamic", exporter=config.exporter))


# ------------------------------------------------------------------------------------------------ inputs


def _workloads(source: _Source, seed: int) -> dict[str, dict[str, Any]]:
    """{workload: {"batch", "inputs", "run"}}: what one timed call feeds and how it calls a model (either
    backend: the ONNX modules have the PyTorch models' methods)."""
    gen = torch.Generator().manual_seed(seed)
    graphs = source.export.manifest["graphs"]
    if source.export.manifest.get("task") == "sync":
        shapes = (
            graphs["video_encoder"]["input_shapes"]["video"],
            graphs["audio_encoder"]["input_shapes"]["mel"],
        )
        video = torch.rand(1, *shapes[0][1:], generator=gen)
        if source.spec.pixel_range == "byte":
            video = video * 255
        mel = torch.randn(CANDIDATES, *shapes[1][1:], generator=gen)

        def window(n: int) -> Callable[..., Tensor]:
            def run(model: nn.Module, device: str = "cpu") -> Tensor:
                v = model.encode_video(video.to(device))
                a = model.encode_audio(mel[:n].to(device))
                return model.fuse(v.expand(-1, n, -1), a)

            return run

        return {
            "batch1": {"batch": 1, "run": window(1), "what": "one (video, audio) pair"},
            "window": {
                "batch": CANDIDATES,
                "run": window(CANDIDATES),
                "what": f"one video window against its {CANDIDATES} audio candidates (video encoded once)",
            },
        }
    shapes = graphs["model"]["input_shapes"]
    feeds = {name: torch.randn(CANDIDATES, *shape[1:], generator=gen) for name, shape in shapes.items()}

    def batch(n: int) -> Callable[..., Tensor]:
        def run(model: nn.Module, device: str = "cpu") -> Tensor:
            return model(**{k: v[:n].to(device) for k, v in feeds.items()})

        return run

    return {
        "batch1": {"batch": 1, "run": batch(1), "what": "one segment"},
        "batch31": {"batch": CANDIDATES, "run": batch(CANDIDATES), "what": f"{CANDIDATES} segments"},
    }


def count_gmacs(model: nn.Module, run: Callable[..., Tensor]) -> float:
    """GMACs of one call (module docstring): FlopCounterMode over the math-attention copy, FLOPs / 2."""
    counted = copy.deepcopy(model).eval()
    attention.set_sdpa(counted, False)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        run(counted)
    return counter.get_total_flops() / 2e9


def quantize_linear(model: nn.Module) -> nn.Module:
    """PyTorch dynamic int8 of every ``nn.Linear`` (qint8 weights), a copy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8
        )


def _diff(out: Tensor, ref: Tensor) -> float:
    return float((out.detach().float().cpu() - ref.float()).abs().max())


# ------------------------------------------------------------------------------------------------ bench


def _bench_source(source: _Source, config: BenchConfig, threads: list[int], cuda: bool) -> dict[str, Any]:
    loads = _workloads(source, config.seed)
    rows: list[dict[str, Any]] = []
    refs: dict[str, Tensor] = {}
    gmacs: dict[str, float] = {}
    if source.model is not None:
        with torch.inference_mode():
            refs = {name: w["run"](source.model) for name, w in loads.items()}
        gmacs = {name: count_gmacs(source.model, w["run"]) for name, w in loads.items()}

    def measure(backend: str, precision: str, device: str, n_threads: int | None, model: nn.Module) -> None:
        sync = torch.cuda.synchronize if device == "cuda" else None
        for name, w in loads.items():
            with torch.inference_mode():
                timing = time_call(lambda: w["run"](model, device), config.warmup, config.repeats, sync)  # noqa: B023
                diff = _diff(w["run"](model, device), refs[name]) if name in refs else None
            rows.append(
                {
                    "model": source.label,
                    "backend": backend,
                    "precision": precision,
                    "device": device,
                    "threads": n_threads,
                    "workload": name,
                    "batch": w["batch"],
                    **timing,
                    "throughput_per_s": w["batch"] * 1000 / timing["mean_ms"],
                    "max_abs_diff_vs_fp32": diff,
                }
            )

    precisions = ["fp32"] + (["int8"] if source.export.manifest.get("quantized") else [])
    for n in threads:
        with torch_threads(n):
            if source.model is not None:
                measure("pytorch", "fp32", "cpu", n, source.model)
                measure("pytorch", "int8", "cpu", n, quantize_linear(source.model))
            for precision in precisions:
                ort_model = load_export(source.export.path, "cpu", precision=precision, threads=n).model
                measure("onnxruntime", precision, "cpu", n, ort_model)
    if cuda:
        if source.model is not None:
            measure("pytorch", "fp32", "cuda", None, copy.deepcopy(source.model).cuda())
        ort = require("onnxruntime")
        if "CUDAExecutionProvider" in ort.get_available_providers():
            measure("onnxruntime", "fp32", "cuda", None, load_export(source.export.path, "cuda").model)
        else:
            source.notes.append("onnxruntime has no CUDAExecutionProvider here: no ONNX Runtime CUDA rows")
    manifest = source.export.manifest
    return {
        "model": source.label,
        "name": source.spec.name,
        "task": manifest.get("task"),
        "parameters": int(source.export.metrics.get("parameters") or count_parameters(source.model)),  # type: ignore[arg-type]
        "weights_bytes": source.weights_bytes,
        "onnx_bytes": {
            "fp32": sum(g["bytes"] for g in manifest["graphs"].values()),
            **(
                {"int8": sum(q["bytes"] for q in manifest["quantized"].values())}
                if "quantized" in manifest
                else {}
            ),
        },
        "gmacs": gmacs,
        "workloads": {name: {"batch": w["batch"], "what": w["what"]} for name, w in loads.items()},
        "rows": rows,
        "notes": source.notes,
    }


def bench_models(
    sources: Sequence[str | Path],
    out: str | Path,
    config: BenchConfig | None = None,
    labels: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Artifact:
    """Bench every source (module docstring) in one run and write the ``bench`` artifact at ``out``
    (``bench.json``: every row; ``bench.md``: the p50 table)."""
    config = config or BenchConfig()
    config.validate()
    require("onnxruntime")
    if not sources:
        raise UsageError("avkd bench: give at least one model, export or registered model name")
    if labels and len(labels) != len(sources):
        raise UsageError(f"--label: {len(labels)} labels for {len(sources)} models")
    device = resolve_device(config.device)
    cpus = os.cpu_count() or 1
    threads = sorted({t or cpus for t in config.threads})
    results, inputs = [], []
    load_before = _load_average()
    with tempfile.TemporaryDirectory(prefix="avkd-bench-") as tmp:
        for i, source in enumerate(sources):
            resolved = _resolve(source, labels[i] if labels else None, Path(tmp), i, config)
            inputs += resolved.artifacts
            results.append(_bench_source(resolved, config, threads, device.type == "cuda"))
    payload = {
        "machine": {
            "cpu_threads": cpus,
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "onnxruntime": require("onnxruntime").__version__,
            "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            # Other work on the machine inflates every latency: the 1-minute load average before and after.
            "load_average": [load_before, _load_average()],
        },
        "units": {
            "p50_ms": "milliseconds per call",
            "throughput_per_s": "pairs (sync) or segments (emotion) per second",
            "gmacs": "10^9 multiply-adds per call (FlopCounterMode FLOPs / 2)",
        },
        "threads": threads,
        "models": results,
    }
    config_json = {**asdict(config), "sources": [str(s) for s in sources]}
    with ArtifactWriter(
        out, BENCH, config_json, inputs=inputs, overwrite=overwrite, resumable=False
    ) as writer:
        atomic_write_text(writer.path("bench.json"), json.dumps(payload, indent=2) + "\n")
        atomic_write_text(writer.path("bench.md"), bench_markdown(payload))
        metrics = {
            "models": [r["model"] for r in results],
            "rows": sum(len(r["rows"]) for r in results),
            "threads": threads,
        }
        return writer.commit(metrics=metrics)


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on every platform
        return None


def _pair(values: list[float | None] | None) -> str:
    return " / ".join("?" if v is None else f"{v:.1f}" for v in values) if values else "?"


def bench_markdown(payload: dict[str, Any]) -> str:
    """The bench table: one row per model, backend, precision and device; p50 ms per workload and thread count,
    then each model's parameters, sizes and GMACs."""
    threads = payload["threads"]
    models = payload["models"]
    workloads = list(dict.fromkeys(row["workload"] for m in models for row in m["rows"]))
    columns = sorted(
        {(row["workload"], row["threads"]) for m in models for row in m["rows"]},
        key=lambda c: (workloads.index(c[0]), c[1] is None, c[1] or 0),
    )
    header = ["model", "backend", "precision", "device"] + [
        f"{w} p50 ms ({t} thr)" if t is not None else f"{w} p50 ms" for w, t in columns
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in models:
        groups: dict[tuple[str, str, str], dict[tuple[str, int | None], float]] = {}
        for row in m["rows"]:
            groups.setdefault((row["backend"], row["precision"], row["device"]), {})[
                (row["workload"], row["threads"])
            ] = row["p50_ms"]
        for (backend, precision, device), cells in groups.items():
            values = [f"{cells[c]:.1f}" if c in cells else "–" for c in columns]
            lines.append("| " + " | ".join([m["model"], backend, precision, device, *values]) + " |")
    lines += [
        "",
        "| model | parameters | model.pt MB | ONNX fp32 MB | ONNX int8 MB | GMACs |",
        "|---|---|---|---|---|---|",
    ]
    for m in models:
        weights = f"{m['weights_bytes'] / 1e6:.1f}" if m.get("weights_bytes") else "n/a"
        int8 = m["onnx_bytes"].get("int8")
        cells = [
            m["model"],
            f"{m['parameters']:,}",
            weights,
            f"{m['onnx_bytes']['fp32'] / 1e6:.1f}",
            f"{int8 / 1e6:.1f}" if int8 else "n/a",
            ", ".join(f"{w} {g:.2f}" for w, g in m["gmacs"].items()) or "n/a",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    machine = payload["machine"]
    lines += [
        "",
        f"Threads {', '.join(map(str, threads))} of {machine['cpu_threads']} CPU threads; torch {machine['torch']}, "
        f"onnxruntime {machine['onnxruntime']}; load average {_pair(machine.get('load_average'))} (before, after). "
        "Workloads: "
        + "; ".join(f"{w} = {d['what']}" for w, d in (models[0]["workloads"].items() if models else [])),
    ]
    notes = [n for m in models for n in m["notes"]]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
