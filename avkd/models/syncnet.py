"""SyncNet v2 (Chung & Zisserman, "Out of time", ACCV-W 2016; the released colour model of joonson/syncnet_python).

Re-implemented from docs/reference/avsiam-mfh-syncnet.md §3.2. Module and
parameter names follow the official class ``S`` (``netcnnaud``, ``netfcaud``, ``netcnnlip``, ``netfclip``, the
``nn.Sequential`` indices included), so the released ``syncnet_v2.model`` (a bare state dict) loads with
``load_state_dict(strict=True)``.

Two streams, each a CNN followed by a two-layer MLP into a shared embedding space (1024-d):

* audio ``encode_audio(mfcc)``: (B, 1, 13, 20), 13 MFCC × 20 steps at 100 Hz = 0.2 s
  (:func:`avkd.media.audio.syncnet_mfcc`); 2-D convs 1→64→192→384→256→256, then a (5, 4) conv to 512×1×1;
* video ``encode_video(frames)``: (B, 3, 5, 224, 224), five colour frames of a 224×224 face crop, BGR in 0..255
  as the official pipeline reads them with cv2 (no normalisation); the first Conv3d (kernel depth 5) is the only
  temporal layer, the rest are (1, k, k) convs down to 512×1×1×1.

Both return tokens (1, B, D) (one "time step" per window), the layout of the other sync models' front-ends, so
the 31-candidate evaluator (:mod:`avkd.evaluate.sync`) indexes them the same way. ``fuse(v, a)`` is the score of
each pair, ``−‖v − a‖₂`` (the reference's ``calc_pdist`` uses ``F.pairwise_distance``; a higher score is a better
match, so the retrieval argmax picks the smallest distance), and ``forward(video, audio) = fuse(...)``.

``embed_dim=1024`` and the official channel lists give 13,631,616 parameters (§3.2). The channel lists are
arguments (not in the reference) so that tests and CPU experiments can build a thin copy; only the defaults load
the released weights. Taps: ``audio_cnn``/``video_cnn`` (B, C) are the CNN outputs (the reference's
``forward_lipfeat`` is ``video_cnn``), ``audio``/``video`` (B, D) the embeddings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import overload

import torch.nn.functional as F
from torch import Tensor, nn

from avkd.models.attention import Tapped, TapRecorder, TapRequest, recorder_for
from avkd.models.registry import register_model

__all__ = [
    "AUDIO_CHANNELS",
    "AUDIO_SHAPE",
    "EMBED_DIM",
    "VIDEO_CHANNELS",
    "VIDEO_SHAPE",
    "SyncNet",
]

#: Official widths (§3.2): audio convs 64, 192, 384, 256, 256 then 512; video convs 96, 256, 256, 256, 256, 512.
AUDIO_CHANNELS: tuple[int, ...] = (64, 192, 384, 256, 256, 512)
VIDEO_CHANNELS: tuple[int, ...] = (96, 256, 256, 256, 256, 512)
#: ``num_layers_in_fc_layers`` of ``S`` (§3.2).
EMBED_DIM = 1024
#: One window per input (§3.3): 13 MFCC × 20 steps; 3 colours × 5 frames × 224 × 224.
AUDIO_SHAPE: tuple[int, ...] = (1, 13, 20)
VIDEO_SHAPE: tuple[int, ...] = (3, 5, 224, 224)

# Each conv stage is conv → BN → ReLU [→ max-pool]: (kernel, stride, padding, pool); pool = (kernel, stride,
# padding) or None. The order and the pools fix the nn.Sequential indices of the official state dict (§3.2).
_Pool = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
_Stage = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], _Pool | None]
_AUDIO_STAGES: tuple[_Stage, ...] = (
    (
        (3, 3),
        (1, 1),
        (1, 1),
        ((1, 1), (1, 1), (0, 0)),
    ),  # the official 1×1 pool is a no-op, kept for the indices
    ((3, 3), (1, 1), (1, 1), ((3, 3), (1, 2), (0, 0))),  # 13×20 → 11×9
    ((3, 3), (1, 1), (1, 1), None),
    ((3, 3), (1, 1), (1, 1), None),
    ((3, 3), (1, 1), (1, 1), ((3, 3), (2, 2), (0, 0))),  # → 5×4
    ((5, 4), (1, 1), (0, 0), None),  # → 1×1
)
_VIDEO_STAGES: tuple[_Stage, ...] = (
    ((5, 7, 7), (1, 2, 2), (0, 0, 0), ((1, 3, 3), (1, 2, 2), (0, 0, 0))),  # 5×224² → 1×109² → 54²
    ((1, 5, 5), (1, 2, 2), (0, 1, 1), ((1, 3, 3), (1, 2, 2), (0, 1, 1))),  # → 26² → 13²
    ((1, 3, 3), (1, 1, 1), (0, 1, 1), None),
    ((1, 3, 3), (1, 1, 1), (0, 1, 1), None),
    ((1, 3, 3), (1, 1, 1), (0, 1, 1), ((1, 3, 3), (1, 2, 2), (0, 0, 0))),  # → 6²
    ((1, 6, 6), (1, 1, 1), (0, 0, 0), None),  # → 1×1×1
)


def _cnn(dims: int, stages: Sequence[_Stage], cin: int, channels: Sequence[int]) -> nn.Sequential:
    conv, norm, pool = (
        (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d)
    )
    layers: list[nn.Module] = []
    for (kernel, stride, padding, pooling), cout in zip(stages, channels, strict=True):
        layers += [conv(cin, cout, kernel, stride, padding), norm(cout), nn.ReLU(inplace=True)]
        if pooling is not None:
            layers.append(pool(*pooling))
        cin = cout
    return nn.Sequential(*layers)


def _mlp(width: int, embed_dim: int) -> nn.Sequential:
    """Linear → BN1d → ReLU → Linear, the ``netfcaud``/``netfclip`` head (§3.2)."""
    return nn.Sequential(
        nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Linear(width, embed_dim)
    )


def _check_channels(name: str, channels: Sequence[int]) -> tuple[int, ...]:
    ch = tuple(int(c) for c in channels)
    if len(ch) != 6 or min(ch) < 1:
        raise ValueError(f"{name} must be 6 positive numbers, got {tuple(channels)}")
    return ch


class SyncNet(nn.Module):
    """SyncNet v2 (§3.2): two-stream embedding model scored by Euclidean distance; see the module docstring.

    ``embed_dim`` is the reference's ``num_layers_in_fc_layers`` (1024); ``audio_channels`` / ``video_channels``
    the six conv widths of each stream (the last is the MLP's width, 512 in the reference).
    """

    #: How the evaluator and the datasets cut its windows (avkd.data.lrs2.layouts): 224×224 crops, MFCC.
    input_layout = "syncnet"

    def __init__(
        self,
        embed_dim: int = EMBED_DIM,
        audio_channels: Sequence[int] = AUDIO_CHANNELS,
        video_channels: Sequence[int] = VIDEO_CHANNELS,
    ) -> None:
        super().__init__()
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1, got {embed_dim}")
        a_ch = _check_channels("audio_channels", audio_channels)
        v_ch = _check_channels("video_channels", video_channels)
        self.embed_dim = embed_dim
        # Attribute order = the reference's, so state_dict() lists the keys in the released file's order.
        self.netcnnaud = _cnn(2, _AUDIO_STAGES, 1, a_ch)
        self.netfcaud = _mlp(a_ch[-1], embed_dim)
        self.netfclip = _mlp(v_ch[-1], embed_dim)
        self.netcnnlip = _cnn(3, _VIDEO_STAGES, 3, v_ch)

    # ----------------------------------------------------------------------------------------- front-ends

    def _audio(self, mfcc: Tensor, rec: TapRecorder | None) -> Tensor:
        if mfcc.dim() != 4 or tuple(mfcc.shape[1:]) != AUDIO_SHAPE:
            raise ValueError(f"mfcc must be (B, {', '.join(map(str, AUDIO_SHAPE))}), got {tuple(mfcc.shape)}")
        mid = self.netcnnaud(mfcc).flatten(1)
        emb = self.netfcaud(mid)
        if rec is not None:
            rec.put("audio_cnn", mid)
            rec.put("audio", emb)
        return emb

    def _video(self, frames: Tensor, rec: TapRecorder | None) -> Tensor:
        if frames.dim() != 5 or tuple(frames.shape[1:]) != VIDEO_SHAPE:
            raise ValueError(
                f"frames must be (B, {', '.join(map(str, VIDEO_SHAPE))}), got {tuple(frames.shape)}"
            )
        mid = self.netcnnlip(frames).flatten(1)
        emb = self.netfclip(mid)
        if rec is not None:
            rec.put("video_cnn", mid)
            rec.put("video", emb)
        return emb

    def encode_audio(self, mfcc: Tensor) -> Tensor:
        """``mfcc`` (B, 1, 13, 20) → embedding tokens (1, B, D) (the reference's ``forward_aud``, unsqueezed)."""
        return self._audio(mfcc, None).unsqueeze(0)

    def encode_video(self, frames: Tensor) -> Tensor:
        """``frames`` (B, 3, 5, 224, 224) → embedding tokens (1, B, D) (``forward_lip``, unsqueezed)."""
        return self._video(frames, None).unsqueeze(0)

    # ------------------------------------------------------------------------------------------- scoring

    @staticmethod
    def distance(v_emb: Tensor, a_emb: Tensor) -> Tensor:
        """Euclidean distance of each pair over the last axis (``F.pairwise_distance``, as ``calc_pdist``)."""
        return F.pairwise_distance(v_emb, a_emb)

    def fuse(self, v_emb: Tensor, a_emb: Tensor) -> Tensor:
        """Score of each (video, audio) pair of tokens (1, B, D) → (B,): ``−‖v − a‖₂`` (higher = in sync)."""
        if v_emb.dim() != 3 or v_emb.size(0) != 1 or a_emb.shape[0] != 1:
            raise ValueError(
                f"SyncNet tokens must be (1, B, D), got {tuple(v_emb.shape)} and {tuple(a_emb.shape)}"
            )
        return -self.distance(v_emb[0], a_emb[0])

    @overload
    def forward(self, video: Tensor, audio: Tensor, taps: None = None) -> Tensor: ...
    @overload
    def forward(self, video: Tensor, audio: Tensor, taps: TapRequest | str | Iterable[str]) -> Tapped: ...
    def forward(
        self, video: Tensor, audio: Tensor, taps: TapRequest | str | Iterable[str] | None = None
    ) -> Tensor | Tapped:
        """``video`` (B, 3, 5, 224, 224), ``audio`` MFCC (B, 1, 13, 20) → scores (B,) = −distance."""
        rec = recorder_for(taps, self.tap_names())
        scores = -self.distance(self._video(video, rec), self._audio(audio, rec))
        return scores if rec is None else Tapped(scores, rec.store)

    def tap_names(self) -> list[str]:
        """Every tap name this model can record (module docstring)."""
        return ["audio_cnn", "audio", "video_cnn", "video"]


register_model(SyncNet, name="syncnet")
