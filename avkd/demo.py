"""The demo chain as a library function: synthetic corpus -> features -> teacher -> evaluation -> table.

Every stage writes a normal artifact under ``out`` and is skipped when that artifact is already complete, so a
second run costs seconds and an interrupted one resumes; ``fresh=True`` starts over. The teacher is
``vocalist_lite`` (VocaLiST's transformers with a light video front-end) so the chain fits in minutes on a CPU;
the stages are the ones a real LRS2 run uses.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avkd.artifacts import Artifact, is_complete, load_artifact
from avkd.data.lrs2 import check_corpus
from avkd.data.preprocess import KIND as FEATURES_KIND
from avkd.data.preprocess import LRS2PreprocessConfig, describe, preprocess_lrs2
from avkd.data.synthetic import SynthLRS2Config, synthesize_lrs2
from avkd.evaluate.stage import KIND as EVALUATION_KIND
from avkd.evaluate.stage import SyncEvalConfig, evaluate_sync_artifact
from avkd.models.io import KIND as MODEL_KIND
from avkd.progress import log
from avkd.train.loop import LoopConfig
from avkd.train.sync import SyncModelConfig, SyncTrainConfig, train_sync_teacher


@dataclass
class DemoConfig:
    utterances: int = 80
    speakers: int = 8
    seed: int = 0
    workers: int = 2
    teacher: SyncTrainConfig = field(
        default_factory=lambda: SyncTrainConfig(
            model=SyncModelConfig(name="vocalist_lite", width=64, channels=[8, 16, 32, 32, 64]),
            loop=LoopConfig(epochs=10, batch_size=32, lr=1e-3, device="cpu"),
            samples_per_epoch=1600,
            val_samples=256,
        )
    )
    frames: list[int] = field(default_factory=lambda: [5, 7, 9, 11, 13, 15])


def run_demo(
    out: Path, config: DemoConfig | None = None, fresh: bool = False, show_progress: bool = True
) -> dict[str, Any]:
    config = config or DemoConfig()
    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    corpus, features, teacher, evaluation = (
        out / name for name in ("corpus", "features", "teacher", "eval-teacher")
    )

    if (corpus / "lrs2.yaml").is_file():
        log(f"[1/4] corpus: reusing {corpus}")
    else:
        if corpus.exists():
            shutil.rmtree(corpus)  # an interrupted synthesis; it takes seconds to redo
        synth = SynthLRS2Config(
            utterances=config.utterances, speakers=config.speakers, seed=config.seed, workers=config.workers
        )
        summary = synthesize_lrs2(corpus, synth)
        log(
            f"[1/4] corpus: {sum(summary.counts.values())} synthetic clips, {summary.seconds:.0f} s of video, in {summary.elapsed:.1f} s"
        )
    report = check_corpus(corpus, corpus / "lrs2.yaml")
    if not report.ok:
        log(f"      warning: {corpus} differs from its manifest (see `avkd data check lrs2 {corpus}`)")

    feats = _stage(
        features,
        FEATURES_KIND,
        "[2/4] features",
        lambda: (
            preprocess_lrs2(
                LRS2PreprocessConfig(),
                corpus,
                features,
                workers=config.workers,
                resume=True,
                show_progress=show_progress,
            ).artifact
        ),
    )
    log("      " + describe(feats))

    model = _stage(
        teacher,
        MODEL_KIND,
        "[3/4] teacher",
        lambda: train_sync_teacher(
            config.teacher, features, teacher, resume=True, show_progress=show_progress
        ),
    )
    m = model.metrics
    log(
        f"      {config.teacher.model.name} width {config.teacher.model.width}: {m['parameters']:,} parameters, best val F1 {m['best_val_f1']:.3f} (epoch {m['best_epoch']})"
    )

    result = _stage(
        evaluation,
        EVALUATION_KIND,
        "[4/4] evaluation",
        lambda: evaluate_sync_artifact(
            SyncEvalConfig(frames=config.frames),
            teacher,
            features,
            evaluation,
            label="demo teacher",
            show_progress=show_progress,
        ),
    )
    table = (result.path / "accuracy.md").read_text()
    accuracy = json.loads((result.path / "accuracy.json").read_text())
    log(
        "      31-candidate sync retrieval on the synthetic test split (accuracy %, correct within ±1 frame; chance ≈ 3/31 = 9.7%):"
    )
    for line in table.rstrip().splitlines():
        log("      " + line)
    log(f"      every artifact is in {out}/ (inspect one with: avkd artifacts show {evaluation})")
    return {
        "out": str(out),
        "artifacts": {a.kind: {"path": str(a.path), "id": a.id} for a in (feats, model, result)},
        "features": feats.metrics,
        "teacher": model.metrics,
        "accuracy": accuracy["accuracy"],
        "table": table,
    }


def _stage(path: Path, kind: str, title: str, build) -> Artifact:
    if is_complete(path):
        log(f"{title}: reusing {path}")
        return load_artifact(path, kind=kind)
    log(f"{title}: building {path}")
    return build()
