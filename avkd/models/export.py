"""Export a model artifact to ONNX, checked against PyTorch before the export artifact is committed (issue 17).

What the export does, and why:

* **Exporter.** ``torch.onnx.export(..., dynamo=True)`` (the current exporter; needs ``onnxscript``) first; when it
  raises, or its graph fails the checks, the TorchScript exporter (``dynamo=False``). The manifest says which one
  wrote each graph.
* **Attention.** :class:`~avkd.models.attention.MultiheadAttention` runs fused SDPA by default; the explicit
  math path (:func:`~avkd.models.attention.set_sdpa`) is the fallback when SDPA does not export or does not match.
  The manifest says which one each graph uses.
* **Graphs.** A sync model (one with ``encode_video``, ``encode_audio`` and ``fuse``: VocaLiST's
  :class:`~avkd.models.vocalist.SyncTransformer`, :class:`~avkd.models.syncnet.SyncNet`) becomes three graphs,
  so a runtime can encode each window once and score its 31 candidates with the fusion head only, as avkd's
  evaluator does: ``video_encoder`` (B, 3·T, 48, 96) → (T, B, D), ``audio_encoder`` (B, 1, 80, T_a) →
  (T_a, B, D) and ``fusion_head`` (v_emb, a_emb) → logits (B,). The windows follow the model's input layout
  (:func:`avkd.data.lrs2.layouts.layout_of`; SyncNet: video (B, 3, 5, 224, 224), ``mel`` = its MFCC window
  (B, 1, 13, 20), embeddings (1, B, D)), recorded as ``input_layout`` in the manifest. A MulT model is one
  graph (``text, audio, vision`` → logits; the video-only student takes ``vision`` alone). An AVSiam model is
  three graphs, one per forward mode: ``model`` (audio (B, 1, F, T), video (B, 3, S, S)) → logits of the AV
  head, ``model_a`` (audio) and ``model_v`` (video) → the audio / video heads' logits; checked on seeded random
  inputs (``--data`` is not read for it).
* **Axes.** The batch axis is dynamic; graphs are traced at batch ≥ 2 so that it is not specialised, and checked at
  other batch sizes. Sequence lengths are fixed at the traced ones (sync: 5 frames / 16 mel steps; MulT: the
  features' lengths): the positional table and the attention mask and time bias are built for one length in
  Python and enter the graph as constants (``fixed_axes`` in the manifest says so per input).
* **Quantisation** (``--quantize dynamic``). ONNX Runtime's ``quantize_dynamic`` on each fp32 graph, weights
  QInt8, only the Linear layers (:data:`QUANTIZED_OPS`; activations are quantised per batch at run time), written
  as ``<graph>.int8.onnx`` beside the fp32 graph. Its max |diff| against PyTorch fp32 on the same check inputs is
  recorded (``quantized`` in the manifest; int8 is not held to the fp32 tolerance), and the manifest's
  ``precision`` becomes ``int8``: what ``avkd evaluate`` / ``avkd sync`` run by default
  (:func:`avkd.models.onnx_model.load_export`).
* **Exported programs** (``--format exported-program``). The same graph modules through ``torch.export.export``
  (batch axis a ``torch.export.Dim``), saved with ``torch.export.save`` as ``<graph>.pt2`` and checked by
  ``torch.export.load`` + running the loaded program against PyTorch eval on the same check inputs (same
  tolerance, same composed sync check; SDPA first, then the math path). ``avkd evaluate`` / ``avkd sync`` run
  ONNX exports only and refuse these in one line.
* **Checks.** ``onnx.checker.check_model``, then ONNX Runtime (CPUExecutionProvider) against PyTorch eval on real
  inputs from a features artifact (or seeded random ones when none is given; ``inputs`` in the manifest says which).
  The max |diff| of every graph, and of the three sync graphs composed against the whole model, is recorded; above
  the tolerance the export fails with one line and nothing is committed.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import io
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from avkd.core.artifacts import EXPORT, LRS2_FEATURES, MOSEI_FEATURES, Artifact, ArtifactWriter, load_artifact
from avkd.core.errors import AvkdError, UsageError
from avkd.data.lrs2.dataset import SyncDataset, SyncSamplingConfig
from avkd.data.lrs2.layouts import FRAMES, InputLayout, layout_of
from avkd.data.lrs2.store import FeatureStore
from avkd.data.mosei.dataset import MoseiDataset
from avkd.models import attention
from avkd.models.avsiam import AVSiam
from avkd.models.io import LoadedModel, count_parameters, load_model
from avkd.models.mult import MOSEI_DIMS, MOSEI_LENGTHS, MulT, MulTStudent
from avkd.models.syncnet import SyncNet
from avkd.models.vocalist import FRAME_HW, SyncTransformer

__all__ = [
    "FORMATS",
    "QUANTIZE",
    "SYNC_GRAPHS",
    "ExportConfig",
    "ExportError",
    "GraphSpec",
    "export_model",
    "graph_file",
    "require",
]

#: ``onnx`` (ONNX Runtime checks; what avkd evaluate / sync / bench run) or ``exported-program``
#: (torch.export programs saved as ``<graph>.pt2``, checked by torch.export.load; not run by the evaluators).
FORMATS = ("onnx", "exported-program")
#: ``--quantize``: none, or post-training dynamic int8 of the Linear layers (module docstring, "Quantisation").
QUANTIZE = ("none", "dynamic")
#: ONNX operators whose constant weights ``--quantize dynamic`` stores in int8: the Linear layers (MatMul with a
#: weight initializer, Gemm). Convolutions stay fp32, as in PyTorch's dynamic quantisation of nn.Linear.
QUANTIZED_OPS = ("MatMul", "Gemm")
#: The three graphs of a sync export, in the order the evaluator runs them.
SYNC_GRAPHS = ("video_encoder", "audio_encoder", "fusion_head")
EXPORTERS = ("auto", "dynamo", "torchscript")
ATTENTIONS = ("auto", "sdpa", "math")
#: The window the sync models are trained and evaluated on (SyncSamplingConfig.frames; the layouts' FRAMES).
SYNC_FRAMES = FRAMES


class ExportError(AvkdError):
    """An export that did not produce a graph matching PyTorch (exit code 1)."""


@dataclass
class ExportConfig:
    """``avkd export`` settings (the manifest's ``config``)."""

    format: str = "onnx"
    #: Max |ONNX Runtime − PyTorch| allowed on logits; embeddings get it scaled by their largest magnitude (≥ 1).
    atol: float = 1e-4
    #: Batch the graphs are traced at (≥ 2, so the batch axis is not specialised to 1).
    trace_batch: int = 2
    #: Inputs drawn for the check (the check runs at this batch size and at batch 1, both unlike the traced one).
    samples: int = 3
    #: Split of ``--data`` the real inputs come from.
    split: str = "test"
    seed: int = 0
    exporter: str = "auto"
    attention: str = "auto"
    opset: int = 18
    #: "none" or "dynamic" (int8 graphs beside the fp32 ones, the export's default precision then).
    quantize: str = "none"

    def validate(self) -> None:
        if self.format not in FORMATS:
            raise UsageError(f"--format {self.format!r}: expected one of {', '.join(FORMATS)}")
        if self.quantize not in QUANTIZE:
            raise UsageError(f"--quantize {self.quantize!r}: expected one of {', '.join(QUANTIZE)}")
        if self.format == "exported-program" and self.quantize != "none":
            raise UsageError("--quantize dynamic: int8 graphs are ONNX only; use --format onnx")
        if self.exporter not in EXPORTERS:
            raise UsageError(f"exporter {self.exporter!r}: expected one of {', '.join(EXPORTERS)}")
        if self.attention not in ATTENTIONS:
            raise UsageError(f"attention {self.attention!r}: expected one of {', '.join(ATTENTIONS)}")
        if self.trace_batch < 2:
            raise UsageError(f"trace_batch {self.trace_batch}: must be >= 2 (batch 1 specialises the axis)")
        if self.samples < 1 or self.samples == self.trace_batch:
            raise UsageError(
                f"samples {self.samples}: must be >= 1 and differ from trace_batch ({self.trace_batch}), so the "
                "check runs at a batch size the graph was not traced at"
            )
        if not self.atol > 0:
            raise UsageError(f"atol {self.atol}: must be > 0")


def require(package: str) -> Any:
    """Import an optional package of the ``export`` extra, or fail with one line naming it."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise UsageError(
            f"avkd export needs the {package!r} package, which is not installed: pip install 'avkd[export]'"
        ) from None


@dataclass
class GraphSpec:
    """One graph to export: a module, its named inputs, output and axes."""

    name: str
    module: nn.Module
    inputs: tuple[str, ...]
    output: str
    #: {input or output name: the axis index that is the batch}.
    batch_axes: dict[str, int]
    #: {input name: why its other axes are fixed}.
    fixed: dict[str, str] = field(default_factory=dict)
    #: Tolerance of this graph's output: "logits" (atol) or "embedding" (atol × max |ref|).
    scale: str = "logits"


class _Part(nn.Module):
    """A part of a model as a module of its own, with named forward arguments (the exporters name inputs and
    axes by them; a ``*args`` forward does not export through torch.export)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model


class _VideoEncoder(_Part):
    def forward(self, video: Tensor) -> Tensor:
        return self.model.encode_video(video)


class _AudioEncoder(_Part):
    def forward(self, mel: Tensor) -> Tensor:
        return self.model.encode_audio(mel)


class _FusionHead(_Part):
    def forward(self, v_emb: Tensor, a_emb: Tensor) -> Tensor:
        return self.model.fuse(v_emb, a_emb)


class _MulTGraph(_Part):
    def forward(self, text: Tensor, audio: Tensor, vision: Tensor) -> Tensor:
        return self.model(text, audio, vision)


class _AVSiamGraph(_Part):
    def forward(self, audio: Tensor, video: Tensor) -> Tensor:
        return self.model(audio, video, mode="av")


class _AVSiamAudio(_Part):
    def forward(self, audio: Tensor) -> Tensor:
        return self.model(audio, None, mode="a")


class _AVSiamVideo(_Part):
    def forward(self, video: Tensor) -> Tensor:
        return self.model(None, video, mode="v")


class _StudentGraph(_Part):
    def forward(self, vision: Tensor) -> Tensor:
        return self.model(vision=vision)


_FIXED_REASON = (
    "fixed at the traced length: the positional table and the attention mask are built for one length in "
    "Python and enter the graph as constants"
)


def is_sync(model: nn.Module) -> bool:
    """A sync model: the sync evaluator's three calls ``encode_video``, ``encode_audio``, ``fuse(v_emb, a_emb)``
    (by class: AVSiam has methods of those names with another meaning and argument order)."""
    return isinstance(model, (SyncTransformer, SyncNet))


def graph_specs(model: nn.Module) -> list[GraphSpec]:
    """The graphs a model exports as (three for a sync model, one for MulT)."""
    if is_sync(model):
        layout = layout_of(model)
        window = (
            f"fixed at {SYNC_FRAMES} frames / {layout.audio_window} audio columns, the {layout.name} "
            "layout's window"
        )
        return [
            GraphSpec(
                "video_encoder",
                _VideoEncoder(model),
                ("video",),
                "v_emb",
                {"video": 0, "v_emb": 1},
                {"video": window},
                "embedding",
            ),
            GraphSpec(
                "audio_encoder",
                _AudioEncoder(model),
                ("mel",),
                "a_emb",
                {"mel": 0, "a_emb": 1},
                {"mel": window},
                "embedding",
            ),
            GraphSpec(
                "fusion_head",
                _FusionHead(model),
                ("v_emb", "a_emb"),
                "logits",
                {"v_emb": 1, "a_emb": 1, "logits": 0},
                {"v_emb": window, "a_emb": window},
            ),
        ]
    if isinstance(model, AVSiam):
        fixed = "fixed at the model's input size: the positional embeddings are one per patch"
        return [
            GraphSpec("model", _AVSiamGraph(model), ("audio", "video"), "logits",
                      {"audio": 0, "video": 0, "logits": 0}, dict.fromkeys(("audio", "video"), fixed)),
            GraphSpec("model_a", _AVSiamAudio(model), ("audio",), "logits", {"audio": 0, "logits": 0},
                      {"audio": fixed}),
            GraphSpec("model_v", _AVSiamVideo(model), ("video",), "logits", {"video": 0, "logits": 0},
                      {"video": fixed}),
        ]  # fmt: skip
    if isinstance(model, MulTStudent):
        return [GraphSpec("model", _StudentGraph(model), ("vision",), "logits", {"vision": 0, "logits": 0},
                          {"vision": _FIXED_REASON})]  # fmt: skip
    if isinstance(model, MulT):
        names = ("text", "audio", "vision")
        return [
            GraphSpec(
                "model",
                _MulTGraph(model),
                names,
                "logits",
                {**{n: 0 for n in names}, "logits": 0},
                dict.fromkeys(names, _FIXED_REASON),
            )
        ]
    raise UsageError(
        f"cannot export a {type(model).__name__}: only sync (VocaLiST, SyncNet), MulT and "
        "AVSiam models export"
    )


# ------------------------------------------------------------------------------------------------ inputs


def sync_inputs(
    loaded: LoadedModel, features: Artifact | None, n: int, config: ExportConfig
) -> dict[str, Tensor]:
    """``video`` and ``mel`` windows in the model's input layout (vocalist: (n, 15, 48, 96) and (n, 1, 80, 16);
    syncnet: (n, 3, 5, 224, 224) and MFCC (n, 1, 13, 20)): real windows of the features' split when given (drawn
    by the training sampler, in the model's pixel convention), else seeded random ones."""
    layout = layout_of(loaded.model)
    if features is not None:
        sampling = SyncSamplingConfig(
            frames=SYNC_FRAMES,
            pixel_order=loaded.spec.pixel_order,  # type: ignore[arg-type]
            pixel_range=loaded.spec.pixel_range,  # type: ignore[arg-type]
        )
        store = FeatureStore(features)
        try:
            # layout None is the dataset's own (VocaLiST) cutting, what the vocalist trainer draws.
            cut = None if layout.name == "vocalist" else layout
            dataset = SyncDataset(store, config.split, sampling, samples=n, seed=config.seed, layout=cut)
            rows = [dataset[i] for i in range(n)]
        finally:
            store.close()
        return {"video": torch.stack([r[0] for r in rows]), "mel": torch.stack([r[1] for r in rows])}
    return random_sync_inputs(layout, n, config.seed, loaded.spec.pixel_range)


def random_sync_inputs(
    layout: InputLayout, n: int, seed: int, pixel_range: str = "unit"
) -> dict[str, Tensor]:
    """Seeded random ``video`` / ``mel`` windows of ``layout``'s shapes (crops of the layout's side, else 96)."""
    gen = torch.Generator().manual_seed(seed)
    side = layout.crop_size or FRAME_HW[1]
    crops = torch.randint(0, 256, (n, SYNC_FRAMES, side, side, 3), dtype=torch.uint8, generator=gen).numpy()
    video = torch.stack(
        [layout.video_batch(layout.clip_pixels(c, "rgb", pixel_range), [0])[0] for c in crops]
    )
    mel = torch.randn(n, 1, layout.audio_rows, layout.audio_window, generator=gen)
    return {"video": video, "mel": mel}


def mosei_inputs(features: Artifact | None, n: int, config: ExportConfig) -> dict[str, Tensor]:
    """``text, audio, vision`` of the first n segments of the features' split, else seeded random ones at the
    MOSEI lengths (50, 500, 500)."""
    if features is not None:
        dataset = MoseiDataset(features, config.split)
        try:
            if len(dataset) < n:
                raise UsageError(
                    f"{features.path}: split {config.split!r} has {len(dataset)} segments, need {n}"
                )
            rows = [dataset[i] for i in range(n)]
        finally:
            dataset.close()
        return {name: torch.stack([r[i] for r in rows]) for i, name in enumerate(("text", "audio", "vision"))}
    gen = torch.Generator().manual_seed(config.seed)
    return {
        name: torch.randn(n, length, dim, generator=gen)
        for name, length, dim in zip(("text", "audio", "vision"), MOSEI_LENGTHS, MOSEI_DIMS, strict=True)
    }


def avsiam_inputs(model: AVSiam, n: int, seed: int) -> dict[str, Tensor]:
    """Seeded random ``audio`` (n, 1, F, T) spectrograms and ``video`` (n, C, H, W) frames at the model's input
    sizes, standard normal like normalised fbanks and frames."""
    gen = torch.Generator().manual_seed(seed)
    f, t = model.cfg.audio_size
    return {
        "audio": torch.randn(n, 1, f, t, generator=gen),
        "video": torch.randn(n, model.video_channels, *model.video_size, generator=gen),
    }


# ------------------------------------------------------------------------------------------------ export


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters print progress on stdout and warn through logging; ``--json`` needs stdout clean."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _clear_caches() -> None:
    # The mask and time-distance caches are module-global: an export can leave traced (fake) tensors in them,
    # which would break every later forward in this process.
    attention._cached_mask.cache_clear()
    attention.time_distance.cache_clear()


def _onnx_export(spec: GraphSpec, args: tuple[Tensor, ...], path: Path, dynamo: bool, opset: int) -> None:
    dynamic_axes = {name: {axis: "batch"} for name, axis in spec.batch_axes.items()}
    kwargs: dict[str, Any] = {"external_data": False} if dynamo else {}
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            spec.module,
            args,
            str(path),
            input_names=list(spec.inputs),
            output_names=[spec.output],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            dynamo=dynamo,
            **kwargs,
        )


