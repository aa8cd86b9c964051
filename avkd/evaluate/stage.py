"""``avkd evaluate``: a model artifact on a features split, into an ``evaluation`` artifact.

The artifact holds ``accuracy.json`` (the table and the protocol), ``accuracy.md``, ``clips.jsonl`` (accuracy
per clip and K) and, with ``save_scores``, ``scores.npz`` (each clip's score matrix D, windows x 31, NaN =
excluded candidate), from which every number can be recomputed with :func:`avkd.evaluate.sync.clip_accuracy`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avkd import config as cfg
from avkd.artifacts import Artifact, ArtifactWriter, atomic_write_text, load_artifact, register_kind
from avkd.data.preprocess import KIND as FEATURES_KIND
from avkd.data.store import FeatureStore, jsonl_text
from avkd.errors import UsageError
from avkd.evaluate.sync import PROTOCOLS, evaluate_sync
from avkd.models.io import count_parameters, load_model
from avkd.progress import ProgressReporter

KIND = "evaluation"
register_kind(KIND, 1)


@dataclass
class SyncEvalConfig:
    split: str = "test"
    frames: list[int] = field(default_factory=lambda: [5, 7, 9, 11, 13, 15])
    tolerance: int = 1
    batch_size: int = 512
    device: str = "cpu"
    amp: bool = True
    #: Evaluate only the first ``limit`` clips of the split (a quick look).
    limit: int | None = None
    save_scores: bool = False
    #: "avkd" (all N−4 windows, out-of-range candidates excluded) or "reference" (the official script's
    #: arithmetic, for comparison with published numbers; :mod:`avkd.evaluate.reference_protocol`).
    protocol: str = "avkd"


def evaluate_sync_artifact(
    config: SyncEvalConfig,
    model: str | Path,
    features: str | Path,
    out: str | Path,
    label: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> Artifact:
    """Run the 31-candidate protocol (reference §4) and write the evaluation artifact."""
    if config.protocol not in PROTOCOLS:
        raise UsageError(f"--protocol {config.protocol!r}: choose {' or '.join(PROTOCOLS)}")
    feats = load_artifact(features, kind=FEATURES_KIND)
    loaded = load_model(model, device=config.device)
    inputs = [feats] + ([loaded.artifact] if loaded.artifact else [])
    store = FeatureStore(feats)
    keys = store.keys(config.split)
    if config.limit is not None:
        keys = keys[: config.limit]
    label = label or Path(model).name
    with ArtifactWriter(out, KIND, cfg.to_dict(config), inputs=inputs, overwrite=overwrite) as writer:
        with ProgressReporter(len(keys), f"evaluate {label}", enabled=show_progress) as bar:
            result = evaluate_sync(
                loaded.model,
                store,
                config.split,
                config.frames,
                keys=keys,
                keep_scores=config.save_scores,
                batch_size=config.batch_size,
                device=config.device,
                amp=config.amp,
                pixel_order=loaded.spec.pixel_order,
                pixel_range=loaded.spec.pixel_range,
                tolerance=config.tolerance,
                protocol=config.protocol,
                progress=lambda n: bar.advance(n),
            )
        table = result.to_json()
        clips = table.pop("clips")
        summary = {
            "label": label,
            "model": loaded.artifact.ref() if loaded.artifact else {"path": str(model)},
            "parameters": count_parameters(loaded.model),
            **table,
        }
        atomic_write_text(writer.path("accuracy.json"), json.dumps(summary, indent=2) + "\n")
        atomic_write_text(writer.path("accuracy.md"), result.table_markdown(label))
        atomic_write_text(writer.path("clips.jsonl"), jsonl_text(clips))
        if config.save_scores:
            np.savez_compressed(writer.path("scores.npz"), **{c.key: c.scores for c in result.clips})
        store.close()
        metrics = {
            "accuracy": summary["accuracy"],
            "clips": summary["clips_evaluated"],
            "skipped": len(summary["skipped"]),
            "parameters": summary["parameters"],
        }
        return writer.commit(metrics=metrics, label=label)


@dataclass
class EmotionEvalConfig:
    split: str = "test"
    batch_size: int = 24
    device: str = "cpu"


def evaluate_emotion_artifact(
    config: EmotionEvalConfig,
    model: str | Path,
    features: str | Path,
    out: str | Path,
    label: str | None = None,
    overwrite: bool = False,
) -> Artifact:
    """7-class accuracy, F1, binary accuracy/F1 (MulT's convention), MAE, correlation and the majority baseline
    of an emotion model on a ``mosei-features`` split; also its parameter count and milliseconds per batch."""
    import time

    from avkd.data.mosei import KIND as MOSEI_KIND
    from avkd.data.mosei import MoseiDataset
    from avkd.evaluate.classify import emotion_metrics
    from avkd.train.emotion import predict
    from avkd.train.loop import resolve_device

    feats = load_artifact(features, kind=MOSEI_KIND)
    loaded = load_model(model, device=config.device)
    dataset = MoseiDataset(feats, config.split)
    train_labels = MoseiDataset(feats, "train").labels()
    label = label or Path(model).name
    inputs = [feats] + ([loaded.artifact] if loaded.artifact else [])
    # metrics.json carries the timing (ms per batch): a log, so evaluating one model twice gives one id; the
    # results themselves enter the id through metrics.md.
    with ArtifactWriter(
        out, KIND, cfg.to_dict(config), inputs=inputs, overwrite=overwrite, logs=["metrics.json"]
    ) as writer:
        start = time.perf_counter()
        logits, labels = predict(loaded.model, dataset, resolve_device(config.device), config.batch_size)
        batches = max(1, -(-len(dataset) // config.batch_size))
        ms_per_batch = 1000 * (time.perf_counter() - start) / batches
        result = emotion_metrics(labels, logits=logits, train_labels=train_labels)
        summary = {
            "label": label,
            "task": "mosei",
            "model": loaded.artifact.ref() if loaded.artifact else {"path": str(model)},
            "parameters": count_parameters(loaded.model),
            "ms_per_batch": ms_per_batch,
            "batch_size": config.batch_size,
            **result.to_json(),
        }
        atomic_write_text(writer.path("metrics.json"), json.dumps(summary, indent=2) + "\n")
        atomic_write_text(writer.path("metrics.md"), result.table_markdown(label))
        metrics = {
            k: summary[k]
            for k in ("acc7", "f1_weighted", "acc2", "f1_binary", "mae", "corr", "parameters", "ms_per_batch")
        }
        return writer.commit(metrics=metrics, label=label, task="mosei")
