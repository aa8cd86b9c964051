"""An ``export`` artifact run in ONNX Runtime behind the interface avkd's evaluators call (issue 17, parts 2 and 4).

The evaluators and ``avkd sync`` take what :func:`load_inference_model` returns, a model artifact (PyTorch) or an
export artifact (ONNX Runtime), through one code path:

* **sync** (:class:`OnnxSyncModel`): ``encode_video`` (B, 15, 48, 96) → (T, B, D), ``encode_audio``
  (B, 1, 80, 16) → (T_a, B, D) and ``fuse`` (v_emb, a_emb) → logits (B,), the three calls of the evaluator's fast
  path (:func:`avkd.evaluate.sync.score_clip_and_silence`), each one graph of the export
  (:mod:`avkd.models.export`); ``forward(video, mel)`` chains them (the naive path).
* **emotion** (:class:`OnnxEmotionModel`): ``forward(text, audio, vision)`` → logits (B, 7), what
  :func:`avkd.tasks.emotion.train.predict` calls; the video-only student's graph takes ``vision`` alone.

Tensors go in and come out as torch tensors (through numpy, on the CPU; results are moved back to the inputs'
device), so the callers do not change. The graphs' sequence lengths are fixed at the traced ones: an input of
another shape is refused with one line naming the export.

**Precision.** An export made with ``--quantize dynamic`` holds int8 graphs beside the fp32 ones and names int8
its default (``precision`` in the manifest); :func:`load_export` takes ``precision=`` to choose the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from avkd.core.artifacts import EXPORT, MODEL, Artifact, load_artifact, read_manifest
from avkd.core.errors import UsageError
from avkd.models.export import SYNC_GRAPHS, graph_file, require
from avkd.models.io import LoadedModel, ModelSpec, load_model

__all__ = [
    "PRECISIONS",
    "OnnxEmotionModel",
    "OnnxSyncModel",
    "load_export",
    "load_inference_model",
    "ort_session",
    "providers_for",
]

PRECISIONS = ("fp32", "int8")
#: What each task's evaluator feeds (the tasks' SYNC_INPUTS / EMOTION_INPUTS); an export of the other task is
#: refused before any work.
_TASK_INPUTS = {"sync": ("video", "mel"), "emotion": ("text", "audio", "vision")}


def providers_for(device: torch.device) -> list[str]:
    """ONNX Runtime execution providers for ``device``: CUDA first where the installed runtime has it."""
    ort = require("onnxruntime")
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise UsageError(
                "device cuda: this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def ort_session(path: Path, providers: Sequence[str] = ("CPUExecutionProvider",), threads: int = 0) -> Any:
    """An ``InferenceSession`` of ``path``; ``threads`` sets ``intra_op_num_threads`` (0: ONNX Runtime's default,
    one per physical core)."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    # One operator at a time: the intra-op pool is then the only parallelism, so `threads` is what is used.
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=list(providers))


class _OnnxModule(nn.Module):
    """Sessions of an export's graphs; no parameters (``recorded_parameters`` is the source model's count)."""

    def __init__(
        self, sessions: Mapping[str, Any], where: Path, recorded_parameters: int, precision: str
    ) -> None:
        super().__init__()
        self.sessions = dict(sessions)
        self.where = where
        self.recorded_parameters = recorded_parameters
        self.precision = precision
        self._shapes = {name: {i.name: i.shape for i in s.get_inputs()} for name, s in self.sessions.items()}

    def _run(self, graph: str, feeds: Mapping[str, Tensor]) -> Tensor:
        arrays = {}
        for name, tensor in feeds.items():
            expected = self._shapes[graph][name]
            shape = tuple(tensor.shape)
            if len(shape) != len(expected) or any(
                isinstance(e, int) and e != s for e, s in zip(expected, shape, strict=False)
            ):
                raise UsageError(
                    f"{self.where}: graph {graph!r} takes {name} of shape "
                    f"{tuple(e if isinstance(e, int) else 'B' for e in expected)}, got {shape} (the export's "
                    "lengths are fixed at the traced ones)"
                )
            arrays[name] = np.ascontiguousarray(tensor.detach().float().cpu().numpy())
        out = self.sessions[graph].run(None, arrays)[0]
        device = next(iter(feeds.values())).device
        return torch.from_numpy(out).to(device)


