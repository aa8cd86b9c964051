"""``avsiam_sync``: an AVSiam encoder (:mod:`avkd.models.avsiam`) as a two-stream sync model that embeds each
5-frame window, so that the 31-candidate evaluator, ``avkd sync`` and the distillation stages take it like VocaLiST
or SyncNet.

Inputs are VocaLiST's windows (``input_layout = "vocalist"``, docs/reference/vocalist.md §1.3, §4): ``video``
(B, 15, S/2, S), the lower halves of five S×S face crops stacked on the channel axis (frame-major RGB, S = 96 in
avkd's LRS2 features: 48×96), read by the backbone as one 15-channel map; ``audio`` (B, 1, 80, 16), the 16 mel
columns of the window. ``video_input="motion"`` (the default) feeds the backbone each frame's deviation from the
window's mean frame, scaled to unit RMS per window; ``"frames"`` feeds the pixels as they are. Our choice, measured
on the synthetic LRS2 corpus: the mouth moves the pixels of a window by an RMS of about 0.006 against 0.12 across
the face, so from scratch every raw window embeds alike (pairwise cosines above 0.998) and the 31-way objective
settles at uniform scores; on the deviations it learns (the README's figures). The deviation is a fixed linear map
of the 15 channels followed by a scale, so the patch embedding could in principle learn it, but not in a short
run. With the toy size's 8-pixel patches that is 6×12 = 72 video and 10×2 = 20 audio tokens;
with ViT-S/B's 16-pixel patches 18 and 5. (docs/reference/avsiam-mfh-syncnet.md §1.11 sketches a per-frame
tokenisation with a time embedding instead; the channel-stacked map is the one the backbone's ``video_channels``
takes without a change to it.)

Scoring (§1.6 and §3.6 "avkd formulation (31-way PM)")::

    F_v = L2norm(mean of the video tokens after norm_v)      encode_video → (1, B, d)
    F_a = L2norm(mean of the audio tokens after norm_a)      encode_audio → (1, B, d)
    score = w · cos(F_v, F_a) + b                            fuse → (B,)   (``head``: Linear(1, 1))

``w`` starts at 1/τ = 20 with AVSiam's contrastive temperature τ = 0.05 (§1.6) and ``b`` at 0; both are learnt.
The shift ``b`` cancels in any softmax over candidates (the 31-way objective) and in the evaluator's argmax; it
makes the score a usable BCE logit (``--objective bce`` and the student BCE of ``avkd distill``). Only the
encoder is used: the backbone is built without its fusion blocks, decoder and classification heads, so every
parameter trains (data parallelism needs that) and the parameter count is the sync model's.

The embeddings come in SyncNet's token layout (1, B, d) because :func:`avkd.evaluate.sync.score_clip` concatenates
the encoded windows along axis 1 and gathers pairs there; ``fuse`` of (1, B, d) pairs returns (B,).

Taps: ``video``, ``audio`` (B, d) — the L2-normalised embeddings (the ``pm`` and ``contrastive`` objectives read
these, avkd/losses/embedding.py) — and the backbone's own ``patch_a``, ``patch_v``, ``a.{l}.*``, ``v.{l}.*``
(``scores``, ``probs``, ``out``), ``tokens_a``, ``tokens_v`` (avkd/models/avsiam.py).

:func:`load_backbone` initialises the encoder from a pre-trained ``avsiam`` model of the same width and depth,
adapting the input-side tensors to these windows (see there).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import overload

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avkd.core.errors import UsageError
from avkd.models.attention import Tapped, TapRecorder, TapRequest, recorder_for
from avkd.models.avsiam import AVSiam
from avkd.models.registry import register_model

__all__ = ["AUDIO_SIZE", "TEMPERATURE", "VIDEO_CHANNELS", "AVSiamSync", "load_backbone", "motion_frames"]

#: AVSiam's contrastive temperature (docs/reference/avsiam-mfh-syncnet.md §1.6): the score scale starts at 1/τ.
TEMPERATURE = 0.05
#: Five RGB frames stacked on channels, and the 80 × 16 mel window (docs/reference/vocalist.md §1.3, §4).
VIDEO_CHANNELS = 15
AUDIO_SIZE = (80, 16)
#: What the backbone sees of a video window (module docstring).
VIDEO_INPUTS = ("motion", "frames")
#: Frames per window (the channels are frame-major RGB).
FRAMES = 5
#: Floor of the RMS a motion window is divided by (pixels in 0..1 or 0..255; a still window stays ~0).
MOTION_EPS = 1e-6


def motion_frames(video: Tensor) -> Tensor:
    """(B, 15, H, W) windows of 5 frames → each frame minus the window's mean frame, over the window's RMS
    deviation (``video_input="motion"``, the module docstring; also the LRS2 pre-training input)."""
    b, c, h, w = video.shape
    frames = video.reshape(b, FRAMES, c // FRAMES, h, w)
    dev = frames - frames.mean(dim=1, keepdim=True)
    rms = dev.pow(2).mean(dim=(1, 2, 3, 4), keepdim=True).add(MOTION_EPS).sqrt()
    return (dev / rms).reshape(b, c, h, w)


class AVSiamSync(nn.Module):
    """AVSiam's shared encoder scored by a scaled cosine; see the module docstring.

    ``size`` one of :data:`avkd.models.avsiam.SIZES` (its width, depth, heads and patch size); ``video_size`` the
    (H, W) of the lower-half crops (48×96 for 96×96 crops); ``patch_size`` overrides the size's.
    """

    #: How the evaluator and the datasets cut its windows (avkd.data.lrs2.layouts): VocaLiST's.
    input_layout = "vocalist"

    def __init__(
        self,
        size: str = "toy",
        video_size: Sequence[int] = (48, 96),
        patch_size: int | None = None,
        video_input: str = "motion",
    ) -> None:
        super().__init__()
        if video_input not in VIDEO_INPUTS:
            raise ValueError(f"video_input must be one of {VIDEO_INPUTS}, got {video_input!r}")
        self.video_input = video_input
        self.backbone = AVSiam(
            size,
            num_classes=1,
            fusion_depth=0,
            decoder=False,
            audio_size=AUDIO_SIZE,
            video_size=video_size,
            video_channels=VIDEO_CHANNELS,
            patch_size=patch_size,
            heads=False,
        )
        # score = w·cos + b: w = 1/τ, b = 0 at the start (module docstring).
        self.head = nn.Linear(1, 1)
        with torch.no_grad():
            self.head.weight.fill_(1.0 / TEMPERATURE)
            self.head.bias.zero_()

    @property
    def embed_dim(self) -> int:
        return self.backbone.cfg.embed_dim

    # ----------------------------------------------------------------------------------------- encoders

    def motion(self, video: Tensor) -> Tensor:
        """(B, 15, H, W) → :func:`motion_frames`."""
        return motion_frames(video)

    def _embed(self, x: Tensor, modality: str, rec: TapRecorder | None) -> Tensor:
        if modality == "v" and self.video_input == "motion":
            if x.dim() != 4 or x.shape[1] != VIDEO_CHANNELS:
                raise ValueError(f"video must be (B, {VIDEO_CHANNELS}, H, W), got {tuple(x.shape)}")
            x = self.motion(x)
        e = self.backbone.embed(x, modality)
        if rec is not None:
            rec.put(f"patch_{modality}", e)
        tokens = self.backbone.encode_tokens(e, modality, rec=rec)
        if rec is not None:
            rec.put(f"tokens_{modality}", tokens)
        return F.normalize(tokens.mean(dim=1), dim=-1)

    def encode_video(self, video: Tensor) -> Tensor:
        """``video`` (B, 15, H, W) → the L2-normalised mean-pooled features as tokens (1, B, d)."""
        return self._embed(video, "v", None).unsqueeze(0)

    def encode_audio(self, audio: Tensor) -> Tensor:
        """``audio`` (B, 1, 80, 16) → the L2-normalised mean-pooled features as tokens (1, B, d)."""
        return self._embed(audio, "a", None).unsqueeze(0)

    # ------------------------------------------------------------------------------------------- scoring

    def score(self, v: Tensor, a: Tensor) -> Tensor:
        """``w·cos + b`` of unit embeddings ``v``, ``a`` (..., d) → (...)."""
        return self.head((v * a).sum(dim=-1, keepdim=True)).squeeze(-1)

    def fuse(self, v_emb: Tensor, a_emb: Tensor) -> Tensor:
        """Score of each (video, audio) pair of tokens (1, B, d) → (B,) (the evaluator's fast path)."""
        if v_emb.dim() != 3 or v_emb.size(0) != 1 or a_emb.shape != v_emb.shape:
            raise ValueError(
                f"avsiam_sync tokens must be (1, B, d) alike, got {tuple(v_emb.shape)} and {tuple(a_emb.shape)}"
            )
        return self.score(v_emb[0], a_emb[0])

    @overload
    def forward(self, video: Tensor, audio: Tensor, taps: None = None) -> Tensor: ...
    @overload
    def forward(self, video: Tensor, audio: Tensor, taps: TapRequest | str | Iterable[str]) -> Tapped: ...
    def forward(
        self, video: Tensor, audio: Tensor, taps: TapRequest | str | Iterable[str] | None = None
    ) -> Tensor | Tapped:
        """``video`` (B, 15, H, W), ``audio`` (B, 1, 80, 16) → scores (B,), or :class:`Tapped` with ``taps``."""
        rec = recorder_for(taps, self.tap_names())
        v, a = self._embed(video, "v", rec), self._embed(audio, "a", rec)
        if rec is not None:
            rec.put("video", v)
            rec.put("audio", a)
        scores = self.score(v, a)
        return scores if rec is None else Tapped(scores, rec.store)

    def tap_names(self) -> list[str]:
        """Every tap name this model can record (module docstring)."""
        depth = len(self.backbone.blocks)
        names = ["patch_a", "patch_v"]
        for m in ("a", "v"):
            names += [f"{m}.{i}.{t}" for i in range(1, depth + 1) for t in ("scores", "probs", "out")]
        return [*names, "tokens_a", "tokens_v", "video", "audio"]


register_model(AVSiamSync, name="avsiam_sync")


# ------------------------------------------------------------------------------------- pre-trained weights


def _resize_grid(pos: Tensor, src: tuple[int, int], dst: tuple[int, int]) -> Tensor:
    """Positions (1, h·w, d) on grid ``src`` → grid ``dst``: bicubic, as timm resamples ViT positions."""
    if src == dst:
        return pos.clone()
    img = pos.reshape(1, *src, -1).permute(0, 3, 1, 2).float()
    img = F.interpolate(img, size=dst, mode="bicubic", align_corners=False)
    return img.permute(0, 2, 3, 1).reshape(1, math.prod(dst), -1).to(pos.dtype)


def load_backbone(model: AVSiamSync, pretrained: nn.Module, where: str = "--init") -> list[str]:
    """Initialise ``model``'s encoder from a pre-trained ``avsiam`` model (e.g. ``avkd pretrain --method
    avsiam``); returns the names of the tensors that were adapted rather than copied.

    The shared blocks and the final norms are copied as they are (the width, depth, heads and patch size must
    match: a ``UsageError`` naming ``where`` otherwise). The input side is adapted to VocaLiST's windows:
    the positions are resampled bicubically from the pre-trained token grids to this model's (audio (F/p, T/p),
    video (H/p, W/p)); a video patch kernel of C' channels becomes one of 15 = k·C' channels that holds it on the
    middle frame and zeros on the others (ViViT's "central frame" initialisation of a tubelet embedding, Arnab et
    al. 2021 §3.4; our choice): raw frames then give the middle frame's pre-trained response, and, unlike a
    kernel spread evenly over the frames, motion inputs (whose frames sum to zero) do not give zero. Fusion
    blocks, heads and the decoder of the pre-trained model are not used.
    """
    if not isinstance(pretrained, AVSiam):
        raise UsageError(f"{where}: a {type(pretrained).__name__}, not a pre-trained avsiam model")
    mine, theirs = model.backbone, pretrained
    keys = ("embed_dim", "depth", "num_heads", "patch_size", "mlp_ratio")
    if any(getattr(mine.cfg, k) != getattr(theirs.cfg, k) for k in keys):
        got = ", ".join(f"{k} {getattr(theirs.cfg, k)}" for k in keys)
        want = ", ".join(f"{k} {getattr(mine.cfg, k)}" for k in keys)
        raise UsageError(f"{where}: a pre-trained avsiam of {got} does not fit avsiam_sync's {want}")
    source = theirs.state_dict()
    state = {
        k: v for k, v in source.items() if k.startswith(("blocks.", "norm_a.", "norm_v.", "patch_embed_a."))
    }
    state["pos_embed_a"] = _resize_grid(source["pos_embed_a"], theirs.grid_a, mine.grid_a)
    state["pos_embed_v"] = _resize_grid(source["pos_embed_v"], theirs.grid_v, mine.grid_v)
    weight, channels = source["patch_embed_v.proj.weight"], theirs.video_channels
    if VIDEO_CHANNELS % channels:
        raise UsageError(
            f"{where}: a {channels}-channel video patch kernel cannot cover {VIDEO_CHANNELS} channels"
        )
    k = VIDEO_CHANNELS // channels
    inflated = weight.new_zeros(weight.shape[0], VIDEO_CHANNELS, *weight.shape[2:])
    middle = (k // 2) * channels
    inflated[:, middle : middle + channels] = weight
    state["patch_embed_v.proj.weight"] = inflated
    state["patch_embed_v.proj.bias"] = source["patch_embed_v.proj.bias"].clone()
    missing, unexpected = mine.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UsageError(
            f"{where}: its weights do not fit avsiam_sync: missing {missing[:2]}, unexpected {unexpected[:2]}"
        )
    adapted = [n for n in ("pos_embed_a", "pos_embed_v") if tuple(source[n].shape) != tuple(state[n].shape)]
    return adapted + (["patch_embed_v.proj.weight"] if k > 1 else [])