def _run_onnx(path: Path, feeds: dict[str, Tensor]) -> np.ndarray:
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {k: v.numpy() for k, v in feeds.items()})[0]


def _max_diff(got: np.ndarray, ref: Tensor) -> float:
    if got.shape != tuple(ref.shape):
        return float("inf")
    return float(np.max(np.abs(got.astype(np.float64) - ref.numpy().astype(np.float64))))


def _tolerance(spec: GraphSpec, ref: Tensor, atol: float) -> float:
    return atol if spec.scale == "logits" else atol * max(1.0, float(ref.abs().max()))


def _attempts(config: ExportConfig) -> list[tuple[str, str]]:
    """(attention, exporter) pairs to try, preferred first: SDPA before the math path, dynamo before TorchScript."""
    attentions = ["sdpa", "math"] if config.attention == "auto" else [config.attention]
    exporters = ["dynamo", "torchscript"] if config.exporter == "auto" else [config.exporter]
    return [(a, e) for e in exporters for a in attentions]


Checks = list[tuple[tuple[Tensor, ...], Tensor]]


def _compare(
    spec: GraphSpec, run: Callable[[tuple[Tensor, ...]], np.ndarray], checks: Checks, atol: float
) -> tuple[list[dict[str, Any]], float]:
    """Each check batch's max |diff| between ``run`` (the exported graph) and PyTorch's reference, and the worst
    diff as a multiple of its tolerance (<= 1 passes)."""
    diffs, worst = [], 0.0
    for feeds, ref in checks:
        diff = _max_diff(run(feeds), ref)
        diffs.append({"batch": int(feeds[0].shape[spec.batch_axes[spec.inputs[0]]]), "max_abs_diff": diff})
        worst = max(worst, diff / _tolerance(spec, ref, atol))
    return diffs, worst


