"""The avsiam demo as a library function: synthetic labelled clips -> features -> AVSiam pre-training ->
fine-tuning twice from the pre-trained model (mixed modalities, and audio-visual only) -> evaluations -> report.

Like :mod:`avkd.tasks.emotion.demo`, every stage writes a normal artifact under ``out`` and is reused when complete
(a fine-tune or an evaluation only when it was made from the same inputs, by id). Each evaluation holds both
halves of the seed's comparison: A→V / V→A retrieval (R@1, R@5, R@10, median rank; of interest for the pre-trained
model) and accuracy under audio-visual, audio-only and video-only inputs (of interest for the fine-tuned ones).

Sizes (measured on this CPU in the helpers' notes; the released recipe is in :mod:`avkd.tasks.avsiam.config`):

* corpus: 4 classes × 16 clips of 2 s at 64×48, half of each class in the test split (32 train, 32 test clips), so
  chance R@1 is 1/32; features at the toy AVSiam's inputs (32×32 frames, a 32 × 64 fbank, 10 frames per clip);
* pre-training: the toy size (about 1M parameters), 40 epochs, batch 8, a constant lr 3e-4 (the released 2e-4
  with MultiStepLR learns less in 40 epochs here, and 1e-3 collapsed the τ = 0.05 InfoNCE to chance), the two
  objectives summed into one step (``combine="sum"``, not the stage's default ``released``: over 3 seeds here the
  released two steps a batch gave a V→A R@1 of 2.1 ± 3.6 % against 10.4 ± 3.6 %, A→V 7.3 % either way);
* fine-tuning: 20 epochs, batch 8, lr 2e-4 (heads at 10×, label smoothing 0.1, as released), keeping the last
  epoch (``loop.select_metric=epoch``): selecting on the held-out audio-visual accuracy picked an early epoch, where
  it had reached 1.0 while the audio-only and video-only heads were still near chance.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avkd.core.artifacts import CLIPS_FEATURES, EVALUATION, MODEL, REPORT, Artifact
from avkd.core.config import bounded
from avkd.core.errors import UsageError
from avkd.core.progress import log
from avkd.data.clips.preprocess import ClipsPreprocessConfig, describe, preprocess_clips
from avkd.data.clips.synthetic import SynthClipsConfig, synthesize_clips
from avkd.evaluate.avsiam import ClipsEvalConfig, evaluate_clips_artifact
from avkd.report.avsiam import (
    avsiam_row,
    avsiam_rows,
    build_avsiam_report,
    classification_table,
    retrieval_table,
)
from avkd.tasks.avsiam.config import (
    MODALITIES,
    AVSiamFinetuneConfig,
    AVSiamPretrainConfig,
    finetune_loop,
    pretrain_loop,
)
from avkd.tasks.avsiam.finetune import finetune_avsiam
from avkd.tasks.avsiam.pretrain import pretrain_avsiam
from avkd.tasks.base import (
    demo_out,
    demo_summary,
    over_seeds,
    reuse_or_build,
    seed_folder,
    seeded_stage,
    synthesize_once,
)

__all__ = ["CORPUS_MARKER", "SUMMARY_METRICS", "AVSiamDemoConfig", "run_avsiam_demo"]

#: The corpus is complete when this file exists (the synthesis writes it last, into ``corpus.partial``).
CORPUS_MARKER = "vggsound.csv"
#: The evaluation metrics the returned summary lists per label (seed 0), besides ``a2v_r@1``.
SUMMARY_METRICS = ("v2a_r@1", "acc_av", "acc_audio_only", "acc_video_only")
#: The fine-tunes' row labels.
FINETUNE_LABELS = {"mixed": "fine-tuned, mixed", "av": "fine-tuned, av only"}


def _pretrain() -> AVSiamPretrainConfig:
    loop = dataclasses.replace(pretrain_loop(40, device="cpu"), batch_size=8, lr=3e-4, scheduler="constant")
    # The summed objective is the one measured at this size (the helpers' notes); "released" is the stage's default.
    return AVSiamPretrainConfig(size="toy", combine="sum", loop=loop)


def _finetune() -> AVSiamFinetuneConfig:
    loop = dataclasses.replace(finetune_loop(20, device="cpu"), batch_size=8, lr=2e-4, select_metric="epoch")
    return AVSiamFinetuneConfig(loop=loop)


@dataclass
class AVSiamDemoConfig:
    corpus: SynthClipsConfig = field(
        default_factory=lambda: SynthClipsConfig(
            classes=4, clips_per_class=16, seconds=2.0, width=64, height=48, test_fraction=0.5, workers=1
        )
    )
    features: ClipsPreprocessConfig = field(
        default_factory=lambda: ClipsPreprocessConfig(size=32, mel_bins=32, mel_frames=64)
    )
    pretrain: AVSiamPretrainConfig = field(default_factory=_pretrain)
    #: Both fine-tunes' recipe; ``modalities`` below sets each one's inputs.
    finetune: AVSiamFinetuneConfig = field(default_factory=_finetune)
    #: The fine-tunes, in table order (each from the same pre-trained model): ``mixed`` and ``av``.
    modalities: list[str] = field(default_factory=lambda: ["mixed", "av"])
    evaluation: ClipsEvalConfig = field(default_factory=ClipsEvalConfig)
    #: Pre-train and fine-tune (and evaluate) with seeds 0..seeds-1; the report shows each row as mean ± sd.
    seeds: int = bounded(1, ge=1)
    #: Deterministic kernels in every training stage (avkd.train.determinism); sets the loops' deterministic.
    deterministic: bool = True


def run_avsiam_demo(
    out: Path, config: AVSiamDemoConfig | None = None, fresh: bool = False, show_progress: bool = True
) -> dict[str, Any]:
    """The whole chain under ``out``; returns :func:`~avkd.tasks.base.demo_summary` (seed 0's ``a2v_r@1`` per
    label) plus seed 0's :data:`SUMMARY_METRICS` per label and the model sizes."""
    config = config or AVSiamDemoConfig()
    unknown = [m for m in config.modalities if m not in MODALITIES]
    if unknown or not config.modalities:
        raise UsageError(f"modalities {config.modalities}: each one of {', '.join(MODALITIES)}, at least one")
    out = demo_out(out, fresh)
    corpus, features = out / "corpus", out / "features"
    # corpus, features, pre-training, each fine-tune (with the evaluations)
    steps = 3 + len(config.modalities)

    summary = synthesize_once(corpus, CORPUS_MARKER, lambda folder: synthesize_clips(folder, config.corpus))
    if summary is None:
        log(f"[1/{steps}] corpus: reusing {corpus}")
    else:
        log(
            f"[1/{steps}] corpus: {sum(summary.counts.values())} synthetic clips ({summary.counts}), "
            f"{summary.seconds:.0f} s of video, in {summary.elapsed:.1f} s"
        )

    feats = reuse_or_build(
        features,
        CLIPS_FEATURES,
        f"[2/{steps}] features",
        lambda: (
            preprocess_clips(
                config.features,
                corpus,
                corpus / CORPUS_MARKER,
                features,
                resume=True,
                show_progress=show_progress,
            ).artifact
        ),
    )
    log("      " + describe(feats))

    finetuned: list[Artifact] = []  # every seed's fine-tuned models (over_seeds keeps the pre-trained ones)
    models, evaluations = over_seeds(
        config.seeds, lambda seed: _seed_runs(config, out, feats, seed, steps, show_progress, finetuned)
    )
    report = reuse_or_build(
        out / "report",
        REPORT,
        "      report",
        lambda: build_avsiam_report(evaluations, out / "report", title="avkd avsiam demo (synthetic clips)"),
        inputs=evaluations,
    )
    rows, _ = avsiam_rows([avsiam_row(a) for a in evaluations])
    # Without the clips/s column (in the report): a rerun prints the same tables.
    table = (
        "Retrieval (%; MR = median rank):\n"
        + retrieval_table(rows, throughput=False)
        + "\nClassification (%):\n"
        + classification_table(rows, throughput=False)
    )
    n = evaluations[0].metrics["clips"]
    log(f"      on the synthetic test split ({n} clips; chance R@1 = 1/{n} = {100 / n:.1f}%):")
    for line in table.rstrip().splitlines():
        log("      " + line)
    log(f"      report: {report.path / 'report.md'}")
    summary = demo_summary(out, feats, models, evaluations, config.seeds, "a2v_r@1", table)
    summary["artifacts"].update(
        {str(a.path.relative_to(out)): {"kind": a.kind, "id": a.id} for a in finetuned}
    )
    first = evaluations[: len(evaluations) // config.seeds]
    for key in SUMMARY_METRICS:
        summary[key] = {a.manifest.get("label"): a.metrics.get(key) for a in first}
    summary["parameters"] = {a.manifest.get("label"): a.metrics.get("parameters") for a in first}
    summary["chance_r@1"] = evaluations[0].metrics["chance_r@1"]
    return summary


def _seed_runs(
    config: AVSiamDemoConfig,
    out: Path,
    feats: Artifact,
    seed: int,
    steps: int,
    show_progress: bool,
    finetuned: list[Artifact],
) -> tuple[Artifact, list[Artifact]]:
    """The pre-trained model and the evaluations of it and of its fine-tunes (appended to ``finetuned``) with one
    seed, in :func:`~avkd.tasks.base.seed_folder`."""
    where = seed_folder(out, seed)
    tag = f" (seed {seed})" if config.seeds > 1 else ""
    pre_dir = where / "pretrained"
    pre_cfg = seeded_stage(config.pretrain, seed, config.deterministic)
    pre = reuse_or_build(
        pre_dir,
        MODEL,
        f"[3/{steps}] pre-training{tag}",
        lambda: pretrain_avsiam(pre_cfg, feats.path, pre_dir, resume=True, show_progress=show_progress),
        inputs=[feats],
    )
    m = pre.metrics
    log(
        f"      avsiam {config.pretrain.size}: {m['parameters']:,} parameters, {m['epochs']} epochs; last epoch "
        f"contrastive {m['best_contrastive']:.3f}, held-out matching accuracy "
        f"{m.get('best_val_match_acc', float('nan')):.3f}"
    )
    evaluations = [_evaluate(config, pre, feats, where / "eval-pretrained", "pre-trained", "      ")]
    for i, modalities in enumerate(config.modalities):
        ft_dir = where / f"finetune-{modalities}"
        ft_cfg = seeded_stage(config.finetune, seed, config.deterministic, modalities=modalities)
        model = reuse_or_build(
            ft_dir,
            MODEL,
            f"[{4 + i}/{steps}] fine-tuning, {modalities}{tag}",
            lambda cfg=ft_cfg, path=ft_dir: finetune_avsiam(
                cfg, feats.path, path, init=pre.path, resume=True, show_progress=show_progress
            ),
            inputs=[feats, pre],
        )
        finetuned.append(model)
        f = model.metrics
        log(
            f"      held-out accuracy at epoch {f['best_epoch']}: av {f['best_val_acc']:.3f}, audio only "
            f"{f['best_val_acc_audio_only']:.3f}, video only {f['best_val_acc_video_only']:.3f}"
        )
        label = FINETUNE_LABELS[modalities]
        evaluations.append(_evaluate(config, model, feats, where / f"eval-{modalities}", label, "      "))
    return pre, evaluations


def _evaluate(
    config: AVSiamDemoConfig, model: Artifact, feats: Artifact, out: Path, label: str, title: str
) -> Artifact:
    art = reuse_or_build(
        out,
        EVALUATION,
        f"{title}evaluation of the {label} model",
        lambda: evaluate_clips_artifact(
            config.evaluation, model.path, feats.path, out, label=label, show_progress=False
        ),
        inputs=[feats, model],
    )
    m = art.metrics
    log(
        f"      {label}: R@1 a→v {m['a2v_r@1']:.3f}, v→a {m['v2a_r@1']:.3f} (chance {m['chance_r@1']:.3f}); "
        f"accuracy av {m.get('acc_av', float('nan')):.3f}, audio only {m.get('acc_audio_only', float('nan')):.3f}, "
        f"video only {m.get('acc_video_only', float('nan')):.3f}"
    )
    return art
