"""``avkd evaluate``: a model artifact on a features split, into an ``evaluation`` artifact.

The artifact holds ``accuracy.json`` (the table and the protocol), ``accuracy.md``, ``clips.jsonl`` (accuracy
per clip and K) and, with ``save_scores``, ``scores.npz`` (each clip's score matrix D, windows x 31, NaN =
excluded candidate), from which every number can be recomputed with :func:`avkd.evaluate.sync.clip_accuracy`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

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
from avkd.data.lrs2.layouts import FRAMES, layout_of
from avkd.data.lrs2.store import FeatureStore
from avkd.data.splits import canonical_split
from avkd.evaluate.cost import Throughput, window_gmacs
from avkd.evaluate.retrieval import PROTOCOLS, evaluate_sync
from avkd.models.device import resolve_device
from avkd.models.io import count_parameters
from avkd.models.onnx_model import load_inference_model
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


def _runtime(model: object) -> dict[str, str]:
    """How an export was run (absent for a PyTorch model, so its results, and their id, are as before)."""
    precision = getattr(model, "precision", None)
    return {"runtime": "onnxruntime", "precision": precision} if precision else {}


#: The evaluation's wall time and throughput (:class:`avkd.evaluate.cost.Throughput`): a log of how the run went
#: (machine-dependent), outside the content id, so the same results keep the same id however fast they ran.
TIMING = "timing.json"


def _gmacs(loaded: Any, store: FeatureStore, keys: list[str], layout: Any) -> dict[str, float] | None:
    """GMACs of one window of the first clip long enough for one (:func:`avkd.evaluate.cost.window_gmacs`)."""
    for key in keys:
        info = store.info(key)
        if layout.clip_windows(info) > 0:
            crops = store.frames(key, 0, FRAMES)
            audio = layout.clip_audio(store, key)
            return window_gmacs(loaded.model, crops, audio, loaded.spec.pixel_order, loaded.spec.pixel_range)
    return None


def _cost(gmacs: dict[str, float] | None) -> dict[str, float | None]:
    return {
        "gmacs_per_window": gmacs["pair"] if gmacs else None,
        "gmacs_per_window_scored": gmacs["scored"] if gmacs else None,
    }


def evaluate_sync_artifact(
    config: SyncEvalConfig,
    model: str | Path,
    features: str | Path,
    out: str | Path,
    label: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    precision: str | None = None,
) -> Artifact:
    """Run the 31-candidate protocol (docs/reference/vocalist.md §4) and write the evaluation artifact.

    ``model``: a model artifact (PyTorch) or an export artifact (ONNX Runtime, at ``precision``: ``fp32``,
    ``int8`` or None for the export's default; recorded in ``accuracy.json``), :mod:`avkd.models.onnx_model`."""
    validate(config)
    if config.protocol not in PROTOCOLS:
        raise UsageError(f"--protocol {config.protocol!r}: choose {' or '.join(PROTOCOLS)}")
    device = resolve_device(config.device)
    feats = load_artifact(features, kind=LRS2_FEATURES)
    loaded = load_inference_model(model, device=device, inputs=SYNC_INPUTS, precision=precision)
    inputs = [feats] + ([loaded.artifact] if loaded.artifact else [])
    store = FeatureStore(feats)
    keys = clips_of(store, config.split, feats.path)
    if config.limit is not None:
        keys = keys[: config.limit]
    # A model's crop size (SyncNet: 224x224) is checked on the first frame, before any work.
    layout = layout_of(loaded.model)
    layout.check_crops(store.frames(keys[0], 0, 1), str(feats.path))
    label = label or Path(model).name
    with ArtifactWriter(
        out,
        EVALUATION,
        cfg.to_dict(config),
        inputs=inputs,
        overwrite=overwrite,
        resumable=False,
        logs=[TIMING],
    ) as writer:
        gmacs = _gmacs(loaded, store, keys, layout)
        started = time.perf_counter()
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
        speed = Throughput(
            time.perf_counter() - started, sum(c.windows for c in result.clips), len(result.clips)
        )
        table = result.to_json()
        clips = table.pop("clips")
        summary = {
            "label": label,
            "model": loaded.reference(model),
            "parameters": count_parameters(loaded.model),
            **_cost(gmacs),
            **_runtime(loaded.model),
            **table,
        }
        atomic_write_text(writer.path("accuracy.json"), json.dumps(summary, indent=2) + "\n")
        atomic_write_text(writer.path("accuracy.md"), sync_evaluation_table(result, label))
        atomic_write_text(writer.path("clips.jsonl"), jsonl_text(clips))
        timing = {**speed.to_json(), "device": str(device)}
        atomic_write_text(writer.path(TIMING), json.dumps(timing, indent=2) + "\n")
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
            **_cost(gmacs),
            "windows_per_second": speed.windows_per_second,
            "clips_per_second": speed.clips_per_second,
            **_runtime(loaded.model),
        }
        return writer.commit(metrics=metrics, label=label, task="sync")
