"""Training objectives of two-stream sync models that embed each window (SyncNet): registered losses of the
student alone (``uses_teacher = False``), computed from its ``video`` and ``audio`` embedding taps.

* ``pm`` — Perfect Match (Chung, Chung & Kang, ICASSP 2019), in the form of joonson/syncnet_trainer
  ``SyncNetDist.sync_loss`` (docs/reference/avsiam-mfh-syncnet.md §3.6): within each clip,
  every video step ``i`` is classified among all audio steps ``j`` of the same clip by the logits
  ``w·cos(v_i, a_j) + b`` (``LossScale``: learnable ``w``, ``b`` initialised 10 and −5), cross-entropy with the
  true step ``j = i`` as the label; averaged over the steps of a clip, then over clips.
* ``offsets`` (built by the sync stage, not registered: it reads a score matrix) — the 31-way within-clip
  objective of §3.6 ("avkd formulation"), on the model's own scores: every video window ``i`` is classified
  among the audio windows ``i+d``, ``d = −vshift..+vshift`` (15: 31 candidates), that exist, by ``model.fuse``
  of each (video, audio) pair — the score matrix the 31-candidate evaluator builds (avkd/evaluate/sync.py) —
  cross-entropy with ``d = 0`` as the label, averaged over the windows of a clip, then
  over clips. It is ``pm`` restricted to a band ``|i − j| ≤ vshift`` and scored by the model instead of
  ``w·cos + b`` of two taps (for ``avsiam_sync`` the two coincide: its ``fuse`` is a scaled cosine).
* ``contrastive`` — the SyncNet 2016 loss (§3.6): ``E = 1/(2N) Σ_n [y_n d_n² + (1 − y_n) max(m − d_n, 0)²]``
  with ``d_n = ‖v_n − a_n‖₂`` and margin ``m`` (20), ``y_n = 1`` for an in-sync pair.

The ``labels`` passed to ``forward`` say what the windows are: for ``pm`` and ``offsets`` the clip index of every
window (N,) (the windows of a clip in time order; the lengths may differ), for ``contrastive`` the in-sync flag
(N,). ``offsets`` takes the score matrix (N, 2·vshift+1) as the student's ``logits`` (NaN: no such candidate;
column ``j`` is offset ``j − vshift``, the evaluator's layout) instead of taps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avkd.core.errors import UsageError
from avkd.losses.base import DistillLoss, full_precision, register_loss
from avkd.models.attention import Tapped

__all__ = [
    "ContrastiveLoss",
    "OffsetMatchingLoss",
    "PerfectMatchLoss",
    "contrastive_loss",
    "offset_matching_loss",
    "perfect_match_loss",
]

#: The embedding taps an embedding sync model records (avkd/models/syncnet.py): (N, D) each.
VIDEO_TAP, AUDIO_TAP = "video", "audio"


def _pair(student: Tapped, loss: DistillLoss, labels: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    v, a = loss.student_tap(student, VIDEO_TAP).float(), loss.student_tap(student, AUDIO_TAP).float()
    if v.dim() != 2 or v.shape != a.shape:
        raise ValueError(
            f"loss {loss.name!r}: video/audio embeddings must be (N, D) alike, got {v.shape}, {a.shape}"
        )
    if labels is None or labels.shape != (v.shape[0],):
        got = None if labels is None else tuple(labels.shape)
        raise ValueError(f"loss {loss.name!r}: labels must be ({v.shape[0]},), one per window, got {got}")
    return v, a, labels


def perfect_match_loss(v: Tensor, a: Tensor, clips: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """PM loss of embeddings ``v``, ``a`` (N, D) whose windows belong to clips ``clips`` (N,) (module docstring).

    ``logits[i, j] = w·cos(v_i, a_j) + b`` over the audio steps ``j`` of the clip of ``i`` (others masked);
    ``−log softmax(logits[i])[i]`` per step, mean per clip, mean over clips. ``b`` is the reference's shift:
    a constant over ``j``, it leaves the loss (and its own gradient, 0) unchanged.
    """
    sim = F.cosine_similarity(v.unsqueeze(1), a.unsqueeze(0), dim=-1)  # (N, N): [i, j] = cos(v_i, a_j)
    logits = (w * sim + b).masked_fill(clips.unsqueeze(1) != clips.unsqueeze(0), float("-inf"))
    per_step = F.cross_entropy(logits, torch.arange(v.shape[0], device=v.device), reduction="none")
    return _mean_per_clip(per_step, clips)


def _mean_per_clip(per_step: Tensor, clips: Tensor) -> Tensor:
    """Mean over the steps of each clip, then over clips."""
    _, group, count = torch.unique(clips, return_inverse=True, return_counts=True)
    per_clip = torch.zeros(count.shape, dtype=per_step.dtype, device=per_step.device).index_add(
        0, group, per_step
    )
    return (per_clip / count).mean()


def offset_matching_loss(scores: Tensor, clips: Tensor) -> Tensor:
    """``offsets`` loss of a score matrix ``scores`` (N, 2·vshift+1) (NaN: no candidate) whose rows belong to
    clips ``clips`` (N,): ``−log softmax`` over the row's candidates at the centre column (offset 0), mean per
    clip, mean over clips (module docstring)."""
    if scores.dim() != 2 or scores.shape[1] % 2 == 0 or clips.shape != (scores.shape[0],):
        raise ValueError(
            f"offsets: scores must be (N, 2·vshift+1) and clips (N,), got {tuple(scores.shape)}, "
            f"{tuple(clips.shape)}"
        )
    centre = scores.shape[1] // 2
    if torch.isnan(scores[:, centre]).any():
        raise ValueError("offsets: every row needs its own (offset 0) candidate")
    logits = torch.where(torch.isnan(scores), float("-inf"), scores)
    target = torch.full((scores.shape[0],), centre, dtype=torch.long, device=scores.device)
    return _mean_per_clip(F.cross_entropy(logits, target, reduction="none"), clips)


def contrastive_loss(v: Tensor, a: Tensor, in_sync: Tensor, margin: float) -> Tensor:
    """SyncNet's contrastive loss (module docstring) of pairs ``(v_n, a_n)`` with flags ``in_sync`` (N,)."""
    d = F.pairwise_distance(
        v, a
    )  # the distance the model scores with (its eps keeps the gradient finite at 0)
    y = in_sync.float()
    return (y * d.pow(2) + (1 - y) * (margin - d).clamp(min=0).pow(2)).sum() / (2 * v.shape[0])


