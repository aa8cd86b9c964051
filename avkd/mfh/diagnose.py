"""``avkd mfh diagnose``: will crossmodal KD help this teacher-student pair, and through which channels?

The modality focusing hypothesis (docs/mfh.md §1) says a student gains from a teacher according to γ, the
modality-general share of the decisive information. This stage measures that on avkd's own artifacts: a
``model`` teacher, a ``model`` student and the features they were trained on. Variant (B) of Algorithm 1 in
docs/reference/avsiam-mfh-syncnet.md (§2.6, the RAVDESS code) on existing models (§2.7 step 1 (ii)):

1. **Salience** (:mod:`avkd.mfh.salience`) of every channel of the teacher and of the student at a tap
   (:mod:`avkd.mfh.probes`: the input features, ``fusion`` or another layer), M permutations per channel,
   accumulated over the whole ``split``.
2. **γ estimate** (:func:`estimate_gamma`): the share of the teacher's decision that the student's
   representation carries (cross-validated R² of the teacher's logits from the student's ``hidden`` features).
3. **Freeze check** (§2.6 (B) step 3, emotion track): the ``freeze_share`` of the teacher's channels at the tap
   with the *lowest* salience (``keep_general``: the teacher keeps its modality-general channels), a random
   share (``random``) or the *highest* (``keep_specific``) are held at their mean over the split; a fresh
   student learns from each frozen teacher by KD, and so do a student from the whole teacher (``regular_kd``)
   and one without a teacher (``no_kd``, cross-entropy only). Variant (B) trains its students by pure KD
   (``gt_w = 0, pl_w = 1``: ``kd_alpha = 0``, ``kd_beta = 1``, temperature 1) and reports the test accuracy at
   the best validation epoch, as here (7-class accuracy, ``acc7``). MFH expects keep_general > random >
   keep_specific (the RAVDESS README). ``freeze_rank="generality"`` orders the channels by reliance ×
   generality (item 4) instead of by salience.
4. **Generality** of each teacher channel at a layer tap (:func:`channel_generality`): the cross-validated R²
   of its values from the student's representation. The permutation salience permutes one channel at a time,
   which misleads on a layer's correlated channels (:mod:`avkd.mfh.salience`); the channels named as carrying
   the modality-general decisive information are ranked by reliance × generality.
5. **Verdict**: §2.7's rules (:func:`verdict`).

The students reuse the emotion task's distillation (:class:`avkd.tasks.emotion.distill.EmotionDistillTask`, its
data, validation and export) and the one training loop (:func:`avkd.train.loop.fit`), with the diagnosed
student's architecture and the emotion recipe (Adam 1e-3, batch 24, clipping 0.8) for ``loop.epochs`` epochs.

The sync track gets the salience and γ at a layer tap (``fusion`` = VocaLiST's pooled fusion output): its
models see both modalities, and a freeze check would need its own distillation recipe (BCE with a binary KD
term, many epochs of a VocaLiST student), which this stage does not run; ``--freeze`` is refused there.

The artifact (kind ``mfh-diagnosis``) holds ``diagnosis.json`` (every number), ``report.md`` (the tables and
the verdict), ``salience.png`` and ``timings.json`` (a log, outside the id).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from avkd.core.artifacts import (
    LRS2_FEATURES,
    MFH_DIAGNOSIS,
    MOSEI_FEATURES,
    Artifact,
    ArtifactWriter,
    atomic_write_text,
    load_artifact,
)
from avkd.core.config import bounded, from_dict, to_dict, validate
from avkd.core.errors import UsageError
from avkd.data.lrs2.dataset import SyncDataset, SyncSamplingConfig
from avkd.data.lrs2.store import FeatureStore
from avkd.data.mosei.dataset import MoseiDataset
from avkd.data.mosei.labels import label7
from avkd.evaluate.classify import emotion_metrics
from avkd.mfh.probes import InputProbe, LayerProbe, build_probe, frozen_model
from avkd.mfh.salience import SalienceConfig, SideSalience, permutation_salience
from avkd.models.device import resolve_device
from avkd.models.io import WEIGHTS, LoadedModel, load_model, load_state, model_inputs, read_weights
from avkd.tasks.emotion.config import EMOTION_INPUTS, EmotionDistillConfig, emotion_loop
from avkd.tasks.emotion.distill import EmotionDistillTask
from avkd.tasks.emotion.train import predict
from avkd.tasks.sync.config import SYNC_INPUTS
from avkd.train.loop import LoopConfig, fit

__all__ = [
    "FREEZE_MODES",
    "STUDENTS",
    "DiagnoseConfig",
    "GammaEstimate",
    "channel_generality",
    "decodable_share",
    "diagnose",
    "diagnosis_markdown",
    "draw_salience",
    "estimate_gamma",
    "freeze_channels",
    "public_result",
    "verdict",
]

#: The freeze check's modes: which channels of the teacher stay (the others are held at their mean).
FREEZE_MODES = ("keep_general", "random", "keep_specific")
#: Students of the freeze check, in report order: the two references, then the three modes.
STUDENTS = ("no_kd", "regular_kd", *FREEZE_MODES)
#: γ below which KD hurt and above which it helped in avkd's rerun of the paper's Fig. 2 (docs/mfh.md §7).
GAMMA_LOW, GAMMA_HIGH = 0.25, 0.5


def _freeze_loop() -> LoopConfig:
    """The emotion recipe (Adam 1e-3, batch 24, clipping 0.8) at a small budget, deterministic, on the CPU."""
    loop = emotion_loop(10, device="cpu")
    return dataclasses.replace(loop, deterministic=True)


def _share_problem(value: float) -> str | None:
    return None if 0 < value < 1 else "must be in (0, 1)"


@dataclass
class DiagnoseConfig:
    """``avkd mfh diagnose``'s settings (module docstring)."""

    #: ``input`` (emotion: the features of each input stream), ``fusion`` (MulT ``last_hs``, VocaLiST
    #: ``pooled``), or a layer tap name (``last_hs``, ``pooled``, ``hidden``; avkd.mfh.probes).
    tap: str = "fusion"
    #: At the ``input`` tap, the teacher's input streams scored (empty = every stream it reads: text, audio,
    #: vision; ``[vision]`` = the 35 FACET features, the ones the student reads too).
    input_streams: list[str] = field(default_factory=list)
    #: The split the salience is computed over (the whole split), and its batch size.
    split: str = "train"
    batch_size: int = bounded(64, ge=2)
    #: M, permutations per channel (§2.7 default 10).
    permutations: int = bounded(10, ge=1)
    seed: int = bounded(0, ge=0)
    #: Samples per permuted forward (memory bound).
    max_batch: int = bounded(4096, ge=1)
    #: The official helper's last-batch-only statistics (docs/reference/avsiam-mfh-syncnet.md §2.5), for comparison only.
    last_batch_only: bool = False
    #: Score against the other model's logits affinely aligned onto this one's (avkd.mfh.salience); False =
    #: the raw logits, variant (B)'s distance for jointly trained models.
    align: bool = True
    #: Sync track: (video, audio) windows drawn from the split (half in sync), seeded by ``seed``.
    sync_samples: int = bounded(512, ge=2)
    #: Run the freeze check: None = on the emotion track only (the sync track refuses it).
    freeze: bool | None = None
    #: Share of the teacher's channels held at their mean (§2.6 (B): ratio 0.75).
    freeze_share: float = bounded(0.75, check=_share_problem)
    #: What orders the teacher's channels for the freeze check: ``salience`` (Algorithm 1, variant (B)) or
    #: ``generality`` (reliance × generality, layer taps only: on the emotion demo it gave MFH's order where the
    #: salience reversed it, docs in :func:`channel_generality`).
    freeze_rank: Literal["salience", "generality"] = "salience"
    #: KD students' objective kd_alpha·CE + kd_beta·T²·KL(teacher ‖ student) at temperature T (§2.6 (B): 0, 1, 1).
    kd_alpha: float = bounded(0.0, ge=0.0)
    kd_beta: float = bounded(1.0, gt=0.0)
    temperature: float = bounded(1.0, gt=0.0)
    #: The split the students' accuracy is reported on (their checkpoint is chosen on ``val``).
    eval_split: str = "test"
    #: The students' training loop (and the device of the whole stage).
    loop: LoopConfig = field(default_factory=_freeze_loop)