def _graph_record(
    spec: GraphSpec,
    path: Path,
    trace: tuple[Tensor, ...],
    checks: Checks,
    config: ExportConfig,
    diffs: list[dict[str, Any]],
    seconds: float,
    failures: list[str],
    **how: Any,
) -> dict[str, Any]:
    """The manifest's record of one exported graph (``how``: its exporter, attention path, opset)."""
    return {
        "file": path.name,
        **how,
        "inputs": list(spec.inputs),
        "output": spec.output,
        "batch_axes": spec.batch_axes,
        "traced_batch": config.trace_batch,
        "fixed_axes": spec.fixed,
        "input_shapes": {n: list(t.shape) for n, t in zip(spec.inputs, trace, strict=True)},
        "max_abs_diff": max(d["max_abs_diff"] for d in diffs),
        "checks": diffs,
        "tolerance": _tolerance(spec, checks[0][1], config.atol),
        "export_s": round(seconds, 3),
        "bytes": path.stat().st_size,
        # Why a preferred exporter or attention path was not used (empty: the first attempt passed).
        "fallbacks": failures,
    }


def export_graph(
    spec: GraphSpec,
    trace: tuple[Tensor, ...],
    checks: Checks,
    path: Path,
    config: ExportConfig,
) -> dict[str, Any]:
    """Export one graph to ``path``, trying :func:`_attempts` until one passes ``onnx.checker`` and matches PyTorch
    on every ``checks`` batch; its record for the manifest (or :class:`ExportError` naming every failure)."""
    onnx = require("onnx")
    require("onnxruntime")
    failures: list[str] = []
    for attn, exporter in _attempts(config):
        if exporter == "dynamo" and importlib.util.find_spec("onnxscript") is None:
            failures.append("dynamo: the 'onnxscript' package is not installed")
            continue
        # A private copy: an exporter may leave traced state in the module, and the caller's model must keep
        # computing the reference numbers.
        module = copy.deepcopy(spec.module).eval()
        attention.set_sdpa(module, attn == "sdpa")
        graph = GraphSpec(
            spec.name, module, spec.inputs, spec.output, spec.batch_axes, spec.fixed, spec.scale
        )
        start = time.perf_counter()
        try:
            with torch.no_grad():
                module(*trace)  # fill the length caches with real tensors, so the exporter does not fill them
            _onnx_export(graph, trace, path, exporter == "dynamo", config.opset)
            onnx.checker.check_model(str(path), full_check=True)
        except Exception as exc:
            failures.append(f"{exporter}/{attn}: {_first_line(exc)}")
            path.unlink(missing_ok=True)
            continue
        finally:
            _clear_caches()
        seconds = time.perf_counter() - start
        diffs, worst = _compare(
            spec,
            lambda feeds: _run_onnx(path, dict(zip(spec.inputs, feeds, strict=True))),
            checks,
            config.atol,
        )
        if worst <= 1.0:
            return _graph_record(
                spec, path, trace, checks, config, diffs, seconds, failures,
                exporter=exporter, attention=attn, opset=config.opset,
            )  # fmt: skip
        worst_diff = max(d["max_abs_diff"] for d in diffs)
        failures.append(f"{exporter}/{attn}: max |diff| {worst_diff:.3g} above the tolerance")
        path.unlink(missing_ok=True)
    raise ExportError(f"{spec.name}: no exporter produced a graph matching PyTorch ({'; '.join(failures)})")


