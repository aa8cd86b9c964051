"""The model comparison as a library function (``nox -s compare``, issue 15 item 6): one ``avkd report`` table with
the VocaLiST-style teacher, an MTDVocaLiST student, SyncNet and a Perfect-Match-trained SyncNet on one corpus.

Chain (every stage a normal artifact under ``out``, skipped when already complete, as in :mod:`.demo`):

1. the synthetic corpus (:mod:`avkd.data.lrs2.synthetic`), then two features artifacts: 96×96 crops for the
   VocaLiST models, 224×224 crops (``crop_size=224``) for SyncNet (:mod:`avkd.data.lrs2.layouts`);
2. the teacher: ``vocalist_lite`` trained with BCE (a short version of the demo's recipe);
3. the student: ``vocalist_lite`` at a smaller width distilled from it with MTD (UW-25D over all layers);
4. SyncNet v2 imported with ``avkd import syncnet``'s function from ``syncnet`` — a real ``syncnet_v2.model`` when
   given; otherwise a state dict of a seeded randomly initialised full-size SyncNet written for the purpose, which
   only stands for SyncNet's size and cost (its accuracy is chance: no weights are downloaded);
5. a SyncNet trained from scratch with Perfect Match (``objective="pm"``) — thin by default
   (:data:`PM_SYNCNET`), because the full-size one needs hours on a CPU;
6. AVSiam on the sync windows (``avsiam_sync``: the weight-shared encoder on the 15-channel lip map and the mel
   window, a scaled cosine) trained with the 31-way within-clip objective (``objective="offsets"``);
7. each evaluated with the 31-candidate protocol at ``frames`` (K = 5..15), then the report
   (:func:`avkd.report.sync.build_sync_report`): accuracy per K, parameters, GMACs per window and the
   evaluation's windows per second (:mod:`avkd.evaluate.cost`).

"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from avkd.core.artifacts import EVALUATION, LRS2_FEATURES, MODEL, REPORT, Artifact
from avkd.core.config import bounded
from avkd.core.errors import UsageError
from avkd.core.progress import log
from avkd.data.lrs2.dataset import SyncSamplingConfig
from avkd.data.lrs2.preprocess import LRS2PreprocessConfig, preprocess_lrs2
from avkd.data.lrs2.synthetic import SynthLRS2Config, synthesize_lrs2
from avkd.models import build_model
from avkd.report.sync import build_sync_report, report_table
from avkd.tasks.base import reuse_or_build, seeded_stage
from avkd.tasks.sync.config import DistillConfig, SyncEvalConfig, SyncModelConfig, SyncTrainConfig
from avkd.tasks.sync.distill import distill_sync
from avkd.tasks.sync.evaluate import evaluate_sync_artifact
from avkd.tasks.sync.imports import import_syncnet
from avkd.tasks.sync.train import train_sync_teacher
from avkd.train.loop import LoopConfig

__all__ = ["PM_SYNCNET", "CompareConfig", "run_compare"]

#: The Perfect-Match SyncNet's widths: SyncNet v2's layers (avkd.models.syncnet) at 1/8 of its channels and a
#: 128-d embedding, so that it trains in minutes on a CPU.
PM_SYNCNET: dict[str, Any] = {
    "embed_dim": 128,
    "audio_channels": [8, 24, 32, 32, 32, 64],
    "video_channels": [12, 32, 32, 32, 32, 64],
}


@dataclass
class CompareConfig:
    utterances: int = 40
    speakers: int = 6
    seed: int = 0
    workers: int = 2
    frames: list[int] = field(default_factory=lambda: [5, 7, 9, 11, 13, 15])
    #: A real ``syncnet_v2.model`` to import for the SyncNet row; None = random weights (a stand-in: say so).
    syncnet: str | None = None
    #: An LRS2-layout corpus to use instead of synthesising one (real LRS2, or a synthetic corpus made before).
    corpus: str | None = None
    #: Evaluate the first ``limit`` test clips only (None = all).
    limit: int | None = bounded(6, ge=1)
    deterministic: bool = True
    teacher: SyncTrainConfig = field(
        default_factory=lambda: SyncTrainConfig(
            model=SyncModelConfig(name="vocalist_lite", width=64, channels=[8, 16, 32, 32, 64]),
            loop=LoopConfig(epochs=4, batch_size=64, lr=2e-3, device="cpu"),
            sampling=SyncSamplingConfig(pairing="same_window"),
            samples_per_epoch=800,
            val_samples=128,
        )
    )
    student: DistillConfig = field(
        default_factory=lambda: DistillConfig(
            method="mtd",
            student=SyncModelConfig(name="vocalist_lite", width=32, channels=[8, 16, 32, 32, 32]),
            loop=LoopConfig(epochs=2, batch_size=32, lr=1e-3, device="cpu"),
            sampling=SyncSamplingConfig(pairing="same_window"),
            samples_per_epoch=400,
            val_samples=64,
        )
    )
    pm: SyncTrainConfig = field(
        default_factory=lambda: SyncTrainConfig(
            model=SyncModelConfig(name="syncnet", kwargs=dict(PM_SYNCNET)),
            objective="pm",
            pm_steps=8,
            loop=LoopConfig(epochs=3, batch_size=8, lr=1e-3, device="cpu"),
            samples_per_epoch=64,
            val_samples=16,
        )
    )
    #: AVSiam's row (the recipe README's "AVSiam for lip sync" measured: 16-pixel patches, runs of 31 windows).
    avsiam: SyncTrainConfig = field(
        default_factory=lambda: SyncTrainConfig(
            model=SyncModelConfig(name="avsiam_sync", kwargs={"patch_size": 16}),
            objective="offsets",
            pm_steps=31,
            loop=LoopConfig(epochs=3, batch_size=4, lr=3e-4, device="cpu"),
            samples_per_epoch=64,
            val_samples=16,
        )
    )


def _random_syncnet(out: Path, seed: int) -> Path:
    """A seeded random full-size SyncNet v2 saved as a bare state dict (the released file's format)."""
    path = out / "syncnet_v2.random.pt"
    if not path.is_file():
        torch.manual_seed(seed)
        torch.save(build_model("syncnet").state_dict(), path)
    return path


def run_compare(out: Path, config: CompareConfig | None = None, show_progress: bool = True) -> dict[str, Any]:
    """Run the chain (module docstring) under ``out``; returns the report's path, the table and every artifact."""
    config = config or CompareConfig()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder; choose another output folder")
    if config.syncnet is not None and not Path(config.syncnet).is_file():
        raise UsageError(f"{config.syncnet}: no such file (a syncnet_v2.model to import)")
    out.mkdir(parents=True, exist_ok=True)
    corpus = Path(config.corpus) if config.corpus else out / "corpus"
    if config.corpus is None and not (corpus / "lrs2.yaml").is_file():
        if corpus.exists():
            shutil.rmtree(corpus)  # an interrupted synthesis
        synthesize_lrs2(
            corpus,
            SynthLRS2Config(
                utterances=config.utterances,
                speakers=config.speakers,
                seed=config.seed,
                workers=config.workers,
            ),
        )

    def features(name: str, crop_size: int) -> Artifact:
        return reuse_or_build(
            out / name,
            LRS2_FEATURES,
            f"features ({crop_size}x{crop_size} crops)",
            lambda: (
                preprocess_lrs2(
                    LRS2PreprocessConfig(crop_size=crop_size),
                    corpus,
                    out / name,
                    workers=config.workers,
                    resume=True,
                    show_progress=show_progress,
                ).artifact
            ),
        )

    feats96, feats224 = features("features", 96), features("features224", 224)

    def trained(name: str, title: str, stage: SyncTrainConfig, feats: Artifact) -> Artifact:
        """``stage`` (with the run's seed) trained on ``feats`` into ``out / name``, or reused."""
        seeded = seeded_stage(stage, config.seed, config.deterministic)
        return reuse_or_build(
            out / name,
            MODEL,
            title,
            lambda: train_sync_teacher(
                seeded, feats.path, out / name, resume=True, show_progress=show_progress
            ),
        )

    teacher = trained("teacher", "teacher", config.teacher, feats96)
    student_cfg = seeded_stage(config.student, config.seed, config.deterministic)
    student = reuse_or_build(
        out / "student-mtd",
        MODEL,
        "MTD student",
        lambda: distill_sync(
            student_cfg,
            teacher.path,
            feats96.path,
            out / "student-mtd",
            resume=True,
            show_progress=show_progress,
        ),
    )
    source = Path(config.syncnet) if config.syncnet else _random_syncnet(out, config.seed)
    syncnet = reuse_or_build(
        out / "syncnet", MODEL, "SyncNet import", lambda: import_syncnet(source, out / "syncnet")
    )
    pm = trained("syncnet-pm", "PM-trained SyncNet", config.pm, feats224)
    avsiam = trained("avsiam", "AVSiam (31-way objective)", config.avsiam, feats96)
    syncnet_label = "SyncNet v2" if config.syncnet else "SyncNet v2 (random weights)"
    rows = [
        (teacher, feats96, "VocaLiST teacher (vocalist_lite)"),
        (student, feats96, "MTDVocaLiST student (MTD)"),
        (syncnet, feats224, syncnet_label),
        (pm, feats224, "SyncNet (PM-trained, thin)"),
        (avsiam, feats96, "AVSiam (avsiam_sync, 31-way)"),
    ]
    evaluations = []
    eval_cfg = SyncEvalConfig(frames=list(config.frames), limit=config.limit)
    for model, feats, label in rows:
        where = out / f"eval-{model.path.name}"
        evaluations.append(
            reuse_or_build(
                where,
                EVALUATION,
                f"evaluation of the {label}",
                lambda m=model, f=feats, w=where, lab=label: evaluate_sync_artifact(
                    eval_cfg, m.path, f.path, w, label=lab, show_progress=show_progress
                ),
            )
        )
    report = reuse_or_build(
        out / "report",
        REPORT,
        "report",
        lambda: build_sync_report(
            [e.path for e in evaluations], out / "report", title="avkd compare (synthetic corpus)"
        ),
        inputs=evaluations,
    )
    table = report_table(report, throughput=True)
    for line in table.rstrip().splitlines():
        log("      " + line)
    return {
        "out": str(out),
        "report": str(report.path),
        "table": table,
        "syncnet_weights": str(source) if config.syncnet else "random (seeded stand-in)",
        "artifacts": {
            a.path.name: a.id for a in (feats96, feats224, teacher, student, syncnet, pm, *evaluations)
        },
    }
