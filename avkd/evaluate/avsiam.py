"""AVSiam on a ``clips-features`` split: cross-modal retrieval and the missing-modality classification table.

Facts: docs/reference/avsiam-mfh-syncnet.md §1.8 (fine-tuning evaluation averages the logits of the 10 frames),
§1.9 (the released ``src/retrieval.py``) and §1.10 (the missing-modality comparison).

* **Retrieval** (§1.9): F_a, F_v mean-pooled over tokens (:meth:`~avkd.models.avsiam.AVSiam.encode_audio` /
  ``encode_video``, the middle stored frame, as released), L2-normalised; S = F_a F_vᵀ, one row per query. A→V
  ranks the row of S, V→A the row of Sᵀ. The rank of query i is the number of candidates scored strictly higher
  than its true partner: a tie is resolved in favour of the true item (the release sorts −S, where the order of
  equal scores is the sort's). R@k = P(rank < k); MR = the median of rank + 1 (``np.median`` of 1-based ranks,
  so an even count averages the two middle ranks, as released).
* **Classification** under each input mode: ``av`` (fusion head), ``a`` (audio only), ``v`` (video only).
  Single-label: top-1 accuracy; multi-label: mAP, the mean over classes with at least one positive of the average
  precision (the mean, over the positives, of the precision at each positive's place in the descending order;
  equal scores keep the clips' order, a stable sort).
* Video logits are the mean of the logits of every stored frame (``frames="mean"``, the released evaluation) or
  the middle frame's (``"middle"``).

:func:`evaluate_clips_artifact` is the stage (``avkd evaluate --model M --data CLIPS_FEATURES``): an ``evaluation``
artifact whose ``metrics.json`` and manifest metrics name ``a2v_r@1``, ``v2a_r@5``, ``a2v_mr`` …,
``acc_av`` / ``acc_audio_only`` / ``acc_video_only`` (or ``map_*`` for a multi-label corpus), the clip count,
the chance levels and the model's parameter count. The throughput of the evaluation pass (clips/s: every clip
through the three heads and both encoders) is a measurement of the machine, so it is kept out of the artifact's id
as the sync evaluator keeps its own: it goes to ``timing.json`` (a log file) and the manifest's metrics
(``clips_per_second``), never into ``metrics.json`` or ``metrics.md``. The manifest records the task,
``avsiam``, so that ``avkd report`` finds the avsiam report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from avkd.core import config as cfg
from avkd.core.artifacts import (
    CLIPS_FEATURES,
    EVALUATION,
    Artifact,
    ArtifactWriter,
    atomic_write_text,
    load_artifact,
)
from avkd.core.config import bounded, validate
from avkd.core.errors import UsageError
from avkd.core.progress import ProgressReporter
from avkd.data.clips.dataset import ClipDataset
from avkd.data.clips.store import ClipStore
from avkd.models.device import device_problem, resolve_device
from avkd.models.io import count_parameters, load_model

__all__ = [
    "MODE_NAMES",
    "TIMING",
    "ClipsEvalConfig",
    "average_precision",
    "clip_outputs",
    "evaluate_clips_artifact",
    "per_class_subset",
    "retrieval_metrics",
    "retrieval_ranks",
]

#: The metric suffix of each forward mode (the missing-modality table's columns).
MODE_NAMES = {"av": "av", "a": "audio_only", "v": "video_only"}
#: Recall cut-offs of the released retrieval (§1.9).
RECALL_AT = (1, 5, 10)
#: The evaluation pass's wall time and clips/s: a log file of the artifact (out of its id).
TIMING = "timing.json"


@dataclass
class ClipsEvalConfig:
    split: str = "test"
    #: Only this many clips of each class (the released "5 per class" retrieval sets, §1.9), drawn with ``seed``;
    #: None: the whole split.
    per_class: int | None = bounded(None, ge=1)
    seed: int = 0
    #: Video logits: the mean over every stored frame (the released evaluation) or the middle frame's.
    frames: Literal["mean", "middle"] = "mean"
    batch_size: int = bounded(16, ge=1)
    device: str = bounded("cpu", check=device_problem)


# ------------------------------------------------------------------------------------------------- metrics


def retrieval_ranks(sim: Tensor) -> Tensor:
    """0-based rank of each row's diagonal item of an (N, N) similarity matrix: the number of the row's items
    strictly greater than it (ties in favour of the true item)."""
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"a square similarity matrix is needed, got {tuple(sim.shape)}")
    return (sim > sim.diagonal().unsqueeze(1)).sum(dim=1)


def retrieval_metrics(sim: Tensor, prefix: str) -> dict[str, float]:
    """``{prefix}r@1``, ``r@5``, ``r@10`` (fractions) and ``{prefix}mr`` (median 1-based rank) of the rows of
    ``sim`` (queries × candidates, the true candidate on the diagonal)."""
    ranks = retrieval_ranks(sim).cpu().numpy()
    out = {f"{prefix}r@{k}": float(np.mean(ranks < k)) for k in RECALL_AT}
    out[f"{prefix}mr"] = float(np.median(ranks + 1))
    return out


def average_precision(scores: Tensor, labels: Tensor) -> Tensor:
    """Per-class average precision (C,) of (N, C) scores against (N, C) 0/1 labels, NaN for a class with no
    positive: for each class, the mean over its positives of the precision at the positive's place in the
    descending (stable) order of its scores."""
    order = torch.argsort(scores, dim=0, descending=True, stable=True)
    hits = torch.gather(labels.float(), 0, order)
    precision = hits.cumsum(0) / torch.arange(1, len(scores) + 1, device=scores.device).unsqueeze(1)
    positives = hits.sum(0)
    return (precision * hits).sum(0) / positives.where(positives > 0, torch.tensor(float("nan")))


def mean_average_precision(scores: Tensor, labels: Tensor) -> float:
    """The mean AP over the classes with at least one positive."""
    ap = average_precision(scores, labels)
    return float(ap[~ap.isnan()].mean()) if (~ap.isnan()).any() else float("nan")


def per_class_subset(labels: Tensor, k: int, seed: int) -> list[int]:
    """Indices of ``k`` clips per class (all of a class with fewer), drawn with ``seed``, in index order. A
    multi-label clip counts for its first class."""
    first = labels.argmax(dim=1) if labels.ndim == 2 else labels
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for c in torch.unique(first).tolist():
        members = torch.nonzero(first == c).flatten().numpy()
        chosen.extend(rng.permutation(members)[:k].tolist())
    return sorted(chosen)


# ------------------------------------------------------------------------------------------------ inference


def clip_outputs(
    model: torch.nn.Module,
    dataset: Dataset,
    device: torch.device,
    batch_size: int,
    modes: tuple[str, ...] = ("av", "a", "v"),
    frames: str = "mean",
    features: bool = False,
    progress: Callable[[int], Any] | None = None,
) -> dict[str, Tensor]:
    """Logits of each of ``modes`` (``logits_av`` …, video logits averaged over the stored frames or from the
    middle one), ``labels`` and, with ``features``, F_a and F_v of the middle frame (``feat_a``, ``feat_v``), over
    a dataset whose items are (fbank (1, F, T), frames (K, 3, S, S), label); on the CPU."""
    out: dict[str, list[Tensor]] = {}

    def put(key: str, value: Tensor) -> None:
        out.setdefault(key, []).append(value.float().cpu())

    was_training = model.training
    model.eval()
    with torch.no_grad():
        for audio, video, labels in DataLoader(dataset, batch_size=batch_size):
            audio, video = audio.to(device), video.to(device)
            b, k = video.shape[:2]
            middle = video[:, k // 2]
            # Every stored frame as its own sample: (B·K, 3, S, S), audio repeated to match.
            stack = video.flatten(0, 1) if frames == "mean" else middle
            reps = k if frames == "mean" else 1
            for mode in modes:
                if mode == "a":
                    logits = model(audio, None, mode="a")
                else:
                    a = audio.repeat_interleave(reps, dim=0) if mode == "av" else None
                    logits = model(a, stack, mode=mode).view(b, reps, -1).mean(dim=1)
                put(f"logits_{mode}", logits)
            if features:
                put("feat_a", model.encode_audio(audio))
                put("feat_v", model.encode_video(middle))
            out.setdefault("labels", []).append(labels.cpu())  # int64 classes or a float multi-hot
            if progress is not None:
                progress(b)
    model.train(was_training)
    return {key: torch.cat(values) for key, values in out.items()}


def classification_metrics(outputs: dict[str, Tensor], multi_label: bool) -> dict[str, float]:
    """``acc_<mode>`` (single-label) or ``map_<mode>`` (multi-label) for every ``logits_<mode>`` of
    :func:`clip_outputs`, named by :data:`MODE_NAMES`."""
    labels, metrics = outputs["labels"], {}
    for mode, name in MODE_NAMES.items():
        logits = outputs.get(f"logits_{mode}")
        if logits is None:
            continue
        if multi_label:
            metrics[f"map_{name}"] = mean_average_precision(logits, labels)
        else:
            metrics[f"acc_{name}"] = float((logits.argmax(dim=1) == labels).float().mean())
    return metrics


# ------------------------------------------------------------------------------------------------- the stage


def _table(metrics: dict[str, Any], label: str) -> str:
    keys = [k for k in metrics if k.startswith(("a2v_", "v2a_", "acc_", "map_"))]
    head = "| model | " + " | ".join(keys) + " |"
    rule = "|---" * (len(keys) + 1) + "|"
    row = f"| {label} | " + " | ".join(f"{metrics[k]:.4f}" for k in keys) + " |"
    return "\n".join([head, rule, row]) + "\n"


def evaluate_clips_artifact(
    config: ClipsEvalConfig,
    model: str | Path,
    features: str | Path,
    out: str | Path,
    label: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    precision: str | None = None,
) -> Artifact:
    """Retrieval A→V and V→A (R@1/5/10, median rank) and accuracy (or mAP) under ``av``, audio-only and
    video-only inputs of an ``avsiam`` model artifact on a ``clips-features`` split, into an ``evaluation``
    artifact (``metrics.json``, ``metrics.md``; ``timing.json``, a log). ``precision`` is the export option of
    the other evaluators: an avsiam model is evaluated in PyTorch only, so any value is refused."""
    if precision is not None:
        raise UsageError(
            f"--precision {precision}: only for an ONNX export; clips features are evaluated with an avsiam "
            "model artifact in PyTorch"
        )
    validate(config)
    device = resolve_device(config.device)
    feats = load_artifact(features, kind=CLIPS_FEATURES)
    loaded = load_model(model, device=device)
    if loaded.spec.name != "avsiam":
        raise UsageError(f"{model}: a {loaded.spec.name!r} model; clips features are evaluated with avsiam")
    store = ClipStore(feats)
    try:
        dataset = ClipDataset(store, config.split)
        if loaded.model.head.out_features != dataset.num_classes:
            raise UsageError(
                f"{model}: {loaded.model.head.out_features} classes, {feats.path} has {dataset.num_classes}"
            )
        labels = torch.stack([dataset.label(i) for i in range(len(dataset))])
        index = list(range(len(dataset)))
        if config.per_class is not None:
            index = per_class_subset(labels, config.per_class, config.seed)
        subset = Subset(dataset, index)
        label = label or Path(model).name
        with ArtifactWriter(
            out,
            EVALUATION,
            cfg.to_dict(config),
            inputs=[feats, *([loaded.artifact] if loaded.artifact else [])],
            overwrite=overwrite,
            resumable=False,
            logs=[TIMING],
        ) as writer:
            started = time.perf_counter()
            with ProgressReporter(len(subset), f"evaluate {label}", enabled=show_progress) as bar:
                outputs = clip_outputs(
                    loaded.model,
                    subset,
                    device,
                    config.batch_size,
                    frames=config.frames,
                    features=True,
                    progress=bar.advance,
                )
            seconds = time.perf_counter() - started
            fa = torch.nn.functional.normalize(outputs["feat_a"], dim=1)
            fv = torch.nn.functional.normalize(outputs["feat_v"], dim=1)
            sim = fa @ fv.T
            n = len(subset)
            metrics: dict[str, Any] = {
                **retrieval_metrics(sim, "a2v_"),
                **retrieval_metrics(sim.T, "v2a_"),
                **classification_metrics(outputs, dataset.multi_label),
                "clips": n,
                "classes": dataset.num_classes,
                "chance_r@1": 1.0 / n,
                "split": config.split,
                "parameters": count_parameters(loaded.model),
            }
            if not dataset.multi_label:
                counts = torch.bincount(outputs["labels"], minlength=dataset.num_classes)
                metrics["chance_acc"] = float(counts.max()) / n  # the majority class of the evaluated clips
            summary = {"label": label, "task": "avsiam", "model": loaded.reference(model), **metrics}
            atomic_write_text(writer.path("metrics.json"), json.dumps(summary, indent=2) + "\n")
            atomic_write_text(writer.path("metrics.md"), _table(metrics, label))
            speed = {
                "seconds": seconds,
                "clips": n,
                "clips_per_second": n / seconds if seconds > 0 else None,
                "batch_size": config.batch_size,
                "device": str(device),
                "torch_threads": torch.get_num_threads(),
            }
            atomic_write_text(writer.path(TIMING), json.dumps(speed, indent=2) + "\n")
            # The manifest's metrics are not part of the id: the speed can sit beside the results there.
            return writer.commit(
                metrics={**metrics, "clips_per_second": speed["clips_per_second"]}, label=label, task="avsiam"
            )
    finally:
        store.close()