def export_program(
    spec: GraphSpec,
    trace: tuple[Tensor, ...],
    checks: Checks,
    path: Path,
    config: ExportConfig,
) -> dict[str, Any]:
    """:func:`torch.export.export` one graph (dynamic batch), ``torch.export.save`` it to ``path`` and check the
    reloaded program against PyTorch on every ``checks`` batch; its record (or :class:`ExportError`)."""
    attentions = ["sdpa", "math"] if config.attention == "auto" else [config.attention]
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic = {name: {spec.batch_axes[name]: batch} for name in spec.inputs}
    failures: list[str] = []
    for attn in attentions:
        module = copy.deepcopy(spec.module).eval()
        attention.set_sdpa(module, attn == "sdpa")
        start = time.perf_counter()
        try:
            with torch.no_grad():
                module(*trace)  # real tensors in the length caches before tracing (as for ONNX)
            with _quiet(), torch.no_grad():
                program = torch.export.export(module, trace, dynamic_shapes=dynamic)
                torch.export.save(program, str(path))
                loaded = torch.export.load(str(path)).module()
        except Exception as exc:
            failures.append(f"torch.export/{attn}: {_first_line(exc)}")
            path.unlink(missing_ok=True)
            continue
        finally:
            _clear_caches()
        seconds = time.perf_counter() - start
        with torch.no_grad():
            diffs, worst = _compare(spec, lambda feeds, m=loaded: m(*feeds).numpy(), checks, config.atol)
        if worst <= 1.0:
            return _graph_record(
                spec, path, trace, checks, config, diffs, seconds, failures,
                exporter="torch.export", attention=attn,
            )  # fmt: skip
        failures.append(
            f"torch.export/{attn}: max |diff| {max(d['max_abs_diff'] for d in diffs):.3g} above the tolerance"
        )
        path.unlink(missing_ok=True)
    raise ExportError(
        f"{spec.name}: torch.export produced no program matching PyTorch ({'; '.join(failures)})"
    )