class OnnxSyncModel(_OnnxModule):
    """A sync export's three graphs as a module with the methods the sync evaluator calls; ``input_layout`` is
    the source model's (the manifest's, so :func:`avkd.data.lrs2.layouts.layout_of` cuts its windows)."""

    input_layout = "vocalist"

    def encode_video(self, video: Tensor) -> Tensor:
        return self._run("video_encoder", {"video": video})

    def encode_audio(self, mel: Tensor) -> Tensor:
        return self._run("audio_encoder", {"mel": mel})

    def fuse(self, v_emb: Tensor, a_emb: Tensor) -> Tensor:
        return self._run("fusion_head", {"v_emb": v_emb, "a_emb": a_emb})

    def forward(self, video: Tensor, mel: Tensor) -> Tensor:
        return self.fuse(self.encode_video(video), self.encode_audio(mel))


class OnnxEmotionModel(_OnnxModule):
    """A MulT export's graph as a module with the forward the emotion evaluator calls."""

    def forward(
        self, text: Tensor | None = None, audio: Tensor | None = None, vision: Tensor | None = None
    ) -> Tensor:
        given = {"text": text, "audio": audio, "vision": vision}
        names = list(self._shapes["model"])
        missing = [n for n in names if given[n] is None]
        if missing:
            raise UsageError(
                f"{self.where}: the graph takes {', '.join(names)}; {', '.join(missing)} not given"
            )
        return self._run("model", {n: given[n] for n in names})  # type: ignore[misc]


def export_precision(art: Artifact, precision: str | None) -> str:
    """The precision to run: ``precision`` if given (it must be in the export), else the export's default."""
    default = str(art.manifest.get("precision", "fp32"))
    chosen = precision or default
    if chosen not in PRECISIONS:
        raise UsageError(f"precision {chosen!r}: choose {' or '.join(PRECISIONS)}")
    if chosen == "int8" and not art.manifest.get("quantized"):
        raise UsageError(f"{art.path}: holds no int8 graphs; export it with --quantize dynamic")
    return chosen


def load_export(
    path: str | Path,
    device: str | torch.device = "cpu",
    precision: str | None = None,
    threads: int = 0,
    inputs: Sequence[str] | None = None,
) -> LoadedModel:
    """An ``export`` artifact as a :class:`LoadedModel` whose ``model`` runs in ONNX Runtime; its ``artifact`` is
    the export (so an evaluation records the export as its input) and its ``spec`` the source model's.

    ``inputs``: the forward inputs the caller feeds (a task's); an export of the other task is a usage error.
    """
    art = load_artifact(path, kind=EXPORT)
    if art.manifest.get("format", "onnx") != "onnx":
        raise UsageError(
            f"{art.path}: a {art.manifest['format']} export (torch.export .pt2 programs); avkd evaluate, sync and "
            "bench run ONNX exports: make one with avkd export --format onnx"
        )
    require("onnxruntime")
    task = str(art.manifest.get("task"))
    if inputs is not None and _TASK_INPUTS.get(task, ())[: len(inputs)] != tuple(inputs):
        raise UsageError(
            f"{art.path}: an export of a {task} model; this stage feeds ({', '.join(inputs)}): another "
            "task's export?"
        )
    chosen = export_precision(art, precision)
    dev = torch.device(device)
    providers = providers_for(dev)
    graphs = art.manifest["graphs"]
    if task == "sync" and set(graphs) != set(SYNC_GRAPHS):
        raise UsageError(
            f"{art.path}: a sync export needs graphs {', '.join(SYNC_GRAPHS)}; has {', '.join(graphs)}"
        )
    files = {name: graph_file(art.manifest, name, chosen) for name in graphs}
    sessions = {name: ort_session(art.file(file), providers, threads) for name, file in files.items()}
    parameters = int(art.metrics.get("parameters", 0))
    cls = OnnxSyncModel if task == "sync" else OnnxEmotionModel
    model = cls(sessions, art.path, parameters, chosen)
    if task == "sync":  # exports older than the field are VocaLiST's
        model.input_layout = str(art.manifest.get("input_layout", "vocalist"))
    spec = art.manifest["spec"]
    return LoadedModel(model.eval(), ModelSpec(**spec), art)


def load_inference_model(
    path: str | Path,
    device: str | torch.device = "cpu",
    inputs: Sequence[str] | None = None,
    precision: str | None = None,
) -> LoadedModel:
    """What ``avkd evaluate --model`` and ``avkd sync --model`` take: an ``export`` artifact (ONNX Runtime,
    :func:`load_export`), else a ``model`` artifact or a bare ``model.pt`` (PyTorch,
    :func:`avkd.models.io.load_model`)."""
    path = Path(path)
    if (path / "avkd.json").is_file() and read_manifest(path).get("kind") == EXPORT:
        return load_export(path, device, precision=precision, inputs=inputs)
    if precision not in (None, "fp32"):
        raise UsageError(f"{path}: precision {precision!r} needs an export artifact (a {MODEL} runs in fp32)")
    return load_model(path, device=device, inputs=inputs)
