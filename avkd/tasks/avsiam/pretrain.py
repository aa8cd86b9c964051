"""``avkd pretrain --method avsiam``: AVSiam's self-supervised pre-training on a ``clips-features`` artifact.

Facts: docs/reference/avsiam-mfh-syncnet.md §1.5-§1.7 (the released ``traintest_cavmae_base.py``,
``run_pretrain_base.sh`` and ``dataloader.py``) and the paper (ECCV 2024, Sec. 3.3).

Each step (one batch of clips, one random frame of each, :class:`PretrainClips`):

* **contrastive**: F_a, F_v under multi-ratio masking (:meth:`~avkd.models.avsiam.AVSiam.multi_ratio_features`:
  each sample gets a ratio of the set, samples with the same kept count are packed into one sub-batch without
  padding), then the symmetric InfoNCE at τ = 0.05, gathered with gradient under data parallelism
  (:class:`~avkd.losses.avsiam.ContrastiveLoss`); the top-1 matching accuracy is logged (the released ``c_acc``);
* **reconstruction**: both modalities masked at random at 0.75, the decoder's MSE over the removed patches only
  (:meth:`~avkd.models.avsiam.AVSiam.reconstruct`, :class:`~avkd.losses.avsiam.ReconstructionLoss`), audio and
  video logged apart.

**How the objectives combine.** Only ``combine="sum"``: one optimiser step on L = L_c + L_rec,a + L_rec,v, the
paper's L = L_rec + L_c. The released code instead takes two full forward/backward/step passes per batch, the
contrastive one with its own Adam and GradScaler and then the reconstruction one with a second Adam and
GradScaler (§1.6). That is not offered here: the one training loop (:func:`avkd.train.loop.fit`) owns a single
optimiser, scheduler and scaler, and checkpoints and resumes exactly those; a second set (two states in the
checkpoint, two scalers, two backward passes through the data-parallel wrapper a step) is a change of the loop,
not of this stage, and is left for later rather than half-wired.

Optimisation (§1.6, :func:`~avkd.tasks.avsiam.config.pretrain_loop`): Adam with betas (0.95, 0.999) (given per
parameter group, since the loop's Adam takes its other settings from :class:`~avkd.train.loop.LoopConfig`), lr 2e-4,
weight decay 5e-7, MultiStepLR halving at epoch 10 and every 5 after. The model is the last epoch's, as released
(selection on ``epoch``); after each epoch the held-out split (``val_split``) is scored: the InfoNCE and the
matching accuracy of the unmasked features (the middle stored frame) over the whole split (chance 1/N), and the reconstruction losses under
masks drawn from a fixed seed, so that epochs compare.

Not reproduced: the released loader's fbank augmentation (uniform noise scaled by a random factor / 10 and a random
roll in time, §1.7), the per-epoch linear probe on AS-20K, and the released ``ast_base`` audio copy for
reconstruction (a stated departure of :mod:`avkd.models.avsiam`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avkd.core.artifacts import CLIPS_FEATURES, Artifact, load_artifact
from avkd.core.errors import UsageError
from avkd.data.clips.dataset import ClipDataset, normalize_frames
from avkd.data.clips.store import ClipStore
from avkd.losses.avsiam import ContrastiveLoss, ReconstructionLoss, info_nce, matching_accuracy
from avkd.models.avsiam import SIZES
from avkd.models.io import ModelSpec
from avkd.models.masking import resolve_ratios
from avkd.tasks.avsiam.config import AVSiamPretrainConfig
from avkd.train.checkpoint import seed_everything
from avkd.train.loop import ModelTrainTask, fit_stage

__all__ = ["METHODS", "AVSiamPretrainTask", "PretrainClips", "check_sizes", "pretrain", "pretrain_avsiam"]

#: Pre-training methods by name (``avkd pretrain --method``).
METHODS = ("avsiam",)

#: Seed of the held-out reconstruction masks (the same masks every epoch).
VAL_SEED = 1234


class PretrainClips(Dataset):
    """The clips of one split in a new order each epoch, each with one of its stored frames, both a pure function
    of (seed, epoch, index): the released pre-training feeds one random frame of the 10 (§1.7).

    Items are (fbank (1, F, T) float32, frame (3, S, S) float32 ImageNet-normalised, label)."""

    def __init__(self, clips: ClipDataset, seed: int) -> None:
        self.clips, self.seed = clips, seed
        self.frames = int(clips.store.artifact.config.get("frames", 10))
        self.epoch = 0
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch])
        self.epoch = epoch
        self.order = rng.permutation(len(self.clips))
        self.frame = rng.integers(0, self.frames, len(self.clips))

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i, k = int(self.order[index]), int(self.frame[index])
        store, key = self.clips.store, self.clips.keys[i]
        fbank = torch.from_numpy(store.fbank(key)).unsqueeze(0)
        raw = np.ascontiguousarray(store.frames(key, k, k + 1))
        frame = normalize_frames(torch.from_numpy(raw).permute(0, 3, 1, 2)[0])
        return fbank, frame, self.clips.label(i)


def check_sizes(size: str, artifact: Artifact) -> None:
    """The ``size`` AVSiam's inputs (frame side, fbank bins × frames) must be the features'; a one-line usage
    error naming the artifact otherwise (before any model is built)."""
    if size not in SIZES:
        raise UsageError(f"unknown avsiam size {size!r}; choose one of {', '.join(SIZES)}")
    cfg, feats = SIZES[size], artifact.config
    have = (int(feats.get("size", 0)), int(feats.get("mel_bins", 0)), int(feats.get("mel_frames", 0)))
    want = (cfg.image_size, *cfg.audio_size)
    if have != want:
        raise UsageError(
            f"{artifact.path}: frames {have[0]}² and fbank {have[1]}×{have[2]} do not fit the {size!r} AVSiam "
            f"({want[0]}² frames, {want[1]}×{want[2]} fbank); preprocess with --size {want[0]} --mel-frames "
            f"{want[2]} --set mel_bins={want[1]}, or pick the size that fits"
        )


class AVSiamPretrainTask(ModelTrainTask):
    """AVSiam's two objectives summed into one loss (the fit loop's TrainTask)."""

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
        check_sizes(config.size, artifact)
        self.store = ClipStore(artifact)
        try:
            train = ClipDataset(self.store, config.train_split)
            # Held out: the middle stored frame of each clip (fixed, so that epochs compare).
            middle = int(artifact.config.get("frames", 10)) // 2
            self.val = ClipDataset(self.store, config.val_split, frame=middle) if config.val_split else None
        except UsageError:
            self.store.close()
            raise
        kwargs: dict[str, Any] = {"size": config.size, "num_classes": config.num_classes or train.num_classes}
        if config.decoder_depth is not None:
            kwargs["decoder_depth"] = config.decoder_depth
        self.spec = ModelSpec("avsiam", kwargs)
        seed_everything(config.loop.seed)
        self.model = self.spec.build()
        self.train = PretrainClips(train, config.loop.seed)
        self.contrastive = ContrastiveLoss(config.temperature)
        self.reconstruction = ReconstructionLoss(config.norm_pix)

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.model.parameters()), "betas": tuple(self.config.betas)}]

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "method": "avsiam", "combine": self.config.combine}

    def loss(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        audio, video = batch[0].to(device), batch[1].to(device)
        # The masks draw from the global RNG, which the loop checkpoints: a resumed run draws the same masks.
        feat_a, feat_v = self.model.multi_ratio_features(audio, video, self.ratios)
        contrastive = self.contrastive(feat_a, feat_v)["contrastive"]
        rec = self.reconstruction(self.model.reconstruct(audio, video, self.config.rec_ratio))
        total = contrastive + rec["rec/audio"] + rec["rec/video"]
        logs = {
            "contrastive": float(contrastive.detach()),
            "rec_audio": float(rec["rec/audio"].detach()),
            "rec_video": float(rec["rec/video"].detach()),
            "match_acc": float(matching_accuracy(feat_a.detach().float(), feat_v.detach().float())),
        }
        return total, logs

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

    def close(self) -> None:
        self.store.close()


def pretrain_avsiam(
    config: AVSiamPretrainConfig,
    features: str | Path,
    out: str | Path,
    overwrite: bool = False,
    resume: bool = False,
    show_progress: bool = True,
) -> Artifact:
    """Pre-train AVSiam on a ``clips-features`` artifact into a ``model`` artifact (the last epoch's weights;
    per-epoch losses and matching accuracy in ``metrics.jsonl``, the last epoch's as ``best_*`` metrics)."""

    def build() -> tuple[AVSiamPretrainTask, list[Artifact]]:
        feats = load_artifact(features, kind=CLIPS_FEATURES)
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
