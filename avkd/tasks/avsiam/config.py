"""The AVSiam pre-training and fine-tuning stages' configuration.

Defaults are the released pre-training script's (docs/reference/avsiam-mfh-syncnet.md §1.6, ``run_pretrain_base.sh``
and ``traintest_cavmae_base.py``): Adam, lr 2e-4 (the paper says 1e-4), betas (0.95, 0.999), weight decay 5e-7,
25 epochs, MultiStepLR halving the rate at epoch 10 and every 5 epochs after, a global batch of 64 (4 per GPU × 16).
Fine-tuning's are the released VGGSound fine-tuning's (§1.8, ``traintest_ft_base.py``): lr 5e-5, heads at 10×, 20
epochs, batch 64, label smoothing 0.1, mixed modalities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from avkd.core.config import bounded
from avkd.models.masking import RECONSTRUCTION_RATIO, RELEASED_RATIOS
from avkd.train.loop import LoopConfig

__all__ = [
    "COMBINE",
    "MODALITIES",
    "AVSiamFinetuneConfig",
    "AVSiamPretrainConfig",
    "finetune_loop",
    "pretrain_loop",
]

#: How the two objectives make one step (see :mod:`avkd.tasks.avsiam.pretrain`): ``released`` (two optimiser steps
#: a batch, each with its own Adam, schedule and grad scaler, §1.6) or ``sum`` (one step on the summed loss).
COMBINE = ("released", "sum")


def pretrain_loop(epochs: int = 25, device: str = "auto") -> LoopConfig:
    """The released optimisation (§1.6): lr 2e-4, weight decay 5e-7, MultiStepLR(range(10, ∞, 5), 0.5), batch 64.
    The last epoch is the model (the release keeps every epoch and uses the last): selection by ``epoch``."""
    return LoopConfig(
        epochs=epochs,
        batch_size=64,
        lr=2e-4,
        weight_decay=5e-7,
        scheduler="multistep",
        warmup_epochs=10,
        step_epochs=5,
        gamma=0.5,
        select_metric="epoch",
        select_mode="max",
        device=device,
    )


@dataclass
class AVSiamPretrainConfig:
    #: ``avsiam`` model size (avkd.models.avsiam.SIZES); its input sizes must match the features'.
    size: str = "toy"
    #: Classes of the (untrained) heads; None: the corpus's.
    num_classes: int | None = bounded(None, ge=1)
    #: Decoder depth (None: the size's; the released 8, the paper 6).
    decoder_depth: int | None = bounded(None, ge=1)
    #: Patch side (None: the size's); for the MOSEI and LRS2 adapters' maps (clips take the size's).
    patch_size: int | None = bounded(None, ge=1)
    #: Multi-ratio masking of the contrastive pass (§1.5): each sample gets one of these (the released 0.2·i).
    ratios: list[float] = field(default_factory=lambda: list(RELEASED_RATIOS))
    #: Masking ratio of the reconstruction pass (§1.5: fixed 0.75).
    rec_ratio: float = bounded(RECONSTRUCTION_RATIO, gt=0.0, le=0.99)
    #: InfoNCE temperature (§1.6: fixed 0.05).
    temperature: float = bounded(0.05, gt=0.0)
    #: MAE's per-patch target normalisation (§1.6: commented out in the release, so off).
    norm_pix: bool = False
    #: Adam betas (§1.6: (0.95, 0.999), both optimisers); the loop's Adam takes them per parameter group.
    betas: list[float] = field(default_factory=lambda: [0.95, 0.999])
    #: ``released`` (§1.6, ``traintest_cavmae_base.py``): per batch a contrastive step, then a reconstruction step
    #: (L_rec,a + L_rec,v), each with its own Adam, MultiStepLR and grad scaler; ``sum``: one step on
    #: L = L_c + L_rec,a + L_rec,v (the paper's L = L_rec + L_c).
    combine: Literal["released", "sum"] = "released"
    loop: LoopConfig = field(default_factory=pretrain_loop)
    train_split: str = "train"
    #: Held-out clips scored after each epoch (no masking for the matching, fixed masks for reconstruction);
    #: None: none.
    val_split: str | None = "test"
    keep_checkpoint: bool = False


#: Fine-tuning inputs per iteration (§1.8): ``mixed`` (the released ``mm_grad``: p ~ U(0, 1), p > 0.5 audio-visual,
#: p < 0.25 audio only, else video only) or ``av`` (audio-visual every iteration, for the comparison).
MODALITIES = ("mixed", "av")


def finetune_loop(epochs: int = 20, device: str = "auto") -> LoopConfig:
    """The released VGGSound fine-tuning (§1.8): lr 5e-5, 20 epochs, batch 64; selection on the held-out
    audio-visual accuracy. The reference page gives no schedule for it, so the rate is constant."""
    return LoopConfig(
        epochs=epochs,
        batch_size=64,
        lr=5e-5,
        scheduler="constant",
        select_metric="val_acc",
        select_mode="max",
        device=device,
    )


@dataclass
class AVSiamFinetuneConfig:
    #: ``avsiam`` size when training from scratch (no ``--init``); with one, the pre-trained model's size is used
    #: and a different value here is refused.
    size: str | None = None
    #: ``mixed`` (§1.8) or ``av``.
    modalities: Literal["mixed", "av"] = "mixed"
    #: Learning rate of the parameters whose names contain ``head``, as a multiple of the base rate (§1.8: 10 for
    #: VGGSound, 100 for AS-20K).
    head_lr: float = bounded(10.0, gt=0.0)
    #: Cross-entropy label smoothing (§1.8: 0.1 for VGGSound).
    label_smoothing: float = bounded(0.1, ge=0.0, le=0.99)
    loop: LoopConfig = field(default_factory=finetune_loop)
    train_split: str = "train"
    #: Held-out clips scored after each epoch (accuracy under av, audio-only and video-only inputs, video logits
    #: averaged over every stored frame); the model is the epoch with the best audio-visual accuracy.
    val_split: str = "test"
    keep_checkpoint: bool = False