def _first_line(exc: BaseException) -> str:
    while exc.__cause__ is not None:  # the exporters wrap the real reason in a page of advice
        exc = exc.__cause__
    text = f"{type(exc).__name__}: {str(exc).strip()}"
    return text.splitlines()[0][:200] if text else ""


def _batches(inputs: dict[str, Tensor], names: tuple[str, ...], n: int) -> tuple[Tensor, ...]:
    return tuple(inputs[k][:n] for k in names)


def export_model(
    model: str | Path,
    out: str | Path,
    config: ExportConfig | None = None,
    data: str | Path | None = None,
    overwrite: bool = False,
) -> Artifact:
    """Export the ``model`` artifact at ``model`` into an ``export`` artifact at ``out`` (module docstring).

    ``data``: a features artifact of the model's task (``lrs2-features`` or ``mosei-features``) whose inputs the
    check runs on; without it, seeded random inputs of the right shapes. Raises :class:`ExportError` (nothing
    committed) when a graph does not match PyTorch within ``config.atol``.
    """
    config = config or ExportConfig()
    config.validate()
    onnx_format = config.format == "onnx"
    if onnx_format:
        require("onnx")
        require("onnxruntime")
    loaded = load_model(model)
    if loaded.artifact is None:
        raise UsageError(f"{model}: not a model artifact (a folder with avkd.json); export takes an artifact")
    net = loaded.model.eval()
    specs = graph_specs(net)
    sync = is_sync(net)
    avsiam = isinstance(net, AVSiam)
    if avsiam and data is not None:
        raise UsageError(f"{data}: an AVSiam export is checked on seeded random inputs; drop --data")
    features = None
    if data is not None:
        features = load_artifact(data, kind=LRS2_FEATURES if sync else MOSEI_FEATURES)
    n = max(config.samples, config.trace_batch)
    if avsiam:
        inputs = avsiam_inputs(net, n, config.seed)
    elif sync:
        inputs = sync_inputs(loaded, features, n, config)
    else:
        inputs = mosei_inputs(features, n, config)
    with torch.no_grad():
        if sync:
            inputs["v_emb"] = net.encode_video(inputs["video"])
            inputs["a_emb"] = net.encode_audio(inputs["mel"])
            # The encoders' outputs are sequence-first (T, B, D): batch on axis 1.
            inputs = {k: (v if k in ("video", "mel") else v.transpose(0, 1)) for k, v in inputs.items()}
        logits = _full_forward(net, inputs, sync)
    inputs_source = "features" if features is not None else "random"
    config_json = {**asdict(config), "inputs": inputs_source}
    lineage = [loaded.artifact, *([features] if features is not None else [])]
    with ArtifactWriter(
        out, EXPORT, config_json, inputs=lineage, overwrite=overwrite, resumable=False
    ) as writer:
        graphs: dict[str, Any] = {}
        all_checks: dict[str, tuple[GraphSpec, Checks]] = {}
        for spec in specs:
            trace = _batch_first_to_graph(spec, _batches(inputs, spec.inputs, config.trace_batch))
            checks = []
            for size in sorted({config.samples, 1}, reverse=True):
                feeds = _batch_first_to_graph(spec, _batches(inputs, spec.inputs, size))
                with torch.no_grad():
                    ref = spec.module(*feeds)
                checks.append((feeds, ref))
            if onnx_format:
                graphs[spec.name] = export_graph(
                    spec, trace, checks, writer.path(f"{spec.name}.onnx"), config
                )
            else:
                graphs[spec.name] = export_program(
                    spec, trace, checks, writer.path(f"{spec.name}.pt2"), config
                )
            all_checks[spec.name] = (spec, checks)
        metrics: dict[str, Any] = {
            "parameters": count_parameters(net),
            "inputs": inputs_source,
            "max_abs_diff": {name: g["max_abs_diff"] for name, g in graphs.items()},
            "export_s": round(sum(g["export_s"] for g in graphs.values()), 3),
            "bytes": sum(g["bytes"] for g in graphs.values()),
        }
        if sync:
            if onnx_format:
                composed = _composed(writer.workdir, inputs, config.samples)
            else:
                composed = _composed_programs(writer.workdir, inputs, config.samples)
            diff = _max_diff(composed, logits[: config.samples])
            if diff > config.atol:
                raise ExportError(
                    f"{writer.workdir}: the three graphs composed differ from the model's logits by {diff:.3g} "
                    f"(tolerance {config.atol})"
                )
            metrics["max_abs_diff"]["composed"] = diff
        extra: dict[str, Any] = {"precision": "fp32", "format": config.format}
        if config.quantize == "dynamic":
            quantized = {
                name: quantize_graph(spec, checks, writer.workdir, graphs[name]["file"])
                for name, (spec, checks) in all_checks.items()
            }
            int8 = {name: q["max_abs_diff"] for name, q in quantized.items()}
            if sync:
                composed = _composed(writer.workdir, inputs, config.samples, precision="int8")
                int8["composed"] = _max_diff(composed, logits[: config.samples])
            metrics["int8_max_abs_diff"] = int8
            metrics["int8_bytes"] = sum(q["bytes"] for q in quantized.values())
            extra = {"precision": "int8", "format": config.format, "quantized": quantized}
        return writer.commit(
            metrics=metrics,
            graphs=graphs,
            **extra,
            task="sync" if sync else "avsiam" if avsiam else "emotion",
            **({"input_layout": layout_of(net).name} if sync else {}),
            spec=loaded.spec.to_json(),
        )


