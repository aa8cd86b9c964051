"""The demo chain as a library function: corpus -> features -> teacher -> students (MTD, BCE) -> evaluations -> report.

Every stage writes a normal artifact under ``out`` and is skipped when that artifact is already complete, so a
second run costs seconds and an interrupted one resumes; ``fresh=True`` starts over. The teacher is
``vocalist_lite`` (VocaLiST's transformers with a light video front-end) so the chain fits in minutes on a CPU;
the stages are the ones a real LRS2 run uses.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avkd.core.artifacts import EVALUATION, LRS2_FEATURES, MODEL, REPORT, Artifact
from avkd.core.config import bounded
from avkd.core.progress import log
from avkd.data.lrs2.check import check_corpus
from avkd.data.lrs2.dataset import SyncSamplingConfig
from avkd.data.lrs2.preprocess import LRS2PreprocessConfig, describe, preprocess_lrs2
from avkd.data.lrs2.synthetic import SynthLRS2Config, synthesize_lrs2
from avkd.report.sync import build_sync_report, report_table
from avkd.tasks.base import (
    demo_out,
    demo_summary,
    over_seeds,
    reuse_or_build,
    seed_folder,
    seeded_stage,
)
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
    #: The teacher's recipe: VocaLiST's balanced BCE pairs, drawn as same-window pairs, batch 64, Adam 2e-3 halved
    #: every 5 epochs. Each change was measured against the 10-epoch recipe before it (README "What holds the demo's
    #: teacher back").
    teacher: SyncTrainConfig = field(
        default_factory=lambda: SyncTrainConfig(
            model=SyncModelConfig(name="vocalist_lite", width=64, channels=[8, 16, 32, 32, 64]),
            loop=LoopConfig(
                epochs=16,
                batch_size=64,
                lr=2e-3,
                scheduler="warmup_step",
                warmup_epochs=1,
                step_epochs=5,
                gamma=0.5,
                device="cpu",
            ),
            sampling=SyncSamplingConfig(pairing="same_window"),
            samples_per_epoch=3200,
            val_samples=256,
        )
    )
    frames: list[int] = field(default_factory=lambda: [5, 7, 9, 11, 13, 15])
    #: Train (and distil and evaluate) with seeds 0..seeds-1; the report shows each row as mean ± sd over them.
    seeds: int = bounded(1, ge=1)
    #: Deterministic kernels in every training stage (avkd.train.determinism), so that the same command gives the
    #: same ids and the same table on the same machine. It sets the teacher's and the students' loop.deterministic.
    deterministic: bool = True
    #: Distil students from the teacher: MTD (UW-25D over all 12 layers) and the BCE-only baseline, same size.
    distill: bool = True
    student: DistillConfig = field(
        default_factory=lambda: DistillConfig(
            student=SyncModelConfig(name="vocalist_lite", width=32, channels=[8, 16, 32, 32, 32]),
            loop=LoopConfig(epochs=8, batch_size=32, lr=1e-3, device="cpu"),
            sampling=SyncSamplingConfig(pairing="same_window"),
            samples_per_epoch=1600,
            val_samples=256,
        )
    )


def run_demo(
    out: Path, config: DemoConfig | None = None, fresh: bool = False, show_progress: bool = True
) -> dict[str, Any]:
    config = config or DemoConfig()
    out = demo_out(out, fresh)
    corpus, features = out / "corpus", out / "features"
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

    models, evaluations = over_seeds(
        config.seeds, lambda seed: _seed_runs(config, out, features, seed, steps, show_progress)
    )
    report = reuse_or_build(
        out / "report",
        REPORT,
        "      report",
        lambda: build_sync_report(
            [a.path for a in evaluations], out / "report", title="avkd demo (synthetic corpus)"
        ),
        inputs=evaluations,
    )
    table = report_table(report)
    log(
        "      31-candidate sync retrieval on the synthetic test split (accuracy %, correct within ±1 frame; chance ≈ 3/31 = 9.7%):"
    )
    for line in table.rstrip().splitlines():
        log("      " + line)
    log(f"      report with figures: {report.path / 'report.md'}")
    log(f"      every artifact is in {out}/ (inspect one with: avkd artifacts show {evaluations[0].path})")
    return demo_summary(out, feats, models, evaluations, config.seeds, "accuracy", table)


def _seed_runs(
    config: DemoConfig, out: Path, features: Path, seed: int, steps: int, show_progress: bool
) -> tuple[Artifact, list[Artifact]]:
    """The teacher, the students and their evaluations trained with one seed, in :func:`seed_folder`."""
    where = seed_folder(out, seed)
    tag = f" (seed {seed})" if config.seeds > 1 else ""
    teacher = where / "teacher"
    teacher_cfg = seeded_stage(config.teacher, seed, config.deterministic)
    model = reuse_or_build(
        teacher,
        MODEL,
        f"[3/{steps}] teacher{tag}",
        lambda: train_sync_teacher(teacher_cfg, features, teacher, resume=True, show_progress=show_progress),
    )
    m = model.metrics
    log(
        f"      {config.teacher.model.name} width {config.teacher.model.width}: {m['parameters']:,} parameters, best val F1 {m['best_val_f1']:.3f} (epoch {m['best_epoch']})"
    )
    evaluations = [
        _evaluate(config, teacher, features, where / "eval-teacher", "teacher", f"[4/{steps}]", show_progress)
    ]
    if not config.distill:
        return model, evaluations
    for i, method in enumerate(("mtd", "bce")):
        student_dir = where / f"student-{method}"
        student_cfg = seeded_stage(config.student, seed, config.deterministic, method=method)
        model_art = reuse_or_build(
            student_dir,
            MODEL,
            f"[{5 + i}/{steps}] {method} student{tag}",
            lambda cfg=student_cfg, path=student_dir: distill_sync(
                cfg, teacher, features, path, resume=True, show_progress=show_progress
            ),
        )
        log(
            f"      {model_art.metrics['parameters']:,} parameters, best val F1 {model_art.metrics['best_val_f1']:.3f}"
        )
        label = f"{method.upper()} student"
        evaluations.append(
            _evaluate(config, student_dir, features, where / f"eval-{method}", label, "      ", show_progress)
        )
    return model, evaluations


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