# ------------------------------------------------------------------------------------------------- γ


@dataclass
class GammaEstimate:
    """γ̂ (:func:`estimate_gamma`) and what it was computed from."""

    #: Cross-validated R² of the teacher's logits from the student's representation, clipped to [0, 1].
    gamma: float | None
    #: R² of the teacher's logits from the student's own logits (one linear map per class pair: no fit).
    output_r2: float | None
    samples: int
    folds: int
    student_channels: int


def _centre(z: np.ndarray) -> np.ndarray:
    """Logits minus their mean over the classes: softmax ignores a shift that all classes share, so it decides
    nothing (a single sync logit is kept as it is)."""
    return z - z.mean(axis=1, keepdims=True) if z.shape[1] > 1 else z


def _out_of_fold(y: np.ndarray, x: np.ndarray, folds: int, ridge: float, seed: int) -> np.ndarray:
    """Ridge predictions of ``y`` (N, K) from ``x`` (N, C), each sample predicted by the fit on the other folds
    (folds from ``numpy.random.default_rng([seed, 11])``, features standardised on each training fold, penalty
    ``ridge · n_train`` on the standardised weights)."""
    order = np.random.default_rng([seed, 11]).permutation(len(y))
    predicted = np.empty_like(y)
    for test in np.array_split(order, folds):
        train = np.setdiff1d(order, test)
        mu, sd = x[train].mean(axis=0), x[train].std(axis=0)
        sd[sd == 0] = 1.0
        xt, ym = (x[train] - mu) / sd, y[train].mean(axis=0)
        gram = xt.T @ xt + ridge * len(train) * np.eye(xt.shape[1])
        weights = np.linalg.solve(gram, xt.T @ (y[train] - ym))
        predicted[test] = ((x[test] - mu) / sd) @ weights + ym
    return predicted


