"""``avkd evaluate``: a model artifact on a features split, into an ``evaluation`` artifact.

The artifact holds ``accuracy.json`` (the table and the protocol), ``accuracy.md``, ``clips.jsonl`` (accuracy
per clip and K) and, with ``save_scores``, ``scores.npz`` (each clip's score matrix D, windows x 31, NaN =
excluded candidate), from which every number can be recomputed with :func:`avkd.evaluate.sync.clip_accuracy`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avkd.core import config as cfg
from avkd.core.artifacts import (
    EVALUATION,
    LRS2_FEATURES,
    Artifact,
    ArtifactWriter,
    atomic_write_text,
    load_artifact,
)
from avkd.core.config import validate
from avkd.core.errors import ArtifactError, UsageError
from avkd.core.jsonl import jsonl_text
from avkd.core.progress import ProgressReporter
from avkd.data.lrs2.store import FeatureStore
from avkd.data.splits import canonical_split
from avkd.evaluate.retrieval import PROTOCOLS, evaluate_sync
from avkd.models.device import resolve_device
from avkd.models.io import count_parameters, load_model
from avkd.report.tables import sync_evaluation_table
from avkd.tasks.sync.config import SYNC_INPUTS, SyncEvalConfig

__all__ = ["clips_of", "evaluate_sync_artifact"]


def clips_of(store: FeatureStore, split: str, where: Path) -> list[str]:
    """The clips of ``split``; a split the features do not have (or hold no clip of) is refused before any work."""
    split = canonical_split(split)
    keys = store.keys(split)
    if not keys:
        present = sorted({row["split"] for row in store.entries.values()})
        raise UsageError(
            f"{where}: no {split!r} clips in these features (splits with clips: {', '.join(present) or 'none'})"
        )
    return keys


def evaluate_sync_artifact(
    config: SyncEvalConfig,
    model: str | Path,
    features: str | Path,
    out: str | Path,
    label: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> Artifact:
    """Run the 31-candidate protocol (docs/reference/vocalist.md §4) and write the evaluation artifact."""
    validate(config)
    if config.protocol not in PROTOCOLS:
        raise UsageError(f"--protocol {config.protocol!r}: choose {' or '.join(PROTOCOLS)}")
    device = resolve_device(config.device)
    feats = load_artifact(features, kind=LRS2_FEATURES)
    loaded = load_model(model, device=device, inputs=SYNC_INPUTS)
    inputs = [feats] + ([loaded.artifact] if loaded.artifact else [])
    store = FeatureStore(feats)
    keys = clips_of(store, config.split, feats.path)
    if config.limit is not None:
        keys = keys[: config.limit]
    label = label or Path(model).name
    with ArtifactWriter(
        out, EVALUATION, cfg.to_dict(config), inputs=inputs, overwrite=overwrite, resumable=False
    ) as writer:
        with ProgressReporter(len(keys), f"evaluate {label}", enabled=show_progress) as bar:
            result = evaluate_sync(
                loaded.model,
                store,
                config.split,
                config.frames,
                keys=keys,
                keep_scores=config.save_scores,
                batch_size=config.batch_size,
                device=device,
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
            "model": loaded.reference(model),
            "parameters": count_parameters(loaded.model),
            **table,
        }
        atomic_write_text(writer.path("accuracy.json"), json.dumps(summary, indent=2) + "\n")
        atomic_write_text(writer.path("accuracy.md"), sync_evaluation_table(result, label))
        atomic_write_text(writer.path("clips.jsonl"), jsonl_text(clips))
        if config.save_scores:
            np.savez_compressed(writer.path("scores.npz"), **{c.key: c.scores for c in result.clips})
        store.close()
        if not result.clips:
            raise ArtifactError(
                f"{feats.path}: none of the {len(keys)} {config.split} clips is long enough to evaluate "
                f"(5 frames or more); nothing was written"
            )
        metrics = {
            "accuracy": summary["accuracy"],
            "clips": summary["clips_evaluated"],
            "skipped": len(summary["skipped"]),
            "parameters": summary["parameters"],
        }
        return writer.commit(metrics=metrics, label=label, task="sync")
