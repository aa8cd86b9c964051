"""The emotion demo as a library function: synthetic CMU-MOSEI -> features -> MulT teacher -> video-only students
(without KD and with EDAM-S) -> evaluations -> report.

Like :mod:`avkd.tasks.sync.demo`, every stage writes a normal artifact under ``out`` and is reused when complete. The sizes
are chosen so that the chain takes a few CPU minutes and the teacher clearly learns:

* 200 / 40 / 66 videos of 2-4 segments of 0.8-1.6 s (about 600 / 120 / 200 segments);
* sequences of 6 words, 60 COVAREP frames and 60 FACET frames. These keep MulT's ratios where EDAM-S needs them
  (audio_len = vision_len = 10 · text_len, so that the student's stride-10 L_S proxy meets the teacher's text
  length, docs/reference/mult-mosei.md §5.5 item 4) at 1/8 of its 500 steps; a segment's last 60 COVAREP frames (0.6 s) are kept,
  as MulT keeps the last 500;
* MulT and the student at d = 20, 5 heads, 2 layers (the reference: d = 30, 5 heads, 5 layers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avkd.core.artifacts import EVALUATION, MODEL, MOSEI_FEATURES, REPORT, Artifact
from avkd.core.config import bounded
from avkd.core.progress import log
from avkd.data.mosei.ingest import MoseiIngestConfig, ingest_mosei
from avkd.data.mosei.synthetic import SynthMoseiConfig, synthesize_mosei
from avkd.report.emotion import build_emotion_report, emotion_row, emotion_rows
from avkd.report.tables import emotion_table
from avkd.tasks.base import (
    demo_out,
    demo_summary,
    over_seeds,
    reuse_or_build,
    seed_folder,
    seeded_loop,
    seeded_stage,
    synthesize_once,
)
from avkd.tasks.emotion.config import (
    EmotionDistillConfig,
    EmotionEvalConfig,
    EmotionModelConfig,
    EmotionTrainConfig,
    emotion_loop,
)
from avkd.tasks.emotion.distill import distill_emotion
from avkd.tasks.emotion.evaluate import evaluate_emotion_artifact
from avkd.tasks.emotion.train import train_emotion_teacher
from avkd.train.loop import LoopConfig

#: The corpus is complete when this file exists (the synthesis writes into ``corpus.partial`` and renames).
CORPUS_MARKER = Path("labels") / "CMU_MOSEI_Labels.csd"


@dataclass
class EmotionDemoConfig:
    corpus: SynthMoseiConfig = field(
        default_factory=lambda: SynthMoseiConfig(
            train_videos=200, val_videos=40, test_videos=66, min_seconds=0.8, max_seconds=1.6
        )
    )
    features: MoseiIngestConfig = field(
        default_factory=lambda: MoseiIngestConfig(text_len=6, audio_len=60, vision_len=60)
    )
    teacher: EmotionTrainConfig = field(
        default_factory=lambda: EmotionTrainConfig(
            model=EmotionModelConfig(
                kwargs={"branch": "complete", "output_dim": 7, "d": 20, "num_heads": 5, "layers": 2}
            ),
            loop=emotion_loop(10, device="cpu"),
        )
    )
    #: The students' methods, in table order; each row is a separate distillation from the same teacher.
    methods: list[str] = field(default_factory=lambda: ["none", "edam-s"])
    #: Student-teacher configuration (docs/reference/mult-mosei.md §5.2); 5 = complete teacher, V_S←A_S and V_S←L_S distilled.
    config_id: int = 5
    student_loop: LoopConfig = field(default_factory=lambda: emotion_loop(20, device="cpu"))
    #: Train (and distil and evaluate) with seeds 0..seeds-1; the report shows each row as mean ± sd over them.
    seeds: int = bounded(1, ge=1)
    #: Deterministic kernels in every training stage (avkd.train.determinism); sets both loops' deterministic.
    deterministic: bool = True


def run_emotion_demo(
    out: Path, config: EmotionDemoConfig | None = None, fresh: bool = False, show_progress: bool = True
) -> dict[str, Any]:
    config = config or EmotionDemoConfig()
    out = demo_out(out, fresh)
    corpus, features = out / "corpus", out / "features"
    steps = 4 + len(config.methods)

    summary = synthesize_once(corpus, CORPUS_MARKER, lambda folder: synthesize_mosei(folder, config.corpus))
    if summary is None:
        log(f"[1/{steps}] corpus: reusing {corpus}")
    else:
        log(
            f"[1/{steps}] corpus: {summary['segments']} synthetic segments in {sum(summary['videos'].values())} "
            f"videos (.csd files), in {summary['seconds']:.1f} s"
        )

    feats = reuse_or_build(
        features,
        MOSEI_FEATURES,
        f"[2/{steps}] features",
        lambda: ingest_mosei(config.features, corpus, features, resume=True, show_progress=show_progress),
    )
    counts = feats.metrics.get("per_split", {})
    log(f"      segments per split: {counts}; failures: {feats.metrics.get('failures', 0)}")

    models, evaluations = over_seeds(
        config.seeds, lambda seed: _seed_runs(config, out, features, seed, steps, show_progress)
    )

    report = reuse_or_build(
        out / "report",
        REPORT,
        "      report",
        lambda: build_emotion_report(
            evaluations, out / "report", title="avkd emotion demo (synthetic CMU-MOSEI)"
        ),
        inputs=evaluations,
    )
    rows, _ = emotion_rows([emotion_row(a) for a in evaluations])
    table = emotion_table(rows, timing=False)  # its ms / batch is in the report
    log("      7-class emotion on the synthetic test split (%):")
    for line in table.splitlines():
        log("      " + line)
    log(f"      report: {report.path / 'report.md'}")
    return demo_summary(out, feats, models, evaluations, config.seeds, "acc7", table)


def _seed_runs(
    config: EmotionDemoConfig, out: Path, features: Path, seed: int, steps: int, show_progress: bool
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
        lambda: train_emotion_teacher(
            teacher_cfg, features, teacher, resume=True, show_progress=show_progress
        ),
    )
    m = model.metrics
    log(
        f"      MulT (complete): {m['parameters']:,} parameters, best val acc7 {m['best_val_acc7']:.3f} (epoch {m['best_epoch']})"
    )
    evaluations = [_evaluate(teacher, features, where / "eval-teacher", "teacher", f"[4/{steps}]")]
    for i, method in enumerate(config.methods):
        student_dir = where / f"student-{method}"
        student_cfg = EmotionDistillConfig(
            method=method,
            config_id=config.config_id,
            loop=seeded_loop(config.student_loop, seed, config.deterministic),
        )
        student = reuse_or_build(
            student_dir,
            MODEL,
            f"[{5 + i}/{steps}] student, {method}{tag}",
            lambda cfg=student_cfg, path=student_dir: distill_emotion(
                cfg, teacher, features, path, resume=True, show_progress=show_progress
            ),
        )
        log(
            f"      {student.metrics['parameters']:,} parameters, best val acc7 {student.metrics['best_val_acc7']:.3f}"
        )
        label = "student without KD" if method == "none" else f"{method} student"
        evaluations.append(_evaluate(student_dir, features, where / f"eval-{method}", label, "      "))
    return model, evaluations


def _evaluate(model: Path, features: Path, out: Path, label: str, title: str) -> Artifact:
    return reuse_or_build(
        out,
        EVALUATION,
        f"{title} evaluation of the {label}",
        lambda: evaluate_emotion_artifact(EmotionEvalConfig(), model, features, out, label=label),
    )
