"""``avkd train teacher``: a sync model (VocaLiST, or the width-200 student as the BCE-only baseline) on LRS2 features.

Reference §3.1: balanced positive/negative sampling from the pretrain split, Adam 5e-5, BCE with logits, batch
128. Differences, each a fix of a pain point docs/reference/vocalist.md lists (§7.6): validation uses a fixed, seeded
sample set (the same pairs every epoch, so F1 is comparable across epochs and selects the best checkpoint), and
F1 is computed over the whole validation set at p = 0.5 (logit 0) rather than averaged per batch at logit 0.5.

``--objective pm | contrastive`` trains a model that embeds each window (syncnet) with the Perfect Match or the
contrastive loss (avkd/losses/embedding.py) instead, on windows cut in the model's input layout
(avkd/data/lrs2/layouts.py). pm samples runs of ``pm_steps`` consecutive windows (``batch_size`` runs a step);
contrastive samples the same balanced pairs as BCE. Their validation is a fixed set of runs: ``val_acc`` is the
fraction of video windows whose best-scoring audio window of the run is their own (the PM top-1 of
syncnet_trainer), ``val_loss`` the objective on fixed validation samples; ``val_acc`` selects the best epoch
unless ``loop.select_metric`` says otherwise.

``--objective offsets`` is the 31-way within-clip objective (avkd/losses/embedding.py) on the same runs: each
video window of a run is classified among the run's audio windows within ``±vshift`` (``objective_options.vshift``,
15) by the model's own ``fuse`` scores, each window encoded once (:func:`offset_scores`, the evaluator's fast
path). A run is scored exactly as the evaluator scores a clip of ``pm_steps`` windows, so ``--set pm_steps=31``
(or more) gives the middle window all 31 candidates; ``val_acc`` is the fraction of the validation runs' windows
whose best candidate is offset 0. Any model with ``encode_video``/``encode_audio``/``fuse`` takes it (VocaLiST,
SyncNet, ``avsiam_sync``).

``init`` (:func:`train_sync_teacher`) starts an ``avsiam_sync`` model from a pre-trained ``avsiam`` artifact
(:func:`avkd.models.avsiam_sync.load_backbone`); the artifact becomes an input of the trained model, so its id,
not its path, enters the model's content id.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from avkd.core.artifacts import LRS2_FEATURES, Artifact, load_artifact
from avkd.core.errors import UsageError
from avkd.data.lrs2.dataset import SyncDataset
from avkd.data.lrs2.layouts import layout_of
from avkd.data.lrs2.sequences import SyncSequenceDataset
from avkd.data.lrs2.store import FeatureStore
from avkd.evaluate.sync import VSHIFT, valid_candidates
from avkd.losses.base import DistillLoss, build_loss
from avkd.losses.embedding import OffsetMatchingLoss
from avkd.models.attention import Tapped
from avkd.models.avsiam_sync import AVSiamSync, load_backbone
from avkd.models.io import LoadedModel, load_model
from avkd.tasks.sync.config import SyncTrainConfig
from avkd.train.checkpoint import seed_everything
from avkd.train.loop import ModelTrainTask, fit_stage

__all__ = [
    "SyncTeacherTask",
    "objective_terms",
    "offset_scores",
    "offset_validation",
    "run_accuracy",
    "train_sync_teacher",
    "validate_sync",
    "weighted_f1",
]


def weighted_f1(labels: torch.Tensor, predictions: torch.Tensor) -> float:
    """sklearn's ``f1_score(average='weighted')`` for binary labels: per-class F1 weighted by support."""
    total = labels.numel()
    score = 0.0
    for cls in (0, 1):
        tp = int(((predictions == cls) & (labels == cls)).sum())
        fp = int(((predictions == cls) & (labels != cls)).sum())
        fn = int(((predictions != cls) & (labels == cls)).sum())
        denom = 2 * tp + fp + fn
        f1 = 2 * tp / denom if denom else 0.0
        score += f1 * int((labels == cls).sum()) / total
    return score