def _batch_first_to_graph(spec: GraphSpec, tensors: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Inputs are kept batch-first; put each back on the graph's own batch axis (the embeddings: axis 1)."""
    return tuple(
        t.transpose(0, 1).contiguous() if spec.batch_axes[name] == 1 else t
        for name, t in zip(spec.inputs, tensors, strict=True)
    )


def _full_forward(net: nn.Module, inputs: dict[str, Tensor], sync: bool) -> Tensor:
    if isinstance(net, AVSiam):
        return net(inputs["audio"], inputs["video"])
    if sync:
        return net(inputs["video"], inputs["mel"])
    if isinstance(net, MulTStudent):
        return net(vision=inputs["vision"])
    return net(inputs["text"], inputs["audio"], inputs["vision"])


def _composed(folder: Path, inputs: dict[str, Tensor], n: int, precision: str = "fp32") -> np.ndarray:
    """Logits of the three sync graphs chained in ONNX Runtime: what a runtime without PyTorch computes."""
    suffix = ".int8.onnx" if precision == "int8" else ".onnx"
    v = _run_onnx(folder / f"video_encoder{suffix}", {"video": inputs["video"][:n]})
    a = _run_onnx(folder / f"audio_encoder{suffix}", {"mel": inputs["mel"][:n]})
    return _run_onnx(
        folder / f"fusion_head{suffix}", {"v_emb": torch.from_numpy(v), "a_emb": torch.from_numpy(a)}
    )


def _composed_programs(folder: Path, inputs: dict[str, Tensor], n: int) -> np.ndarray:
    """Logits of the three saved sync programs chained (as :func:`_composed` for ONNX)."""
    with _quiet():  # torch.export.load warns about its read-only buffers
        video, audio, head = (torch.export.load(str(folder / f"{g}.pt2")).module() for g in SYNC_GRAPHS)
    with torch.no_grad():
        return head(video(inputs["video"][:n]), audio(inputs["mel"][:n])).numpy()


def int8_file(fp32_file: str) -> str:
    """``fusion_head.onnx`` → ``fusion_head.int8.onnx``."""
    return fp32_file.removesuffix(".onnx") + ".int8.onnx"


def graph_file(manifest: dict[str, Any], name: str, precision: str) -> str:
    """The file of graph ``name`` at ``precision`` (``fp32`` or ``int8``) in an export's manifest."""
    if precision == "int8":
        return str(manifest["quantized"][name]["file"])
    return str(manifest["graphs"][name]["file"])


@contextlib.contextmanager
def _quiet_root() -> Iterator[None]:
    # quantize_dynamic advises "pre-processing" through the root logger on every call; --json needs quiet.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_graph(spec: GraphSpec, checks: Checks, folder: Path, fp32_file: str) -> dict[str, Any]:
    """Dynamic int8 of one fp32 graph (QInt8 weights of :data:`QUANTIZED_OPS`), checked with ``onnx.checker`` and
    run in ONNX Runtime on the fp32 check inputs; its record: file, bytes, int8 nodes, max |diff| vs PyTorch fp32."""
    onnx = require("onnx")
    quantization = require("onnxruntime.quantization")
    source, target = folder / fp32_file, folder / int8_file(fp32_file)
    start = time.perf_counter()
    with _quiet_root(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantization.quantize_dynamic(
            str(source),
            str(target),
            weight_type=quantization.QuantType.QInt8,
            op_types_to_quantize=list(QUANTIZED_OPS),
        )
    onnx.checker.check_model(str(target), full_check=True)
    seconds = time.perf_counter() - start
    nodes = [n.op_type for n in onnx.load(str(target), load_external_data=False).graph.node]
    diffs = []
    for feeds, ref in checks:
        got = _run_onnx(target, dict(zip(spec.inputs, feeds, strict=True)))
        batch = int(feeds[0].shape[spec.batch_axes[spec.inputs[0]]])
        diffs.append({"batch": batch, "max_abs_diff": _max_diff(got, ref)})
    return {
        "file": target.name,
        "method": "dynamic",
        "weight_type": "QInt8",
        "op_types": list(QUANTIZED_OPS),
        # Linear layers stored in int8 (MatMulInteger) and those left in fp32 (activation x activation MatMuls).
        "int8_matmuls": nodes.count("MatMulInteger"),
        "fp32_matmuls": nodes.count("MatMul") + nodes.count("Gemm"),
        "max_abs_diff": max(d["max_abs_diff"] for d in diffs),
        "checks": diffs,
        "quantize_s": round(seconds, 3),
        "bytes": target.stat().st_size,
    }
