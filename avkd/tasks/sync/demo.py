"""The demo chain as a library function: corpus -> features -> teacher -> students (MTD, BCE) -> evaluations -> report.

Every stage writes a normal artifact under ``out`` and is skipped when that artifact is already complete, so a
second run costs seconds and an interrupted one resumes; ``fresh=True`` starts over. The teacher is
``vocalist_lite`` (VocaLiST's transformers with a light video front-end) so the chain fits in minutes on a CPU;
the stages are the ones a real LRS2 run uses.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avkd.core.artifacts import EVALUATION, LRS2_FEATURES, MODEL, REPORT, Artifact
from avkd.core.errors import UsageError
from avkd.core.progress import log
from avkd.data.lrs2.check import check_corpus
from avkd.data.lrs2.preprocess import LRS2PreprocessConfig, describe, preprocess_lrs2
from avkd.data.lrs2.synthetic import SynthLRS2Config, synthesize_lrs2
from avkd.report.sync import build_sync_report
from avkd.tasks.base import reuse_or_build
from avkd.tasks.sync.config import DistillConfig, SyncEvalConfig, SyncModelConfig, SyncTrainConfig
from avkd.tasks.sync.distill import distill_sync
from avkd.tasks.sync.evaluate import evaluate_sync_artifact
from avkd.tasks.sync.train import train_sync_teacher
from avkd.train.loop import LoopConfig


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
    #: Distil students from the teacher: MTD (UW-25D over all 12 layers) and the BCE-only baseline, same size.
    distill: bool = True
    student: DistillConfig = field(
        default_factory=lambda: DistillConfig(
            student=SyncModelConfig(name="vocalist_lite", width=32, channels=[8, 16, 32, 32, 32]),
            loop=LoopConfig(epochs=8, batch_size=32, lr=1e-3, device="cpu"),
            samples_per_epoch=1600,
            val_samples=256,
        )
    )


def run_demo(
    out: Path, config: DemoConfig | None = None, fresh: bool = False, show_progress: bool = True
) -> dict[str, Any]:
    config = config or DemoConfig()
    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    corpus, features, teacher, evaluation = (
        out / name for name in ("corpus", "features", "teacher", "eval-teacher")
    )
    steps = 6 if config.distill else 4

    if (corpus / "lrs2.yaml").is_file():
        log(f"[1/{steps}] corpus: reusing {corpus}")
    else:
        if corpus.exists():
            shutil.rmtree(corpus)  # an interrupted synthesis; it takes seconds to redo
        synth = SynthLRS2Config(
            utterances=config.utterances, speakers=config.speakers, seed=config.seed, workers=config.workers
        )
        summary = synthesize_lrs2(corpus, synth)
        log(
            f"[1/{steps}] corpus: {sum(summary.counts.values())} synthetic clips, {summary.seconds:.0f} s of video, in {summary.elapsed:.1f} s"
        )
    report = check_corpus(corpus, corpus / "lrs2.yaml")
    if not report.ok:
        log(f"      warning: {corpus} differs from its manifest (see `avkd data check lrs2 {corpus}`)")

    feats = reuse_or_build(
        features,
        LRS2_FEATURES,
        f"[2/{steps}] features",
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

    model = reuse_or_build(
        teacher,
        MODEL,
        f"[3/{steps}] teacher",
        lambda: train_sync_teacher(
            config.teacher, features, teacher, resume=True, show_progress=show_progress
        ),
    )
    m = model.metrics
    log(
        f"      {config.teacher.model.name} width {config.teacher.model.width}: {m['parameters']:,} parameters, best val F1 {m['best_val_f1']:.3f} (epoch {m['best_epoch']})"
    )

    evaluations = [_evaluate(config, teacher, features, evaluation, "teacher", f"[4/{steps}]", show_progress)]
    if config.distill:
        for i, method in enumerate(("mtd", "bce")):
            student_dir = out / f"student-{method}"
            student_cfg = dataclasses.replace(config.student, method=method)
            model_art = reuse_or_build(
                student_dir,
                MODEL,
                f"[{5 + i}/{steps}] {method} student",
                lambda cfg=student_cfg, path=student_dir: distill_sync(
                    cfg, teacher, features, path, resume=True, show_progress=show_progress
                ),
            )
            log(
                f"      {model_art.metrics['parameters']:,} parameters, best val F1 {model_art.metrics['best_val_f1']:.3f}"
            )
            label = f"{method.upper()} student"
            evaluations.append(
                _evaluate(
                    config, student_dir, features, out / f"eval-{method}", label, "      ", show_progress
                )
            )
    report = reuse_or_build(
        out / "report",
        REPORT,
        "      report",
        lambda: build_sync_report(
            [a.path for a in evaluations], out / "report", title="avkd demo (synthetic corpus)"
        ),
    )
    table = _table(evaluations)
    log(
        "      31-candidate sync retrieval on the synthetic test split (accuracy %, correct within ±1 frame; chance ≈ 3/31 = 9.7%):"
    )
    for line in table.rstrip().splitlines():
        log("      " + line)
    log(f"      report with figures: {report.path / 'report.md'}")
    log(f"      every artifact is in {out}/ (inspect one with: avkd artifacts show {evaluation})")
    return {
        "out": str(out),
        "artifacts": {a.path.name: {"kind": a.kind, "id": a.id} for a in (feats, model, *evaluations)},
        "features": feats.metrics,
        "teacher": model.metrics,
        "accuracy": {a.manifest.get("label"): a.metrics["accuracy"] for a in evaluations},
        "table": table,
    }


def _evaluate(
    config: DemoConfig, model: Path, features: Path, out: Path, label: str, title: str, show_progress: bool
) -> Artifact:
    return reuse_or_build(
        out,
        EVALUATION,
        f"{title} evaluation of the {label}",
        lambda: evaluate_sync_artifact(
            SyncEvalConfig(frames=config.frames),
            model,
            features,
            out,
            label=label,
            show_progress=show_progress,
        ),
    )


def _table(evaluations: list[Artifact]) -> str:
    frames = sorted({int(k) for a in evaluations for k in a.metrics["accuracy"]})
    lines = [
        "| model | params | " + " | ".join(f"K{k}" for k in frames) + " |",
        "|---|---|" + "---|" * len(frames),
    ]
    for art in evaluations:
        acc = art.metrics["accuracy"]
        cells = [f"{100 * acc[str(k)]:.2f}" if acc.get(str(k)) is not None else "–" for k in frames]
        lines.append(
            f"| {art.manifest.get('label')} | {art.metrics['parameters']:,} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"