class SyncTeacherTask(ModelTrainTask):
    """Training of one sync model with BCE, Perfect Match or the contrastive loss (the fit loop's TrainTask)."""

    def __init__(
        self,
        config: SyncTrainConfig,
        store: FeatureStore,
        init: LoadedModel | None = None,
        where: str = "init",
    ) -> None:
        self.config = config
        self.spec = config.model.spec(config.sampling)
        seed_everything(config.loop.seed)  # the initial weights are part of what the seed reproduces
        self.model = self.spec.build()
        self.init, self.adapted = init, None
        if init is not None:
            if not isinstance(self.model, AVSiamSync):
                raise UsageError(
                    f"{where}: a pre-trained avsiam initialises an avsiam_sync model, not {config.model.name!r}"
                )
            self.adapted = load_backbone(self.model, init.model, where)
        self.store = store
        self.objective = config.objective
        self.best_keys = ("val_f1", "val_acc") if self.objective == "bce" else ("val_acc", "val_loss")
        if self.objective == "bce":
            if layout_of(self.model).name != "vocalist":  # BCE trains on a logit; a distance model has none
                raise UsageError(
                    f"--objective bce trains VocaLiST-style classifiers; train {config.model.name!r} with "
                    "--objective pm or --objective contrastive"
                )
            self.train, self.val = config.datasets(store, config.sampling, config.loop.seed)
            return
        self.objective_loss = (
            offsets_objective(config.objective_options)
            if self.objective == "offsets"
            else build_loss(self.objective, **config.objective_options)
        )
        missing = [t for t in self.objective_loss.taps() if t not in getattr(self.model, "tap_names", list)()]
        if missing:
            raise UsageError(
                f"--objective {self.objective} needs a model that embeds each window (taps "
                f"{', '.join(self.objective_loss.taps())}, e.g. syncnet); {config.model.name!r} has none"
            )
        layout, c = layout_of(self.model), config.sampling
        runs = functools.partial(
            SyncSequenceDataset, store, layout=layout, steps=config.pm_steps, pixel_order=c.pixel_order,
            pixel_range=c.pixel_range,
        )  # fmt: skip
        self.val_runs = runs(config.val_split, samples=config.val_samples, seed=config.val_seed)
        if self.objective in ("pm", "offsets"):
            self.train = runs(config.train_split, samples=config.samples_per_epoch, seed=config.loop.seed)
            self.val = self.val_runs
        else:
            pairs = functools.partial(SyncDataset, store, config=c, layout=layout)
            self.train = pairs(config.train_split, samples=config.samples_per_epoch, seed=config.loop.seed)
            self.val = pairs(config.val_split, samples=config.val_samples, seed=config.val_seed)

    def modules(self) -> dict[str, nn.Module]:
        if self.objective == "bce":
            return {"model": self.model}
        return {"model": self.model, "objective": self.objective_loss}  # PM's learnable scale and shift

    def param_groups(self) -> list[dict[str, Any]]:
        params = list(self.model.parameters())
        if self.objective != "bce":
            params += [p for p in self.objective_loss.parameters() if p.requires_grad]
        return [{"params": params}]

    def loss(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        if self.objective == "bce":
            video, mel, label = (t.to(device, non_blocking=True) for t in batch)
            logits = self.model(video, mel)
            return F.binary_cross_entropy_with_logits(logits.float(), label), {}
        terms = objective_terms(self.model, self.objective_loss, batch, device)
        return terms[self.objective], {}

    def validate(self, device: torch.device) -> dict[str, float]:
        loop = self.config.loop
        if self.objective == "bce":
            return validate_sync(self.model, self.val, device, loop.batch_size, loop.num_workers)
        if isinstance(self.objective_loss, OffsetMatchingLoss):
            return offset_validation(
                self.model, self.objective_loss, self.val_runs, device, loop.batch_size, loop.num_workers
            )
        losses = [
            float(objective_terms(self.model, self.objective_loss, batch, device)[self.objective])
            for batch in DataLoader(self.val, batch_size=loop.batch_size, num_workers=loop.num_workers)
        ]
        return {
            "val_loss": float(np.mean(losses)),
            "val_acc": run_accuracy(self.model, self.val_runs, device, loop.batch_size, loop.num_workers),
        }

    def summary(self) -> dict[str, Any]:
        summary = super().summary()
        if self.init is not None:
            summary["init"] = self.init.artifact.id if self.init.artifact is not None else None
            summary["init_adapted"] = self.adapted
        return summary

    def close(self) -> None:
        self.store.close()


def offsets_objective(options: dict[str, Any]) -> OffsetMatchingLoss:
    """The ``offsets`` objective with ``objective_options`` (only ``vshift``); others are a usage error."""
    unknown = sorted(set(options) - {"vshift"})
    if unknown:
        raise UsageError(f"objective_options {unknown[0]!r}: --objective offsets takes only vshift")
    return OffsetMatchingLoss(int(options.get("vshift", VSHIFT)))


def offset_scores(model: nn.Module, video: torch.Tensor, audio: torch.Tensor, vshift: int) -> torch.Tensor:
    """Score matrix (B·T, 2·vshift+1) of runs ``video`` (B, T, ...), ``audio`` (B, T, ...): row ``r·T + i`` holds
    ``model.fuse`` of video window ``i`` of run ``r`` against audio window ``i + d`` of the same run, column
    ``d + vshift``; NaN where ``i + d`` is outside the run. Every window is encoded once (``encode_video``,
    ``encode_audio``) and only the valid pairs are fused, as :func:`avkd.evaluate.sync.score_clip` does for a clip
    of T windows (the same :func:`~avkd.evaluate.sync.valid_candidates`)."""
    b, steps = video.shape[:2]
    v = model.encode_video(video.flatten(0, 1))  # (S, B·T, D)
    a = model.encode_audio(audio.flatten(0, 1))
    i, j = np.nonzero(valid_candidates(steps, vshift))  # window i, column j: offset j − vshift
    base = np.repeat(np.arange(b) * steps, i.size)
    rows = torch.from_numpy(base + np.tile(i, b)).to(video.device)
    cols = torch.from_numpy(np.tile(j, b)).to(video.device)
    fused = model.fuse(v.index_select(1, rows), a.index_select(1, rows + cols - vshift)).float()
    scores = torch.full((b * steps, 2 * vshift + 1), float("nan"), device=video.device)
    return scores.index_put((rows, cols), fused)


def offset_validation(
    model: nn.Module,
    loss: OffsetMatchingLoss,
    runs: SyncSequenceDataset,
    device: torch.device,
    batch_size: int,
    workers: int = 0,
) -> dict[str, float]:
    """``val_loss`` (the ``offsets`` objective) and ``val_acc`` (rows whose best candidate is offset 0) of runs."""
    losses, hits, total = [], 0, 0
    for batch in DataLoader(runs, batch_size=batch_size, num_workers=workers):
        video, audio = (t.to(device) for t in batch)
        scores = offset_scores(model, video, audio, loss.vshift)
        clips = torch.arange(video.shape[0], device=device).repeat_interleave(video.shape[1])
        losses.append(float(loss(Tapped(scores, {}), Tapped(scores, {}), clips)["offsets"]))
        best = torch.where(torch.isnan(scores), float("-inf"), scores).argmax(dim=1)
        hits += int((best == loss.vshift).sum())
        total += scores.shape[0]
    return {"val_loss": float(np.mean(losses)), "val_acc": hits / total}


def objective_terms(
    model: nn.Module, loss: DistillLoss, batch: Any, device: torch.device
) -> dict[str, torch.Tensor]:
    """An embedding objective's terms for a batch: runs (B, T, ...) for pm, pairs with labels for contrastive.

    A run's windows are flattened to B·T windows with the run index as the label, so the PM loss matches each
    video step among the steps of its own run; ``offsets`` scores them with :func:`offset_scores`."""
    if isinstance(loss, OffsetMatchingLoss):
        video, audio = (t.to(device, non_blocking=True) for t in batch)
        scores = offset_scores(model, video, audio, loss.vshift)
        clips = torch.arange(video.shape[0], device=device).repeat_interleave(video.shape[1])
        return loss(Tapped(scores, {}), Tapped(scores, {}), clips)
    if len(batch) == 2:  # runs
        video, audio = (t.to(device, non_blocking=True) for t in batch)
        b, steps = video.shape[:2]
        video, audio = video.flatten(0, 1), audio.flatten(0, 1)
        labels = torch.arange(b, device=device).repeat_interleave(steps)
    else:
        video, audio, labels = (t.to(device, non_blocking=True) for t in batch)
    out = model(video, audio, taps=loss.tap_request())
    return loss(out, Tapped(out.logits, {}), labels)


def run_accuracy(
    model: nn.Module, runs: SyncSequenceDataset, device: torch.device, batch_size: int, workers: int = 0
) -> float:
    """Fraction of video windows whose best-scoring audio window of the same run (``model.fuse``) is their own."""
    hits, total = 0, 0
    for video, audio in DataLoader(runs, batch_size=batch_size, num_workers=workers):
        b, steps = video.shape[:2]
        v = model.encode_video(video.flatten(0, 1).to(device))  # (1, B·T, D)
        a = model.encode_audio(audio.flatten(0, 1).to(device))
        rows = torch.arange(b * steps, device=device).repeat_interleave(steps)  # video i against ...
        cols = (rows // steps) * steps + torch.arange(steps, device=device).repeat(
            b * steps
        )  # its run's audio
        scores = model.fuse(v.index_select(1, rows), a.index_select(1, cols)).view(b * steps, steps)
        hits += int((scores.argmax(dim=1) == torch.arange(steps, device=device).repeat(b)).sum())
        total += b * steps
    return hits / total


def validate_sync(
    model: nn.Module, dataset: SyncDataset, device: torch.device, batch_size: int, workers: int = 0
) -> dict[str, float]:
    """Loss, accuracy and weighted F1 over a fixed validation sample set."""
    logits, labels = [], []
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    with torch.inference_mode():
        for video, mel, label in loader:
            logits.append(model(video.to(device), mel.to(device)).float().cpu())
            labels.append(label)
    logit, label = torch.cat(logits), torch.cat(labels)
    pred = (logit > 0).long()
    return {
        "val_loss": float(F.binary_cross_entropy_with_logits(logit, label)),
        "val_acc": float((pred == label.long()).float().mean()),
        "val_f1": weighted_f1(label.long(), pred),
    }


def train_sync_teacher(
    config: SyncTrainConfig,
    features: str | Path,
    out: str | Path,
    overwrite: bool = False,
    resume: bool = False,
    show_progress: bool = True,
    init: str | Path | None = None,
) -> Artifact:
    """Train a sync model on an ``lrs2-features`` artifact into a ``model`` artifact (best val F1 weights).

    ``init``: a pre-trained ``avsiam`` model artifact whose encoder starts an ``avsiam_sync`` model (module
    docstring); it is recorded as an input."""

    if config.objective != "bce" and config.loop.select_metric == "val_f1":  # the default: BCE's metric
        config = dataclasses.replace(config, loop=dataclasses.replace(config.loop, select_metric="val_acc"))

    def build() -> tuple[SyncTeacherTask, list[Artifact]]:
        feats = load_artifact(features, kind=LRS2_FEATURES)
        pre = None
        if init is not None:
            pre = load_model(init, device="cpu")
        inputs = [feats] + ([pre.artifact] if pre is not None and pre.artifact is not None else [])
        return SyncTeacherTask(config, FeatureStore(feats), pre, where=str(init)), inputs

    return fit_stage(out, config, build, overwrite=overwrite, resume=resume, show_progress=show_progress)