def _prepared(targets: np.ndarray, features: np.ndarray, folds: int) -> tuple[np.ndarray, np.ndarray, int]:
    y = np.asarray(targets, dtype=np.float64)
    y = y.reshape(len(y), -1)
    return y, np.asarray(features, dtype=np.float64).reshape(len(y), -1), min(folds, len(y))


def decodable_share(
    targets: np.ndarray, features: np.ndarray, folds: int = 5, ridge: float = 1e-2, seed: int = 0
) -> float | None:
    """Out-of-fold R² of ``targets`` (N, K) from ``features`` (N, C) by ridge regression (:func:`_out_of_fold`):
    1 − Σ residual² / Σ (target − its mean)², pooled over the K columns. None when the targets do not vary or
    there are fewer than 2 samples."""
    y, x, folds = _prepared(targets, features, folds)
    total = float(((y - y.mean(axis=0)) ** 2).sum())
    if folds < 2 or total == 0:
        return None
    return 1.0 - float(((y - _out_of_fold(y, x, folds, ridge, seed)) ** 2).sum()) / total


def channel_generality(
    channels: np.ndarray, features: np.ndarray, folds: int = 5, ridge: float = 1e-2, seed: int = 0
) -> np.ndarray:
    """Per teacher channel (column of ``channels``, (N, C)), the out-of-fold R² of its values from the student's
    ``features``, clipped to [0, 1] (0 for a constant channel): how much of what the channel carries the
    student's representation also holds. A correlation-proof complement of the permutation salience (whose
    single-channel permutations mislead on a layer's correlated channels, :mod:`avkd.mfh.salience`)."""
    y, x, folds = _prepared(channels, features, folds)
    if folds < 2:
        return np.zeros(y.shape[1])
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    residual = ((y - _out_of_fold(y, x, folds, ridge, seed)) ** 2).sum(axis=0)
    r2 = np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0), 0.0)
    return np.clip(r2, 0.0, 1.0)


def estimate_gamma(
    teacher_logits: np.ndarray,
    student_features: np.ndarray,
    student_logits: np.ndarray,
    folds: int = 5,
    seed: int = 0,
) -> GammaEstimate:
    """γ̂ = the share of the teacher's decision that the student's representation carries: the cross-validated
    R² (:func:`decodable_share`) of the teacher's class-centred logits from the student's features at its
    ``hidden`` tap (the input of its last linear layer), over the salience split, clipped to [0, 1].

    Why this and not the saliences: in the modality Venn diagram with decisive masses S (both modalities), A
    (teacher only) and B (student only), γ = S / (S + A + B) (docs/mfh.md §1). In avkd's tracks the teacher sees
    everything the student sees (emotion: the teacher reads the video too; sync: both read both), so B = 0 and
    γ = S / (S + A) = 1 − α: the share of the teacher's decisive information that the student's modality also
    carries. A student that has learnt what its modality offers holds that share in its representation, and the
    part of the teacher's logits that a linear map can read from it is then that share of the teacher's logit
    variance: with teacher logits t = t_S + t_A (the shared and the teacher-only parts, independent) and student
    features that determine t_S, R² = Var(t_S) / Var(t). The per-channel gains of the permutation salience do not
    give this for a layer's correlated channels (:mod:`avkd.mfh.salience`).

    What it needs and what it misses: it is a lower bound as far as the student has not learnt (or the linear
    map cannot read) what its modality carries, so a weak student reads as a low γ; the folds keep a
    representation wider than the split is long from reading noise as signal. ``output_r2`` is the R² of the
    teacher's centred logits from the student's own centred logits (``1 − Σ(t − s)² / Σ(t − t̄)²`` after the
    best scale: the squared correlation), which needs no fit and is at most γ̂ up to the folds' noise.
    """
    t = _centre(np.asarray(teacher_logits, dtype=np.float64))
    s = _centre(np.asarray(student_logits, dtype=np.float64))
    share = decodable_share(t, student_features, folds=folds, seed=seed)
    tc, sc = t - t.mean(axis=0), s - s.mean(axis=0)
    denom = float((tc**2).sum() * (sc**2).sum())
    r2 = float((tc * sc).sum()) ** 2 / denom if denom > 0 else None
    gamma = None if share is None else min(max(share, 0.0), 1.0)
    return GammaEstimate(
        gamma, r2, len(t), folds, int(np.asarray(student_features).reshape(len(t), -1).shape[1])
    )


