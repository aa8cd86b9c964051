"""``avkd evaluate --task emotion``: an emotion model on a ``mosei-features`` split, into an ``evaluation``
artifact (``metrics.json``, ``metrics.md``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from avkd.core import config as cfg
from avkd.core.artifacts import (
    EVALUATION,
    MOSEI_FEATURES,
    Artifact,
    ArtifactWriter,
    atomic_write_text,
    load_artifact,
)
from avkd.core.config import validate
from avkd.core.errors import UsageError
from avkd.core.progress import ProgressReporter
from avkd.data.mosei.dataset import MoseiDataset
from avkd.evaluate.classify import emotion_metrics
from avkd.models.device import resolve_device
from avkd.models.io import count_parameters
from avkd.models.onnx_model import load_inference_model
from avkd.report.tables import emotion_metrics_table
from avkd.tasks.emotion.config import EMOTION_INPUTS, EmotionEvalConfig
from avkd.tasks.emotion.train import predict

__all__ = ["evaluate_emotion_artifact"]


def _runtime(model: object) -> dict[str, str]:
    """How an export was run (absent for a PyTorch model)."""
    precision = getattr(model, "precision", None)
    return {"runtime": "onnxruntime", "precision": precision} if precision else {}


def evaluate_emotion_artifact(
    config: EmotionEvalConfig,
    model: str | Path,
    features: str | Path,
    out: str | Path,
    label: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    precision: str | None = None,
) -> Artifact:
    """7-class accuracy, F1, binary accuracy/F1 (MulT's convention), MAE, correlation and the majority baseline
    of an emotion model on a ``mosei-features`` split (an AVSiam on ``config.modality``'s inputs), under
    ``config.protocol`` (recorded in ``metrics.json``
    and ``metrics.md``); also its parameter count and milliseconds per batch. ``model``: a model artifact or an
    export artifact (ONNX Runtime at ``precision``, None for the export's default; recorded in the manifest's
    metrics and ``metrics.json``), :mod:`avkd.models.onnx_model`."""
    validate(config)
    device = resolve_device(config.device)
    feats = load_artifact(features, kind=MOSEI_FEATURES)
    loaded = load_inference_model(model, device=device, inputs=EMOTION_INPUTS, precision=precision)
    if config.modality is not None:
        # A model that can run on several inputs (AVSiam's three heads) is scored on the ones asked for.
        if not hasattr(loaded.model, "eval_mode"):
            raise UsageError(
                f"{model}: modality {config.modality!r}: this model has one way to run; leave it unset"
            )
        loaded.model.eval_mode = config.modality
    dataset = MoseiDataset(feats, config.split)
    if len(dataset) == 0:
        raise UsageError(f"{feats.path}: the {dataset.split} split holds no segments; nothing to evaluate")
    train_labels = MoseiDataset(feats, "train").labels()
    label = label or Path(model).name
    inputs = [feats] + ([loaded.artifact] if loaded.artifact else [])
    # metrics.json carries the timing (ms per batch): a log, so evaluating one model twice gives one id; the
    # results themselves enter the id through metrics.md.
    with ArtifactWriter(
        out,
        EVALUATION,
        cfg.to_dict(config),
        inputs=inputs,
        overwrite=overwrite,
        logs=["metrics.json"],
        resumable=False,
    ) as writer:
        start = time.perf_counter()
        with ProgressReporter(len(dataset), f"evaluate {label}", enabled=show_progress) as bar:
            logits, labels = predict(loaded.model, dataset, device, config.batch_size, progress=bar.advance)
        batches = max(1, -(-len(dataset) // config.batch_size))
        ms_per_batch = 1000 * (time.perf_counter() - start) / batches
        result = emotion_metrics(labels, logits=logits, train_labels=train_labels, protocol=config.protocol)
        summary = {
            "label": label,
            "task": "emotion",
            "model": loaded.reference(model),
            "parameters": count_parameters(loaded.model),
            **_runtime(loaded.model),
            "ms_per_batch": ms_per_batch,
            "batch_size": config.batch_size,
            **result.to_json(),
        }
        atomic_write_text(writer.path("metrics.json"), json.dumps(summary, indent=2) + "\n")
        atomic_write_text(writer.path("metrics.md"), emotion_metrics_table(result, label))
        metrics = {
            k: summary[k]
            for k in ("acc7", "f1_weighted", "acc2", "f1_binary", "mae", "corr", "parameters", "ms_per_batch")
        }
        metrics["protocol"] = config.protocol
        metrics.update(_runtime(loaded.model))
        return writer.commit(metrics=metrics, label=label, task="emotion")
