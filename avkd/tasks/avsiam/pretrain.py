"""``avkd pretrain --method avsiam``: AVSiam's self-supervised pre-training on a features artifact: labelled clips
(``clips-features``), CMU-MOSEI (``mosei-features``) or LRS2 windows (``lrs2-features``), each read through its
adapter (:mod:`avkd.tasks.avsiam.inputs`).

Facts: docs/reference/avsiam-mfh-syncnet.md §1.5-§1.7 (the released ``traintest_cavmae_base.py``,
``run_pretrain_base.sh`` and ``dataloader.py``) and the paper (ECCV 2024, Sec. 3.3).

Each step (one batch of items, e.g. clips with one random frame of each, :class:`PretrainClips`):

* **contrastive**: F_a, F_v under multi-ratio masking (:meth:`~avkd.models.avsiam.AVSiam.multi_ratio_features`:
  each sample gets a ratio of the set, samples with the same kept count are packed into one sub-batch without
  padding), then the symmetric InfoNCE at τ = 0.05, gathered with gradient under data parallelism
  (:class:`~avkd.losses.avsiam.ContrastiveLoss`); the top-1 matching accuracy is logged (the released ``c_acc``);
* **reconstruction**: both modalities masked at random at 0.75, the decoder's MSE over the removed patches only
  (:meth:`~avkd.models.avsiam.AVSiam.reconstruct`, :class:`~avkd.losses.avsiam.ReconstructionLoss`), audio and
  video logged apart.

**How the objectives combine** (``combine``, :data:`~avkd.tasks.avsiam.config.COMBINE`):

* ``released`` (the default; §1.6, ``traintest_cavmae_base.py``): two optimiser steps per batch, on the same batch,
  in this order: pass ``contrastive`` (the multi-ratio features and the InfoNCE alone), then pass
  ``reconstruction`` (L_rec,a + L_rec,v alone), which sees the weights the first step moved. Each pass has its
  own Adam over all the model's parameters (the release builds both from the same trainable list, with the same
  lr, weight decay and betas), its own MultiStepLR (both stepped each epoch) and its own AMP grad scaler: the
  loop's passes (:attr:`~avkd.train.loop.TrainTask.passes`), which checkpoint and resume all of them. A parameter
  a pass leaves without a gradient (the decoder in the contrastive pass) is not moved by that pass's Adam. The
  logged step loss is L_c + L_rec,a + L_rec,v, the sum of the two passes' (the release's "total" meter holds the
  reconstruction pass's loss only); the terms are logged apart as the release does.
* ``sum``: one optimiser step on L = L_c + L_rec,a + L_rec,v, the paper's L = L_rec + L_c.

Optimisation (§1.6, :func:`~avkd.tasks.avsiam.config.pretrain_loop`): Adam with betas (0.95, 0.999) (given per
parameter group, since the loop's Adam takes its other settings from :class:`~avkd.train.loop.LoopConfig`), lr 2e-4,
weight decay 5e-7, MultiStepLR halving at epoch 10 and every 5 after (for each optimiser under ``released``). The
model is the last epoch's, as released (selection on ``epoch``); after each epoch the held-out split
(``val_split``) is scored: the InfoNCE and the matching accuracy of the unmasked features (the middle stored frame)
over the whole split (chance 1/N), and the reconstruction losses under masks drawn from a fixed seed, so that
epochs compare.

Not reproduced: the released loader's fbank augmentation (uniform noise scaled by a random factor / 10 and a random
roll in time, §1.7), the per-epoch linear probe on AS-20K, and the released ``ast_base`` audio copy for
reconstruction (a stated departure of :mod:`avkd.models.avsiam`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from avkd.core.artifacts import Artifact, load_artifact
from avkd.core.errors import UsageError
from avkd.losses.avsiam import ContrastiveLoss, ReconstructionLoss, info_nce, matching_accuracy
from avkd.models.masking import resolve_ratios
from avkd.tasks.avsiam.config import AVSiamPretrainConfig
from avkd.tasks.avsiam.inputs import ADAPTERS, PretrainClips, check_sizes, pretrain_inputs
from avkd.train.checkpoint import seed_everything
from avkd.train.loop import ModelTrainTask, fit_stage

__all__ = [
    "METHODS",
    "PASSES",
    "AVSiamPretrainTask",
    "PretrainClips",
    "check_sizes",
    "pretrain",
    "pretrain_avsiam",
]

#: Pre-training methods by name (``avkd pretrain --method``).
METHODS = ("avsiam",)

#: Seed of the held-out reconstruction masks (the same masks every epoch).
VAL_SEED = 1234

#: The loop's passes under ``combine="released"``, in the release's order (§1.6).
PASSES = ("contrastive", "reconstruction")


class AVSiamPretrainTask(ModelTrainTask):
    """AVSiam's two objectives as two passes a step (``released``) or summed into one loss (``sum``): the fit
    loop's TrainTask."""

    best_keys = (
        "contrastive",
        "rec_audio",
        "rec_video",
        "match_acc",
        "val_contrastive",
        "val_match_acc",
        "val_rec_audio",
        "val_rec_video",
    )
    # The classification heads take no part in pre-training: under DistributedDataParallel they have no gradient.
    find_unused_parameters = True

    def __init__(self, config: AVSiamPretrainConfig, artifact: Artifact) -> None:
        self.config = config
        try:
            self.ratios = resolve_ratios(config.ratios)
        except ValueError as exc:
            raise UsageError(f"ratios: {exc}") from None
        if len(config.betas) != 2 or not all(0.0 <= b < 1.0 for b in config.betas):
            raise UsageError(f"betas: Adam takes two numbers in [0, 1), got {config.betas}")
        inputs = pretrain_inputs(config, artifact)
        self.close = inputs.close
        self.spec = inputs.spec
        seed_everything(config.loop.seed)
        self.model = self.spec.build()
        self.train, self.val = inputs.datasets(self.model)
        self.contrastive = ContrastiveLoss(config.temperature)
        self.reconstruction = ReconstructionLoss(config.norm_pix)

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.model.parameters()), "betas": tuple(self.config.betas)}]

    @property
    def passes(self) -> tuple[str, ...]:
        """The loop's passes: :data:`PASSES` under ``released``, none (one step on :meth:`loss`) under ``sum``."""
        return PASSES if self.config.combine == "released" else ()

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "method": "avsiam", "combine": self.config.combine}

    # The masks draw from the global RNG, which the loop checkpoints: a resumed run draws the same masks.
    def _contrastive(self, audio: torch.Tensor, video: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        feat_a, feat_v = self.model.multi_ratio_features(audio, video, self.ratios)
        contrastive = self.contrastive(feat_a, feat_v)["contrastive"]
        logs = {
            "contrastive": float(contrastive.detach()),
            "match_acc": float(matching_accuracy(feat_a.detach().float(), feat_v.detach().float())),
        }
        return contrastive, logs

    def _reconstruction(
        self, audio: torch.Tensor, video: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        rec = self.reconstruction(self.model.reconstruct(audio, video, self.config.rec_ratio))
        logs = {"rec_audio": float(rec["rec/audio"].detach()), "rec_video": float(rec["rec/video"].detach())}
        return rec, logs

    def loss(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        """``sum``: L_c + L_rec,a + L_rec,v, one step."""
        audio, video = batch[0].to(device), batch[1].to(device)
        contrastive, c_logs = self._contrastive(audio, video)
        rec, r_logs = self._reconstruction(audio, video)
        total = contrastive + rec["rec/audio"] + rec["rec/video"]
        return total, {"contrastive": c_logs["contrastive"], **r_logs, "match_acc": c_logs["match_acc"]}

    def pass_loss(self, batch: Any, device: torch.device, name: str) -> tuple[torch.Tensor, dict[str, float]]:
        """``released``: pass ``contrastive`` (L_c) or ``reconstruction`` (L_rec,a + L_rec,v), each its own step."""
        audio, video = batch[0].to(device), batch[1].to(device)
        if name == "contrastive":
            return self._contrastive(audio, video)
        if name == "reconstruction":
            rec, logs = self._reconstruction(audio, video)
            return rec["rec/audio"] + rec["rec/video"], logs
        raise UsageError(f"unknown AVSiam pre-training pass {name!r}; the passes are {', '.join(PASSES)}")

    def validate(self, device: torch.device) -> dict[str, float]:
        out: dict[str, float] = {"epoch": self.train.epoch + 1}  # selects the last epoch
        if self.val is None:
            return out
        generator = torch.Generator(device=device).manual_seed(VAL_SEED)
        feats_a, feats_v, rec_a, rec_v, n = [], [], 0.0, 0.0, 0
        for audio, video, _ in DataLoader(self.val, batch_size=self.config.loop.batch_size):
            audio, video = audio.to(device), video.to(device)
            feats_a.append(self.model.encode_audio(audio).float())
            feats_v.append(self.model.encode_video(video).float())
            rec = self.reconstruction(self.model.reconstruct(audio, video, self.config.rec_ratio, generator))
            rec_a += float(rec["rec/audio"]) * len(audio)
            rec_v += float(rec["rec/video"]) * len(audio)
            n += len(audio)
        a, v = torch.cat(feats_a), torch.cat(feats_v)
        out.update(
            val_contrastive=float(info_nce(a, v, self.config.temperature)),
            val_match_acc=float(matching_accuracy(a, v)),
            val_chance=1.0 / n,
            val_rec_audio=rec_a / n,
            val_rec_video=rec_v / n,
        )
        return out


def pretrain_avsiam(
    config: AVSiamPretrainConfig,
    features: str | Path,
    out: str | Path,
    overwrite: bool = False,
    resume: bool = False,
    show_progress: bool = True,
) -> Artifact:
    """Pre-train AVSiam on a features artifact (one of :data:`~avkd.tasks.avsiam.inputs.ADAPTERS`) into a
    ``model`` artifact (the last epoch's weights; per-epoch losses and matching accuracy in ``metrics.jsonl``, the
    last epoch's as ``best_*`` metrics)."""

    def build() -> tuple[AVSiamPretrainTask, list[Artifact]]:
        feats = load_artifact(features, kind=tuple(ADAPTERS))
        return AVSiamPretrainTask(config, feats), [feats]

    return fit_stage(out, config, build, overwrite=overwrite, resume=resume, show_progress=show_progress)


def pretrain(
    method: str,
    config: AVSiamPretrainConfig,
    features: str | Path,
    out: str | Path,
    overwrite: bool = False,
    resume: bool = False,
    show_progress: bool = True,
) -> Artifact:
    """The ``avkd pretrain`` stage: ``method`` one of :data:`METHODS`."""
    if method != "avsiam":
        raise UsageError(f"unknown pre-training method {method!r}; choose one of {', '.join(METHODS)}")
    return pretrain_avsiam(config, features, out, overwrite, resume, show_progress)
