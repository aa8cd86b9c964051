"""AVSiam's two pre-training objectives: the symmetric audio-visual InfoNCE and the masked reconstruction MSE.

Facts: docs/reference/avsiam-mfh-syncnet.md §1.6 (the released ``forward_contrastive`` and
``forward_mae_loss`` of ``src/models/cav_mae_base.py``) and the paper (ECCV 2024, Sec. 3.3: L = L_rec + L_c).

These are not distillation losses: they read one model's own outputs (pooled features, a
:class:`~avkd.models.avsiam.Reconstruction`), not a student's and a teacher's taps, so they do not fit
:class:`~avkd.losses.base.DistillLoss` and its contract (tests/losses/test_contract.py runs every entry of
``LOSSES`` on a teacher/student pair). They are plain ``nn.Module`` losses in a registry of their own,
:data:`PRETRAIN_LOSSES` (the same :class:`~avkd.core.registry.Registry` mechanism), and return named, unweighted
scalar terms as distillation losses do, so a weighting can combine them. The released code does not sum them:
it takes two optimiser steps per batch, one per objective, each with its own Adam and GradScaler (§1.6).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avkd.core.registry import Registry
from avkd.models.avsiam import Reconstruction
from avkd.models.distributed import gather_with_grad

__all__ = [
    "PRETRAIN_LOSSES",
    "TEMPERATURE",
    "ContrastiveLoss",
    "ReconstructionLoss",
    "build_pretrain_loss",
    "info_nce",
    "list_pretrain_losses",
    "masked_mse",
    "matching_accuracy",
    "register_pretrain_loss",
]

#: The released fixed temperature (no learnable scale, §1.6).
TEMPERATURE = 0.05

PRETRAIN_LOSSES: Registry[Callable[..., nn.Module]] = Registry("pre-training loss")
#: ``@register_pretrain_loss`` or ``@register_pretrain_loss(name="x")``.
register_pretrain_loss = PRETRAIN_LOSSES.register


def list_pretrain_losses(pattern: str = "*") -> list[str]:
    """Sorted names of the registered pre-training losses matching the fnmatch ``pattern``."""
    return sorted(PRETRAIN_LOSSES.names(pattern))


def build_pretrain_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build the pre-training loss registered as ``name``; unknown names and arguments are ``UsageError``."""
    return PRETRAIN_LOSSES.build(name, **kwargs)


@contextlib.contextmanager
def _float32(x: Tensor) -> Iterator[None]:
    # The losses run in float32 with autocast off on the inputs' device (under AMP a matmul of similarities at
    # τ = 0.05 in half precision would lose the small differences the softmax needs).
    dev = x.device.type
    if torch.is_autocast_enabled(dev):
        with torch.autocast(dev, enabled=False):
            yield
    else:
        yield


# ------------------------------------------------------------------------------------------ functions


def _similarities(feat_a: Tensor, feat_v: Tensor, temperature: float) -> Tensor:
    a = F.normalize(feat_a.float(), dim=-1)
    v = F.normalize(feat_v.float(), dim=-1)
    return a @ v.t() / temperature


def info_nce(feat_a: Tensor, feat_v: Tensor, temperature: float = TEMPERATURE) -> Tensor:
    """Symmetric InfoNCE over a batch (§1.6): with S = â·v̂ᵀ/τ of the L2-normalised features (B, B), the mean of
    the cross-entropy of each video column over the audio rows and of each audio row over the video columns,
    the matched pair (the diagonal) being the target. The released code writes both as ``log_softmax(dim=0)``
    of S and of Sᵀ and averages them (``bidirect_contrast=True``). The paper's equation is the audio→video half."""
    s = _similarities(feat_a, feat_v, temperature)
    target = torch.arange(s.size(0), device=s.device)
    return (F.cross_entropy(s, target) + F.cross_entropy(s.t(), target)) / 2


@torch.no_grad()
def matching_accuracy(feat_a: Tensor, feat_v: Tensor) -> Tensor:
    """Top-1 matching accuracy, the mean over both directions (the released ``c_acc``)."""
    s = _similarities(feat_a, feat_v, 1.0)
    target = torch.arange(s.size(0), device=s.device)
    return ((s.argmax(dim=1) == target).float().mean() + (s.argmax(dim=0) == target).float().mean()) / 2


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor, norm_pix: bool = False) -> Tensor:
    """MSE per patch (mean over the patch's values), averaged over the removed patches only (``mask`` = 1)
    (§1.6). ``pred``/``target`` (B, L, P), ``mask`` (B, L).

    ``norm_pix=True`` first normalises each target patch by its own mean and unbiased variance (MAE's
    ``norm_pix_loss``, ε = 1e-6). The released code has it commented out, so it trains on the raw patches
    (the dataset-normalised fbank and the ImageNet-normalised RGB) although its script sets the flag; its
    comment says per-patch normalisation loses the inpainting ability. Off by default, as released.
    """
    target = target.float()
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1e-6) ** 0.5
    per_patch = (pred.float() - target).pow(2).mean(dim=-1)
    mask = mask.float()
    return (per_patch * mask).sum() / mask.sum()


# --------------------------------------------------------------------------------------------- losses


class ContrastiveLoss(nn.Module):
    """AVSiam's contrastive objective: one term ``contrastive`` = :func:`info_nce` of F_a, F_v.

    Under data parallelism the features of every process are gathered first, with gradient
    (:func:`~avkd.models.distributed.gather_with_grad`), so the negatives are the whole global batch (the
    released ``GatherLayer``; 4 per GPU × 16 GPUs = 64, §1.6); every process computes the same global loss and
    DDP's averaging of the parameter gradients then gives that loss's gradient. In one process it is the batch.
    """

    def __init__(self, temperature: float = TEMPERATURE) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature

    def term_names(self) -> list[str]:
        return ["contrastive"]

    def forward(self, feat_a: Tensor, feat_v: Tensor) -> dict[str, Tensor]:
        """``feat_a``, ``feat_v`` (B, d) of this process → ``{"contrastive": 0-dim float32}``."""
        with _float32(feat_a):
            a, v = gather_with_grad(feat_a.float()), gather_with_grad(feat_v.float())
            return {"contrastive": info_nce(a, v, self.temperature)}


class ReconstructionLoss(nn.Module):
    """AVSiam's reconstruction objective: terms ``rec/audio`` and ``rec/video``, :func:`masked_mse` of each
    modality; their sum (unweighted) is the released ``loss_mae`` (§1.6)."""

    def __init__(self, norm_pix: bool = False) -> None:
        super().__init__()
        self.norm_pix = norm_pix

    def term_names(self) -> list[str]:
        return ["rec/audio", "rec/video"]

    def forward(self, rec: Reconstruction) -> dict[str, Tensor]:
        with _float32(rec.pred_a):
            return {
                "rec/audio": masked_mse(rec.pred_a, rec.target_a, rec.mask_a, self.norm_pix),
                "rec/video": masked_mse(rec.pred_v, rec.target_v, rec.mask_v, self.norm_pix),
            }


register_pretrain_loss(ContrastiveLoss, name="avsiam_contrastive")
register_pretrain_loss(ReconstructionLoss, name="avsiam_reconstruction")