@register_loss(name="pm", aliases=("perfect_match",))
class PerfectMatchLoss(DistillLoss):
    """``pm``: multi-way matching of each video step against the audio steps of its clip (module docstring).

    ``init_w`` / ``init_b``: the ``LossScale`` initial values (10, −5; syncnet_trainer); both are parameters
    of the loss, trained with the model (the stage adds ``loss.parameters()`` to the optimiser).
    """

    uses_teacher = False

    def __init__(self, init_w: float = 10.0, init_b: float = -5.0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(float(init_w)))
        self.b = nn.Parameter(torch.tensor(float(init_b)))

    def taps(self) -> list[str]:
        return [VIDEO_TAP, AUDIO_TAP]

    def term_names(self) -> list[str]:
        return ["pm"]

    @full_precision
    def forward(self, student: Tapped, teacher: Tapped, labels: Tensor | None = None) -> dict[str, Tensor]:
        v, a, clips = _pair(student, self, labels)
        return {"pm": perfect_match_loss(v, a, clips, self.w.float(), self.b.float())}


class OffsetMatchingLoss(DistillLoss):
    """``offsets``: each video window among the audio windows within ``±vshift`` of it (module docstring).

    The student's ``logits`` are the score matrix (N, 2·vshift+1) the stage computes with the model's
    ``encode_video`` / ``encode_audio`` / ``fuse`` (each window encoded once, as the evaluator does); no taps.
    ``vshift`` (15: the evaluator's 31 candidates, docs/reference/vocalist.md §4) sets the band. Not in the loss
    registry: it reads a score matrix the stage builds, not the outputs of a model's forward (the registry's
    contract, avkd/losses/base.py); the sync stage builds it for ``--objective offsets``.
    """

    uses_teacher = False

    def __init__(self, vshift: int = 15) -> None:
        super().__init__()
        if vshift < 1:
            raise UsageError(f"offsets vshift must be >= 1, got {vshift}")
        self.vshift = int(vshift)

    def term_names(self) -> list[str]:
        return ["offsets"]

    @full_precision
    def forward(self, student: Tapped, teacher: Tapped, labels: Tensor | None = None) -> dict[str, Tensor]:
        scores = student.logits.float()
        if scores.dim() != 2 or scores.shape[1] != 2 * self.vshift + 1:
            raise ValueError(
                f"loss 'offsets': scores must be (N, {2 * self.vshift + 1}), got {tuple(scores.shape)}"
            )
        if labels is None:
            raise ValueError("loss 'offsets': labels must be the clip index of every row")
        return {"offsets": offset_matching_loss(scores, labels)}


@register_loss(name="contrastive")
class ContrastiveLoss(DistillLoss):
    """``contrastive``: SyncNet 2016's same/different loss on pair distances, margin 20 (module docstring)."""

    uses_teacher = False

    def __init__(self, margin: float = 20.0) -> None:
        super().__init__()
        if margin <= 0:
            raise UsageError(f"contrastive margin must be > 0, got {margin}")
        self.margin = float(margin)

    def taps(self) -> list[str]:
        return [VIDEO_TAP, AUDIO_TAP]

    def term_names(self) -> list[str]:
        return ["contrastive"]

    @full_precision
    def forward(self, student: Tapped, teacher: Tapped, labels: Tensor | None = None) -> dict[str, Tensor]:
        v, a, in_sync = _pair(student, self, labels)
        return {"contrastive": contrastive_loss(v, a, in_sync, self.margin)}