def _representations(
    loader: DataLoader, teacher: InputProbe | LayerProbe, student_hidden: LayerProbe
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(teacher logits, student features at ``hidden``, student logits, the teacher's (B, C) values at a layer
    tap or None at the input tap) over the split, in order."""
    parts: list[list[np.ndarray]] = [[], [], [], []]
    layer = isinstance(teacher, LayerProbe)
    with torch.inference_mode():
        for batch in loader:
            hidden = student_hidden.features(batch)
            tapped = teacher.features(batch)
            values = [teacher.logits(tapped), hidden[0], student_hidden.logits(hidden)]
            if layer:
                values.append(tapped[0])
            for index, value in enumerate(values):
                parts[index].append(value.double().cpu().numpy())
    t, h, s = (np.concatenate(p) for p in parts[:3])
    return t, h, s, np.concatenate(parts[3]) if layer else None


# --------------------------------------------------------------------------------------------- freeze


def freeze_channels(salience: np.ndarray, share: float, mode: str, seed: int) -> list[int]:
    """The channels held at their mean in ``mode``: ``round(share · C)`` (at least 1, at most C − 1) of the
    lowest (``keep_general``) or highest (``keep_specific``) salience, ties to the lower channel, or drawn at
    random without replacement from ``numpy.random.default_rng([seed, 7])`` (``random``); sorted."""
    c = len(salience)
    count = min(max(round(share * c), 1), c - 1)
    order = np.argsort(salience, kind="stable")  # ascending; ties keep channel order
    if mode == "keep_general":
        chosen = order[:count]
    elif mode == "keep_specific":
        chosen = np.argsort(-salience, kind="stable")[:count]
    elif mode == "random":
        chosen = np.random.default_rng([seed, 7]).choice(c, count, replace=False)
    else:
        raise ValueError(f"freeze mode {mode!r} is not one of {', '.join(FREEZE_MODES)}")
    return sorted(int(i) for i in chosen)


class _KDStudent(EmotionDistillTask):
    """The emotion task's video-only student (its data, validation and export), trained on
    ``alpha·CE + beta·T²·KL(softmax(t/T) ‖ softmax(s/T))`` from a frozen (possibly channel-frozen) teacher, or on
    CE alone without one."""

    def __init__(
        self,
        config: EmotionDistillConfig,
        teacher: nn.Module,
        features: Artifact,
        kd_teacher: nn.Module | None,
        temperature: float,
    ) -> None:
        super().__init__(config, teacher, features)
        self.kd_teacher = None if kd_teacher is None else kd_teacher.eval().requires_grad_(False)
        self.temperature = temperature

    def loss(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        text, audio, vision, label, _index, _contrast = (t.to(device) for t in batch)
        logits = self.student(text, audio, vision).float()
        ce = F.cross_entropy(logits, label7(label))
        logs = {"train/ce": float(ce.detach())}
        if self.kd_teacher is None:
            return self.config.alpha * ce, logs
        with torch.no_grad():
            target = self.kd_teacher(text, audio, vision).float()
        t = self.temperature
        kd = F.kl_div(
            F.log_softmax(logits / t, dim=1),
            F.log_softmax(target / t, dim=1),
            reduction="batchmean",
            log_target=True,
        ) * (t * t)
        logs["train/kd"] = float(kd.detach())
        return self.config.alpha * ce + self.config.beta * kd, logs


def _train_student(
    name: str,
    config: DiagnoseConfig,
    teacher: LoadedModel,
    student: LoadedModel,
    features: Artifact,
    kd_teacher: nn.Module | None,
    workdir: Path,
    show_progress: bool,
) -> dict[str, Any]:
    """One fresh student of the freeze check: trained, its best-validation weights reloaded and evaluated on
    ``eval_split``; its run folder is removed."""
    kwargs = dict(student.spec.kwargs)
    distill = EmotionDistillConfig(
        method="none",
        config_id=int(kwargs.get("config", 5)),
        alpha=1.0 if kd_teacher is None else config.kd_alpha,
        beta=config.kd_beta,
        student_kwargs=kwargs,
        loop=config.loop,
    )
    device = resolve_device(config.loop.device)
    if kd_teacher is not None:
        kd_teacher.to(device)
    task = _KDStudent(distill, teacher.model, features, kd_teacher, config.temperature)
    run = workdir / "students" / name
    try:
        result = fit(task, config.loop, run, run / WEIGHTS, show_progress=show_progress)
        model = task.student
        load_state(model, read_weights(run / WEIGHTS)["state_dict"], run / WEIGHTS, task.spec)
        model.to(device).eval()
        test = MoseiDataset(features, config.eval_split)
        try:
            logits, labels = predict(model, test, device, config.loop.batch_size)
            metrics = emotion_metrics(labels, logits=logits, train_labels=task.train_labels)
        finally:
            test.close()
    finally:
        task.close()
        shutil.rmtree(run, ignore_errors=True)
    best = result.best or {}
    return {
        "acc7": metrics.acc7,
        "f1": metrics.f1_weighted,
        "best_epoch": best.get("epoch"),
        "best_val_acc7": best.get("val_acc7"),
    }


# -------------------------------------------------------------------------------------------- verdict


def verdict(
    gamma: GammaEstimate,
    freeze: dict[str, dict[str, Any]] | None,
    top: Sequence[str],
    rank: str = "salience",
) -> str:
    """One paragraph: whether crossmodal KD is likely to help this pair (§2.7's rules on the freeze check where
    it ran, else γ̂ against the thresholds where KD hurt and helped in the Gaussian study, docs/mfh.md §7), a
    warning when the freeze check contradicts its ranking (``rank``), and which channels carry the
    modality-general decisive information (``top``: :func:`_top`)."""
    parts: list[str] = []
    g = gamma.gamma
    if g is None:
        parts.append("γ̂ is undefined (the teacher's logits do not vary over the split)")
    else:
        parts.append(
            f"γ̂ = {g:.2f}: the student's representation carries about {100 * g:.0f} % of the teacher's "
            "decision (the modality-general share, if the student has learnt what its modality offers)"
        )
    if freeze:
        acc = {k: freeze[k]["acc7"] for k in STUDENTS if k in freeze}
        general, regular, none = acc["keep_general"], acc["regular_kd"], acc["no_kd"]
        order = acc["keep_general"] > acc["random"] > acc["keep_specific"]
        parts.append(
            "the freeze check "
            + ("shows" if order else "does not show")
            + " MFH's order keep-general > random > keep-specific"
            + f" ({100 * acc['keep_general']:.1f} / {100 * acc['random']:.1f} / {100 * acc['keep_specific']:.1f} % acc7;"
            + f" regular KD {100 * regular:.1f} %, no KD {100 * none:.1f} %)"
        )
        if general >= regular > none:
            parts.append(
                "crossmodal KD is likely to help, and focusing the teacher on its modality-general channels "
                "(freezing the least salient) can strengthen it"
            )
        elif regular <= none and general > acc["keep_specific"]:
            parts.append(
                "γ is low for this pair: crossmodal KD from this teacher is not worthwhile as it is; a "
                "modality-general teacher (its least salient channels frozen) is the better source"
            )
        elif regular > none:
            parts.append(
                "KD helps this pair, but focusing the teacher on its modality-general channels (keep-general) "
                "did not add to it"
            )
        else:
            parts.append("KD did not help this pair at this budget, and the check is inconclusive")
        if general < acc["keep_specific"] and rank == "salience":
            parts.append(
                "the permutation salience did not single out the modality-general channels here (single-channel "
                "permutations of correlated channels, in models not trained together), so read γ̂ and the "
                "channels' generality rather than the salience ranking (--set freeze_rank=generality)"
            )
        elif general < acc["keep_specific"]:
            parts.append(
                "ranked by reliance × generality, the freeze check still contradicts MFH for this pair"
            )
    elif g is not None:
        if g < GAMMA_LOW:
            parts.append(
                f"below γ ≈ {GAMMA_LOW} crossmodal KD hurt the student in the Gaussian study, so it is unlikely "
                "to help here"
            )
        elif g > GAMMA_HIGH:
            parts.append(
                f"above γ ≈ {GAMMA_HIGH} KD helped in the Gaussian study, so it is likely to help here"
            )
        else:
            parts.append(
                "γ̂ is in the range where KD helped little in the Gaussian study: a small gain at best"
            )
    if top:
        parts.append("the modality-general decisive information runs mostly through " + ", ".join(top))
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:] if text[0].isascii() else text


# ------------------------------------------------------------------------------------------------ stage


def _side_json(side: SideSalience, generality: np.ndarray | None = None) -> dict[str, Any]:
    def rounded(values: np.ndarray) -> list[float]:
        return [round(float(v), 6) for v in values]

    return {
        "channels": side.names,
        "salience": rounded(side.salience),
        "raw": rounded(side.raw),
        "gain": rounded(side.gain),
        "reliance": rounded(side.reliance),
        "generality": None if generality is None else rounded(generality),
        "baseline": round(side.baseline, 6),
        "samples": side.samples,
    }


def _top(side: SideSalience, generality: np.ndarray | None = None, count: int = 5) -> list[str]:
    """The channels that carry the most modality-general decisive information: by the teacher's reliance on
    them times their generality where that is known (a layer tap), else by salience."""
    score = side.salience if generality is None else side.reliance * generality
    order = np.argsort(-score, kind="stable")[:count]
    return [side.names[i] for i in order if score[i] > 0]


def _batches(
    track: str, data: Artifact, teacher: LoadedModel, config: DiagnoseConfig
) -> tuple[DataLoader, Callable[[], None]]:
    if track == "emotion":
        dataset = MoseiDataset(data, config.split)
        return DataLoader(dataset, batch_size=config.batch_size), dataset.close
    sampling = dict(teacher.artifact.config.get("sampling", {})) if teacher.artifact is not None else {}
    sampling.update(pixel_order=teacher.spec.pixel_order, pixel_range=teacher.spec.pixel_range)
    store = FeatureStore(data)
    dataset = SyncDataset(
        store,
        config.split,
        from_dict(SyncSamplingConfig, sampling),
        samples=config.sync_samples,
        seed=config.seed,
    )
    return DataLoader(dataset, batch_size=config.batch_size), store.close


def diagnose(
    teacher: Path,
    student: Path,
    data: Path,
    out: Path,
    config: DiagnoseConfig,
    *,
    overwrite: bool = False,
    show_progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> Artifact:
    """The ``avkd mfh diagnose`` stage (module docstring): an ``mfh-diagnosis`` artifact at ``out`` for the
    ``model`` artifacts ``teacher`` and ``student`` on the features ``data`` (``mosei-features`` for the emotion
    track, ``lrs2-features`` for sync). Its metrics hold ``gamma``, ``output_r2``, the top channels and, after
    the freeze check, the students' acc7 under ``no_kd``, ``regular_kd``, ``keep_general``, ``random`` and
    ``keep_specific``."""
    say = log or (lambda _line: None)
    validate(config)
    features = load_artifact(data)
    if features.kind not in (MOSEI_FEATURES, LRS2_FEATURES):
        raise UsageError(
            f"{data}: is a {features.kind!r} artifact; expected {MOSEI_FEATURES} or {LRS2_FEATURES}"
        )
    track = "emotion" if features.kind == MOSEI_FEATURES else "sync"
    inputs = EMOTION_INPUTS if track == "emotion" else SYNC_INPUTS
    freeze = config.freeze if config.freeze is not None else track == "emotion"
    if freeze and config.freeze_rank == "generality" and config.tap == "input":
        raise UsageError(
            "freeze_rank 'generality' needs a layer tap (fusion, last_hs, hidden): generality is per layer channel"
        )
    if freeze and track == "sync":
        raise UsageError(
            "--freeze: the freeze check runs on the emotion track only (avkd.mfh.diagnose); use --no-freeze"
        )
    device = resolve_device(config.loop.device)
    t_model = load_model(teacher, device=device, inputs=inputs)
    s_model = load_model(student, device=device, inputs=inputs)
    # A batch holds the model's forward inputs in order (then the label): the task's datasets are laid out so.
    t_probe = build_probe(
        t_model.model, model_inputs(t_model.model), config.tap, config.input_streams or None
    )
    s_probe = build_probe(s_model.model, model_inputs(s_model.model), config.tap)
    s_hidden = build_probe(s_model.model, model_inputs(s_model.model), "hidden")
    used = [features] + [m.artifact for m in (t_model, s_model) if m.artifact is not None]
    with ArtifactWriter(
        out,
        MFH_DIAGNOSIS,
        to_dict(config),
        inputs=used,
        overwrite=overwrite,
        logs=["timings.json"],
        resumable=False,
    ) as writer:
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        loader, close = _batches(track, features, t_model, config)
        say(
            f"mfh diagnose: salience of {len(t_probe.names)} teacher and {len(s_probe.names)} student channels at "
            f"{config.tap!r}, {config.permutations} permutations, over {len(loader.dataset)} {config.split} samples"
        )
        try:
            result = permutation_salience(
                t_probe,
                s_probe,
                loader,
                SalienceConfig(
                    config.permutations, config.seed, config.max_batch, config.last_batch_only, config.align
                ),
            )
        finally:
            close()
        seconds["salience"] = time.perf_counter() - start
        loader, close = _batches(track, features, t_model, config)
        try:
            t_logits, s_hidden_values, s_logits, t_tap = _representations(loader, t_probe, s_hidden)
        finally:
            close()
        gamma = estimate_gamma(t_logits, s_hidden_values, s_logits, seed=config.seed)
        generality = None if t_tap is None else channel_generality(t_tap, s_hidden_values, seed=config.seed)
        top = _top(result.teacher, generality)
        say(
            f"      γ̂ = {gamma.gamma} (R² of the teacher's logits from the student's), "
            f"R² of the logits {gamma.output_r2}"
        )

        students: dict[str, dict[str, Any]] | None = None
        frozen: dict[str, list[int]] = {}
        if freeze:
            start = time.perf_counter()
            students = {}
            means = result.teacher.means
            ranking = (
                result.teacher.salience
                if generality is None or config.freeze_rank == "salience"
                else result.teacher.reliance * generality
            )
            for name in STUDENTS:
                if name == "no_kd":
                    kd_teacher = None
                elif name == "regular_kd":
                    kd_teacher = t_model.model
                else:
                    frozen[name] = freeze_channels(ranking, config.freeze_share, name, config.seed)
                    kd_teacher = frozen_model(t_probe, frozen[name], means[frozen[name]])
                say(f"      freeze check: student {name} ({config.loop.epochs} epochs)")
                students[name] = _train_student(
                    name, config, t_model, s_model, features, kd_teacher, writer.workdir, show_progress
                )
                say(f"      {name}: acc7 {students[name]['acc7']:.4f}")
            shutil.rmtree(writer.workdir / "students", ignore_errors=True)
            seconds["freeze"] = time.perf_counter() - start

        text = verdict(gamma, students, top, config.freeze_rank)
        payload = {
            "track": track,
            "tap": config.tap,
            "split": config.split,
            "batches": result.batches,
            "gamma": dataclasses.asdict(gamma),
            "teacher": _side_json(result.teacher, generality),
            "student": _side_json(result.student),
            "top_teacher_channels": top,
            "top_student_channels": _top(result.student),
            "freeze": None
            if students is None
            else {
                "share": config.freeze_share,
                "rank": config.freeze_rank,
                "frozen": frozen,
                "students": students,
                "metric": "acc7",
            },
            "verdict": text,
            "config": to_dict(config),
        }
        notes: list[str] = []
        payload["figure"] = (
            "salience.png" if draw_salience(payload, writer.path("salience.png"), notes) else None
        )
        payload["notes"] = notes
        atomic_write_text(writer.path("diagnosis.json"), json.dumps(payload, indent=2) + "\n")
        atomic_write_text(writer.path("report.md"), diagnosis_markdown(payload))
        atomic_write_text(writer.path("timings.json"), json.dumps({"seconds": seconds}, indent=2) + "\n")
        metrics: dict[str, Any] = {
            "track": track,
            "tap": config.tap,
            "gamma": gamma.gamma,
            "output_r2": gamma.output_r2,
            "teacher_channels": len(result.teacher.names),
            "student_channels": len(result.student.names),
            "top_teacher_channels": top,
        }
        if students is not None:
            metrics.update({name: students[name]["acc7"] for name in STUDENTS})
        return writer.commit(metrics=metrics)


def public_result(art: Artifact) -> dict[str, Any]:
    """What ``avkd mfh diagnose --json`` prints beside the path, id and metrics: γ, both sides' per-channel
    saliences, the freeze check and the verdict, read back from the artifact."""
    data = json.loads(art.file("diagnosis.json").read_text())
    keys = ("track", "tap", "gamma", "teacher", "student", "freeze", "verdict")
    return {**{k: data[k] for k in keys}, "files": sorted(art.files)}


# ------------------------------------------------------------------------------------------- outputs


def diagnosis_markdown(payload: dict[str, Any]) -> str:
    """``report.md``: the verdict, γ̂ and its parts, the freeze check's table and the most salient channels."""
    g = payload["gamma"]

    def num(value: float | None, digits: int = 3) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    lines = [
        f"# MFH diagnosis ({payload['track']} track, tap `{payload['tap']}`)",
        "",
        payload["verdict"],
        "",
        "## γ estimate",
        "",
        "| γ̂ | R² of the logits | samples | folds | student channels |",
        "|---:|---:|---:|---:|---:|",
        f"| {num(g['gamma'])} | {num(g['output_r2'])} | {g['samples']} | {g['folds']} | {g['student_channels']} |",
        "",
        "γ̂ = the cross-validated R² of the teacher's class-centred logits from the student's representation (its "
        "`hidden` tap) by ridge regression: the share of the teacher's decision the student carries, 1 − α̂ "
        "(avkd.mfh.diagnose.estimate_gamma).",
        "",
    ]
    freeze = payload.get("freeze")
    if freeze:
        lines += [
            f"## Freeze check ({100 * freeze['share']:.0f} % of the teacher's channels held at their mean, "
            f"ranked by {freeze['rank']})",
            "",
            "| student | acc7 (%) | F1 (%) | best epoch |",
            "|---|---:|---:|---:|",
        ]
        for name in STUDENTS:
            row = freeze["students"][name]
            lines.append(
                f"| {name} | {100 * row['acc7']:.2f} | {100 * row['f1']:.2f} | {row['best_epoch']} |"
            )
        lines.append("")
    lines += [
        "## Most salient channels",
        "",
        "Salience: Algorithm 1's score, min-max normalised; gain: what permuting the channel adds to the "
        "disagreement; reliance: how much it moves the model's own logits; generality (teacher, layer taps): R² "
        "of the channel from the student's representation.",
        "",
        "| side | channel | salience | gain | reliance | generality |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for side in ("teacher", "student"):
        data = payload[side]
        general = data.get("generality")
        order = np.argsort(-np.asarray(data["salience"]), kind="stable")[:10]
        for i in order:
            lines.append(
                f"| {side} | {data['channels'][i]} | {data['salience'][i]:.3f} | {data['gain'][i]:.4g} | "
                f"{data['reliance'][i]:.4g} | {'–' if general is None else f'{general[i]:.3f}'} |"
            )
    lines += [
        "",
        "Modality-general decisive channels of the teacher (reliance × generality at a layer tap, else "
        "salience): " + (", ".join(payload["top_teacher_channels"]) or "none") + ".",
    ]
    return "\n".join(lines) + "\n"


def draw_salience(payload: dict[str, Any], path: Path, notes: list[str]) -> bool:
    """``salience.png``: both sides' normalised salience per channel (bars), with the teacher channels that the
    keep-general freeze keeps in red; drawn with matplotlib's object API on the Agg canvas, as
    :mod:`avkd.mfh.figures`. False (with a note) without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        notes.append("salience.png skipped: matplotlib is not installed (pip install matplotlib)")
        return False
    frozen = (payload.get("freeze") or {}).get("frozen", {}).get("keep_general")
    fig = Figure(figsize=(11, 5.2), dpi=120)
    axes = fig.subplots(2, 1)
    for ax, side in zip(axes, ("teacher", "student"), strict=True):
        values = payload[side]["salience"]
        colours = ["0.6"] * len(values)
        if side == "teacher" and frozen is not None:
            colours = ["0.6" if i in set(frozen) else "tab:red" for i in range(len(values))]
        ax.bar(range(len(values)), values, color=colours, width=0.8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("salience")
        ax.grid(alpha=0.3)
        title = f"{side}: {len(values)} channels at {payload['tap']!r}"
        if side == "teacher" and frozen is not None:
            title += "; red = kept by the keep-general freeze"
        ax.set_title(title, fontsize=10)
    axes[-1].set_xlabel("channel")
    g = payload["gamma"]["gamma"]
    fig.suptitle(
        "Permutation salience (Algorithm 1, variant B), min-max normalised"
        + ("" if g is None else f"; γ̂ = {g:.2f}")
    )
    fig.tight_layout()
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight", metadata={"Software": None})
    return True
