"""AVSiam (Lin & Bertasius, ECCV 2024): one ViT whose weights audio and video share, two fusion blocks, three
classification heads and an MAE-style reconstruction decoder, in sizes from a CPU toy to ViT-H.

Facts: docs/reference/avsiam-mfh-syncnet.md §1.2-§1.7 (read in the released code, GenjiB/AVSiam @f700326,
``src/models/cav_mae_base.py``) and the paper (arXiv 2403.19638). Written from those facts, not from the code.

Inputs: ``audio`` (B, 1, F, T), a spectrogram with frequency rows and time columns (the released code takes the
(B, 1024, 128) fbank and transposes it to (B, 1, 128, 1024)); ``video`` (B, 3, S, S), one RGB frame (pre-training
uses one random frame of the clip, §1.7). Both are cut into p×p patches: audio tokens are row-major over the
(F/p, T/p) grid (frequency rows first, as the structured masking expects), video over (S/p, S/p).

Structure (§1.2-§1.4)::

    patch_embed_a (Conv 1→d), patch_embed_v (Conv 3→d); + pos_embed_a / pos_embed_v     no CLS token
    blocks × depth: attention and MLP shared by both modalities; norm1_a/norm2_a or norm1_v/norm2_v chosen by
                    the modality of the tokens (no modality embedding in the encoder)
    norm_a, norm_v → tokens; mean over tokens → F_a, F_v                                encode_audio/encode_video
    fusion × 2 on cat(audio tokens, video tokens) (one set of LayerNorms: the released code runs its fusion
                    blocks with the audio LayerNorms for every token)
    heads: head_norm + head on cat(mean of the fused audio part, mean of the fused video part)      mode "av"
           head_a_norm + head_a on F_a; head_v_norm + head_v on F_v                          modes "a", "v"
    decoder: embed d→d_dec, mask tokens re-inserted per modality, + decoder positions + modality tokens,
             depth_dec blocks, norm, pred_a (d_dec→p²), pred_v (d_dec→3p²)                  reconstruct()

Quirks of the released code that this module fixes, on purpose:

* its reconstruction pass sends audio through ``ast_base``, a deep copy of the ViT made at initialisation, so
  the reconstruction objective trains *separate* audio weights that fine-tuning then drops; here
  :meth:`AVSiam.reconstruct` runs audio through the same shared blocks (with the audio LayerNorms);
* it adds ``norm_pre(x)`` to ``x`` after the positions; timm's ``norm_pre`` is the identity, so that doubles the
  tokens; here the tokens are patches + positions, once;
* its multi-ratio grouping ``torch.chunk(randperm(B), 5)`` drops the high ratios when the per-GPU batch is under
  5 (the released batch of 4 never uses 0.8); :mod:`avkd.models.masking` assigns the ratios evenly for any batch.

Other choices, stated: the encoder's LayerNorms use timm's ViT ε = 1e-6 (the released blocks use PyTorch's 1e-5
on weights trained with 1e-6); the decoder positions, modality and mask tokens are learnable and start at zero,
as in the release (its comment says "fixed sin-cos", but nothing sets them); the fusion blocks, when initialised
from a ViT, copy its last two blocks (the paper and the released fine-tuning code; the pre-training code copies
the last block twice).

Taps (``model(audio, video, taps=TapRequest(...))`` returns :class:`~avkd.models.attention.Tapped`), layers
1-based; a mode records only what it computes (``mode="a"`` no video or fusion taps):

* ``patch_a``, ``patch_v`` (B, N, d): patches + positions (the encoder input);
* ``a.{l}.scores``, ``a.{l}.probs``, ``v.{l}...`` (B, H, N, N): pre-softmax ``QKᵀ/√d_h`` and its softmax;
  ``a.{l}.out``, ``v.{l}.out`` (B, N, d): the block's output;
* ``tokens_a``, ``tokens_v`` (B, N, d): after the final norms; ``feat_a``, ``feat_v`` (B, d): their means;
* ``fusion.{l}.scores``, ``fusion.{l}.probs``, ``fusion.{l}.out`` (over N_a + N_v tokens);
* ``pooled`` (B, 2d): the AV head's input.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avkd.core.errors import UsageError
from avkd.models.attention import Tapped, TapRecorder, TapRequest, recorder_for
from avkd.models.masking import (
    RECONSTRUCTION_RATIO,
    RELEASED_RATIOS,
    keep_count,
    multi_ratio_groups,
    random_masking,
)
from avkd.models.registry import register_model

__all__ = [
    "MODES",
    "SIZES",
    "AVSiam",
    "AVSiamSize",
    "Reconstruction",
    "load_vit_checkpoint",
    "patchify",
]

#: Forward modes: fused audio-visual, audio only, video only (§1.3, §1.8).
MODES: tuple[str, ...] = ("av", "a", "v")
#: timm's ViT LayerNorm epsilon (the checkpoints' training value).
VIT_EPS = 1e-6


@dataclass(frozen=True)
class AVSiamSize:
    """Dimensions of one size. ``audio_size`` is (F, T) of the spectrogram, ``image_size`` the frame side."""

    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int
    image_size: int
    audio_size: tuple[int, int]
    decoder_dim: int
    decoder_depth: int
    decoder_heads: int
    mlp_ratio: float = 4.0


#: The sizes. ``b`` is the released model (ViT-B/16, d = 768, 12 blocks, 12 heads; 224² frames and 128 × 1024
#: fbanks: 196 + 512 tokens; decoder 512 wide, 8 deep, 16 heads, §1.2, §1.4, §1.7); ``s``, ``l`` are ViT-S/16 and
#: ViT-L/16 with the same inputs and decoder; ``h`` is ViT-H/14 (timm's ImageNet-21k ViT-H has 14-pixel patches),
#: whose audio is cut to 126 × 1022 so that it tiles into 14-pixel patches (9 × 73; our choice: the released
#: Huge model's source is not in the repository, §1.1). ``toy`` (≈1M parameters, our choice) is for CPU tests and
#: demos: 32² frames and 32 × 64 spectrograms in 8-pixel patches (16 + 32 tokens).
SIZES: dict[str, AVSiamSize] = {
    "toy": AVSiamSize(96, 6, 4, 8, 32, (32, 64), 64, 2, 4),
    "s": AVSiamSize(384, 12, 6, 16, 224, (128, 1024), 512, 8, 16),
    "b": AVSiamSize(768, 12, 12, 16, 224, (128, 1024), 512, 8, 16),
    "l": AVSiamSize(1024, 24, 16, 16, 224, (128, 1024), 512, 8, 16),
    "h": AVSiamSize(1280, 32, 16, 14, 224, (126, 1022), 512, 8, 16),
}


def patchify(x: Tensor, patch_size: int) -> Tensor:
    """(B, C, H, W) → (B, (H/p)·(W/p), p·p·C): patches row-major, each flattened as (row, column, channel), the
    layout the released ``patchify`` gives the reconstruction targets (§1.6)."""
    b, c, h, w = x.shape
    p = patch_size
    x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


# ------------------------------------------------------------------------------------------------ layers


class PatchEmbed(nn.Module):
    """Conv2d(C → d, kernel = stride = p), flattened to (B, N, d) (timm's layout: ``proj``)."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """timm's ViT attention (``qkv``, ``proj``; qkv bias on, §1.2): SDPA, or the explicit softmax when a tap of
    the scores or probabilities is requested (the same numbers to ~1e-6)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, taps: TapRecorder | None = None) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        if taps is not None and taps.wants_any(("scores", "probs")):
            scores = (q * q.size(-1) ** -0.5) @ k.transpose(-1, -2)
            probs = scores.float().softmax(dim=-1).type_as(scores)
            taps.put("scores", scores)
            taps.put("probs", probs)
            out = probs @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    """timm's ViT MLP: ``fc1`` (d → r·d), exact GELU, ``fc2``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SharedBlock(nn.Module):
    """Pre-LN ViT block whose ``attn`` and ``mlp`` both modalities share, with LayerNorms per modality (§1.2)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1_a = nn.LayerNorm(dim, eps=VIT_EPS)
        self.norm1_v = nn.LayerNorm(dim, eps=VIT_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2_a = nn.LayerNorm(dim, eps=VIT_EPS)
        self.norm2_v = nn.LayerNorm(dim, eps=VIT_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, modality: str, taps: TapRecorder | None = None) -> Tensor:
        norm1, norm2 = (self.norm1_a, self.norm2_a) if modality == "a" else (self.norm1_v, self.norm2_v)
        x = x + self.attn(norm1(x), taps)
        return x + self.mlp(norm2(x))


class Block(nn.Module):
    """Plain pre-LN ViT block (fusion and decoder)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, eps: float = VIT_EPS) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, taps: TapRecorder | None = None) -> Tensor:
        x = x + self.attn(self.norm1(x), taps)
        return x + self.mlp(self.norm2(x))


class Decoder(nn.Module):
    """The reconstruction decoder (§1.4): one mask token for both modalities, learnable positions and modality
    tokens, ``depth`` blocks, a final norm and one patch predictor per modality. LayerNorm ε 1e-5, as released."""

    def __init__(self, size: AVSiamSize, num_a: int, num_v: int, video_channels: int = 3) -> None:
        super().__init__()
        dd, p = size.decoder_dim, size.patch_size
        self.embed = nn.Linear(size.embed_dim, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.pos_a = nn.Parameter(torch.zeros(1, num_a, dd))
        self.pos_v = nn.Parameter(torch.zeros(1, num_v, dd))
        self.modality_a = nn.Parameter(torch.zeros(1, 1, dd))
        self.modality_v = nn.Parameter(torch.zeros(1, 1, dd))
        self.blocks = nn.ModuleList(
            Block(dd, size.decoder_heads, size.mlp_ratio, eps=1e-5) for _ in range(size.decoder_depth)
        )
        self.norm = nn.LayerNorm(dd)
        self.pred_a = nn.Linear(dd, p * p)
        self.pred_v = nn.Linear(dd, p * p * video_channels)

    @staticmethod
    def _unshuffle(x: Tensor, mask_token: Tensor, restore: Tensor) -> Tensor:
        # cat(kept tokens, mask tokens) in shuffled order, then back to token order (MAE).
        n, length = restore.shape
        full = torch.cat([x, mask_token.expand(n, length - x.size(1), -1)], dim=1)
        return torch.gather(full, 1, restore[..., None].expand(-1, -1, x.size(-1)))

    def forward(self, x: Tensor, keep_a: int, restore_a: Tensor, restore_v: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` (B, k_a + k_v, d): the fused visible tokens → predicted patches (B, N_a, p²), (B, N_v, C·p²)."""
        x = self.embed(x)
        a = self._unshuffle(x[:, :keep_a], self.mask_token, restore_a) + self.pos_a + self.modality_a
        v = self._unshuffle(x[:, keep_a:], self.mask_token, restore_v) + self.pos_v + self.modality_v
        num_a = a.size(1)
        x = torch.cat([a, v], dim=1)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return self.pred_a(x[:, :num_a]), self.pred_v(x[:, num_a:])


class Reconstruction(NamedTuple):
    """One reconstruction pass: predictions and targets (raw patches, :func:`patchify`) per modality, and the
    masks (1 = removed; the loss is taken there only)."""

    pred_a: Tensor
    pred_v: Tensor
    target_a: Tensor
    target_v: Tensor
    mask_a: Tensor
    mask_v: Tensor


# ------------------------------------------------------------------------------------------------- model


class AVSiam(nn.Module):
    """AVSiam (see the module docstring). ``size`` one of :data:`SIZES`; ``num_classes`` of every head (527:
    AudioSet's); ``decoder_depth`` overrides the size's (the released 8; the paper says 6); ``fusion_depth`` the
    fusion blocks (2); ``decoder=False`` leaves the decoder out (fine-tuning, distillation), ``heads=False`` the
    three classification heads (an embedding model built on the encoder, e.g. ``avsiam_sync``). ImageNet ViT weights
    are loaded afterwards with :func:`load_vit_checkpoint`, so that a saved model rebuilds without the file.

    Inputs other than clips' (the adapters of LRS2 windows and CMU-MOSEI feature maps): ``audio_size`` (F, T),
    ``video_size`` (H, W), ``video_channels`` and ``patch_size`` override the size's (224² RGB frames and
    128 × 1024 fbanks for ``s``..``h``); every input side must tile into patches. The encoder, fusion and decoder
    widths stay the size's, so the same weights serve any grid once the positions fit it.
    """

    def __init__(
        self,
        size: str = "toy",
        num_classes: int = 527,
        decoder_depth: int | None = None,
        fusion_depth: int = 2,
        decoder: bool = True,
        audio_size: Sequence[int] | None = None,
        video_size: Sequence[int] | None = None,
        video_channels: int = 3,
        patch_size: int | None = None,
        heads: bool = True,
    ) -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"unknown AVSiam size {size!r}; choose one of {sorted(SIZES)}")
        cfg = SIZES[size]
        if decoder_depth is not None:
            cfg = replace(cfg, decoder_depth=decoder_depth)
        if patch_size is not None:
            cfg = replace(cfg, patch_size=int(patch_size))
        if audio_size is not None:
            cfg = replace(cfg, audio_size=_pair("audio_size", audio_size))
        self.video_size = (
            (cfg.image_size, cfg.image_size) if video_size is None else _pair("video_size", video_size)
        )
        if video_channels < 1:
            raise ValueError(f"video_channels must be >= 1, got {video_channels}")
        self.video_channels = int(video_channels)
        p, d = cfg.patch_size, cfg.embed_dim
        if any(side % p for side in (*cfg.audio_size, *self.video_size)):
            raise ValueError(
                f"audio {cfg.audio_size} and video {self.video_size} do not tile into {p}-pixel patches"
            )
        self.size = size
        self.cfg = cfg
        self.grid_a = (cfg.audio_size[0] // p, cfg.audio_size[1] // p)
        self.grid_v = (self.video_size[0] // p, self.video_size[1] // p)
        num_a, num_v = math.prod(self.grid_a), math.prod(self.grid_v)

        self.patch_embed_a = PatchEmbed(1, d, p)
        self.patch_embed_v = PatchEmbed(self.video_channels, d, p)
        self.pos_embed_a = nn.Parameter(torch.zeros(1, num_a, d))
        self.pos_embed_v = nn.Parameter(torch.zeros(1, num_v, d))
        self.blocks = nn.ModuleList(SharedBlock(d, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm_a = nn.LayerNorm(d, eps=VIT_EPS)
        self.norm_v = nn.LayerNorm(d, eps=VIT_EPS)
        self.fusion = nn.ModuleList(Block(d, cfg.num_heads, cfg.mlp_ratio) for _ in range(fusion_depth))
        # Heads (§1.3): LayerNorm + Linear; the released heads use PyTorch's LayerNorm ε.
        self.has_heads = heads
        if heads:
            self.head_norm = nn.LayerNorm(2 * d)
            self.head = nn.Linear(2 * d, num_classes)
            self.head_a_norm = nn.LayerNorm(d)
            self.head_a = nn.Linear(d, num_classes)
            self.head_v_norm = nn.LayerNorm(d)
            self.head_v = nn.Linear(d, num_classes)
        self.decoder = Decoder(cfg, num_a, num_v, self.video_channels) if decoder else None
        self._init_weights()

    def _init_weights(self) -> None:
        # timm's ViT initialisation: positions and Linear weights truncated normal (std 0.02), biases zero;
        # convolutions and LayerNorms keep PyTorch's defaults. The decoder's tokens stay zero (as released).
        if self.pos_embed_a.is_meta:  # built on the meta device (to count parameters): no values to set
            return
        nn.init.trunc_normal_(self.pos_embed_a, std=0.02)
        nn.init.trunc_normal_(self.pos_embed_v, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    # ----------------------------------------------------------------------------------------- encoders

    @property
    def num_tokens(self) -> tuple[int, int]:
        """(N_a, N_v)."""
        return self.pos_embed_a.size(1), self.pos_embed_v.size(1)

    def embed(self, x: Tensor, modality: str) -> Tensor:
        """Patches + positions (B, N, d) of ``audio`` (B, 1, F, T) or ``video`` (B, C, H, W)."""
        if modality == "a":
            want = (1, *self.cfg.audio_size)
            if x.dim() != 4 or tuple(x.shape[1:]) != want:
                raise ValueError(f"audio must be (B, {want[0]}, {want[1]}, {want[2]}), got {tuple(x.shape)}")
            return self.patch_embed_a(x) + self.pos_embed_a
        want = (self.video_channels, *self.video_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"video must be (B, {want[0]}, {want[1]}, {want[2]}), got {tuple(x.shape)}")
        return self.patch_embed_v(x) + self.pos_embed_v

    def encode_tokens(
        self, x: Tensor, modality: str, keep: Tensor | None = None, rec: TapRecorder | None = None
    ) -> Tensor:
        """Embedded tokens (B, N, d) → the encoder's output after the final norm (B, N', d).

        ``keep`` (B, k) keeps only those token indices (masking); the shared blocks then see k tokens.
        """
        if keep is not None:
            x = torch.gather(x, 1, keep[..., None].expand(-1, -1, x.size(-1)))
        for i, blk in enumerate(self.blocks, 1):
            child = None if rec is None else rec.child(f"{modality}.{i}.")
            x = blk(x, modality, child)
            if child is not None:
                child.put("out", x)
        return (self.norm_a if modality == "a" else self.norm_v)(x)

    def encode_audio(self, audio: Tensor) -> Tensor:
        """F_a (B, d): the mean of the audio tokens after the final norm (§1.2)."""
        return self.encode_tokens(self.embed(audio, "a"), "a").mean(dim=1)

    def encode_video(self, video: Tensor) -> Tensor:
        """F_v (B, d): the mean of the video tokens after the final norm (§1.2)."""
        return self.encode_tokens(self.embed(video, "v"), "v").mean(dim=1)

    def fuse(self, tokens_a: Tensor, tokens_v: Tensor, rec: TapRecorder | None = None) -> Tensor:
        """Fusion blocks over cat(audio, video) → the AV head's input cat(mean audio part, mean video part)."""
        x = torch.cat([tokens_a, tokens_v], dim=1)
        for i, blk in enumerate(self.fusion, 1):
            child = None if rec is None else rec.child(f"fusion.{i}.")
            x = blk(x, child)
            if child is not None:
                child.put("out", x)
        n = tokens_a.size(1)
        return torch.cat([x[:, :n].mean(dim=1), x[:, n:].mean(dim=1)], dim=-1)

    # ----------------------------------------------------------------------------------------- forward

    def _recorder(self, taps: TapRequest | str | Iterable[str] | None) -> TapRecorder | None:
        return recorder_for(taps, self.tap_names())

    def _side(self, x: Tensor, modality: str, rec: TapRecorder | None) -> Tensor:
        e = self.embed(x, modality)
        if rec is not None:
            rec.put(f"patch_{modality}", e)
        tokens = self.encode_tokens(e, modality, rec=rec)
        if rec is not None:
            rec.put(f"tokens_{modality}", tokens)
            if rec.wants(f"feat_{modality}"):
                rec.put(f"feat_{modality}", tokens.mean(dim=1))
        return tokens

    def forward(
        self,
        audio: Tensor | None,
        video: Tensor | None = None,
        mode: str = "av",
        taps: TapRequest | str | Iterable[str] | None = None,
    ) -> Tensor | Tapped:
        """Logits (B, num_classes) of the AV head (``mode="av"``), the audio head (``"a"``, ``video`` unused) or
        the video head (``"v"``, ``audio`` unused); :class:`Tapped` with ``taps``."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not self.has_heads:
            raise UsageError("this AVSiam was built with heads=False: it has no classification heads")
        needs = {"av": ("audio", "video"), "a": ("audio",), "v": ("video",)}[mode]
        given = {"audio": audio, "video": video}
        missing = [n for n in needs if given[n] is None]
        if missing:
            raise ValueError(f"mode {mode!r} needs {' and '.join(missing)}")
        rec = self._recorder(taps)
        if mode == "a":
            assert audio is not None
            logits = self.head_a(self.head_a_norm(self._side(audio, "a", rec).mean(dim=1)))
        elif mode == "v":
            assert video is not None
            logits = self.head_v(self.head_v_norm(self._side(video, "v", rec).mean(dim=1)))
        else:
            assert audio is not None and video is not None
            pooled = self.fuse(self._side(audio, "a", rec), self._side(video, "v", rec), rec)
            if rec is not None:
                rec.put("pooled", pooled)
            logits = self.head(self.head_norm(pooled))
        return logits if rec is None else Tapped(logits, rec.store)

    def tap_names(self) -> list[str]:
        """Every tap name this model can record (see the module docstring)."""
        names = ["patch_a", "patch_v"]
        for m in ("a", "v"):
            names += [
                f"{m}.{i}.{t}" for i in range(1, len(self.blocks) + 1) for t in ("scores", "probs", "out")
            ]
        names += ["tokens_a", "tokens_v", "feat_a", "feat_v"]
        names += [
            f"fusion.{i}.{t}" for i in range(1, len(self.fusion) + 1) for t in ("scores", "probs", "out")
        ]
        return [*names, "pooled"]

    # ------------------------------------------------------------------------------------ pre-training

    def _masked_features(
        self, x: Tensor, modality: str, ratios: str | Sequence[float], generator: torch.Generator | None
    ) -> Tensor:
        e = self.embed(x, modality)
        grid = self.grid_a if modality == "a" else None  # audio: structured masking; video: unstructured
        chosen = ratios if isinstance(ratios, str) else tuple(ratios)
        groups = multi_ratio_groups(
            e.size(0), e.size(1), chosen, grid=grid, generator=generator, device=e.device
        )
        # Each group is one sub-batch of equal length (no padding); the features are put back in batch order.
        feats = torch.cat([self.encode_tokens(e[g.rows], modality, g.keep).mean(dim=1) for g in groups])
        rows = torch.cat([g.rows for g in groups])
        return feats[torch.argsort(rows)]

    def multi_ratio_features(
        self,
        audio: Tensor,
        video: Tensor,
        ratios: str | Sequence[float] = RELEASED_RATIOS,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """F_a, F_v (B, d) under multi-ratio masking (§1.5), for the contrastive loss: each sample gets a ratio
        of ``ratios`` (a set, ``"released"`` or ``"paper"``), audio and video independently; audio is masked
        with the structured time/frequency masking, video at random (:mod:`avkd.models.masking`). The encoder
        only: the fusion blocks are not used here, as released. ``generator`` must live on the inputs' device.
        """
        return (
            self._masked_features(audio, "a", ratios, generator),
            self._masked_features(video, "v", ratios, generator),
        )

    def reconstruct(
        self,
        audio: Tensor,
        video: Tensor,
        mask_ratio: float = RECONSTRUCTION_RATIO,
        generator: torch.Generator | None = None,
    ) -> Reconstruction:
        """The masked-reconstruction pass (§1.6): both modalities masked at random at ``mask_ratio`` (0.75),
        the visible tokens through the shared encoder (audio too: the released code's separate audio copy is
        not reproduced), fused, decoded; targets are the raw patches of the inputs."""
        if self.decoder is None:
            raise UsageError("this AVSiam was built with decoder=False: it has no reconstruction decoder")
        ea, ev = self.embed(audio, "a"), self.embed(video, "v")
        b, (num_a, num_v) = ea.size(0), self.num_tokens
        ka, kv = keep_count(num_a, mask_ratio), keep_count(num_v, mask_ratio)
        keep_a, mask_a, restore_a = random_masking(b, num_a, ka, generator=generator, device=ea.device)
        keep_v, mask_v, restore_v = random_masking(b, num_v, kv, generator=generator, device=ev.device)
        ta = self.encode_tokens(ea, "a", keep_a)
        tv = self.encode_tokens(ev, "v", keep_v)
        x = torch.cat([ta, tv], dim=1)
        for blk in self.fusion:
            x = blk(x)
        pred_a, pred_v = self.decoder(x, ka, restore_a, restore_v)
        p = self.cfg.patch_size
        return Reconstruction(pred_a, pred_v, patchify(audio, p), patchify(video, p), mask_a, mask_v)


register_model(AVSiam, name="avsiam")


def _pair(name: str, value: Sequence[int]) -> tuple[int, int]:
    if len(value) != 2 or not all(int(v) >= 1 for v in value):
        raise ValueError(f"{name} must be two positive sides, got {list(value)}")
    return int(value[0]), int(value[1])


# ---------------------------------------------------------------------------------------- ViT weights

#: timm ViT keys that have no place in AVSiam and are skipped: the CLS token (AVSiam has none), the classifier,
#: the old in21k checkpoints' representation layer, and a pooled-feature norm.
_IGNORED_PREFIXES = ("cls_token", "head.", "pre_logits.", "fc_norm.", "norm_pre.")
_BLOCK_PARTS = ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise UsageError(f"{path}: no such ViT checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle that is not a plain state dict, a truncated file, ...
        raise UsageError(f"{path}: cannot read it as a PyTorch state dict ({type(exc).__name__})") from None
    for key in ("state_dict", "model"):  # training checkpoints often nest the weights
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise UsageError(f"{path}: not a state dict of tensors")
    return obj


def _resize_video_pos(pos: Tensor, grid: tuple[int, int]) -> Tensor:
    """(1, g·g, d) on a square grid → (1, gh·gw, d): bicubic with antialiasing, as timm resamples positions."""
    g = math.isqrt(pos.size(1))
    if (g, g) == grid:
        return pos
    img = pos.reshape(1, g, g, -1).permute(0, 3, 1, 2).float()
    img = F.interpolate(img, size=grid, mode="bicubic", antialias=True, align_corners=False)
    return img.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1).to(pos.dtype)


def load_vit_checkpoint(model: AVSiam, path: str | Path) -> list[str]:
    """Initialise ``model``'s encoder and fusion blocks from a local timm-layout ViT state dict (e.g. an
    ImageNet-21k ViT-B/16 ``.pth``); nothing is downloaded. Returns the checkpoint keys used.

    Mapping (§1.2, §1.3): ``patch_embed.proj`` → the video patch embedding, and, averaged over the three input
    channels (bias copied), the audio one; ``pos_embed`` without its CLS position → the video positions (the
    square grid resampled bicubically when the model's grid differs) and, as released, a 1-D nearest-neighbour
    interpolation of the flattened grid to the audio token count; ``blocks.i.norm1``/``norm2`` → both
    modalities' norms of block i, ``attn.qkv``/``attn.proj``/``mlp.fc1``/``mlp.fc2`` → the shared weights;
    ``norm`` → ``norm_a`` and ``norm_v``; the last ``fusion_depth`` blocks → the fusion blocks. Heads and decoder
    keep their initialisation. A checkpoint of another width, depth or patch size, or with keys this mapping
    does not know (layer scale, registers, ...), is refused with a ``UsageError`` naming the file.
    """
    path = Path(path)
    sd = _read_state_dict(path)
    d, depth = model.cfg.embed_dim, len(model.blocks)

    def take(key: str, shape: tuple[int, ...] | None = None) -> Tensor:
        if key not in sd:
            raise UsageError(f"{path}: not a timm ViT checkpoint (no {key!r})")
        t = sd[key]
        if shape is not None and tuple(t.shape) != shape:
            raise UsageError(f"{path}: {key} is {tuple(t.shape)}, this AVSiam needs {shape}")
        used.add(key)
        return t

    used: set[str] = set()
    ckpt_depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    if ckpt_depth != depth:
        raise UsageError(f"{path}: {ckpt_depth} blocks, this AVSiam ({model.size}) has {depth}")
    p = model.cfg.patch_size
    new: dict[str, Tensor] = {}
    w = take("patch_embed.proj.weight", (d, 3, p, p))
    bias = take("patch_embed.proj.bias", (d,))
    # Video of C != 3 channels (feature maps): the RGB kernel's mean in every channel, as audio's single one.
    video_w = (
        w if model.video_channels == 3 else w.mean(dim=1, keepdim=True).repeat(1, model.video_channels, 1, 1)
    )
    new["patch_embed_v.proj.weight"], new["patch_embed_v.proj.bias"] = video_w, bias
    new["patch_embed_a.proj.weight"], new["patch_embed_a.proj.bias"] = (
        w.mean(dim=1, keepdim=True),
        bias.clone(),
    )

    pos = take("pos_embed")
    n = pos.size(1) if pos.dim() == 3 and pos.size(0) == 1 and pos.size(2) == d else 0
    if n and math.isqrt(n - 1) ** 2 == n - 1:
        pos = pos[:, 1:]  # drop the CLS position (AVSiam has no CLS token, §1.2)
    elif not (n and math.isqrt(n) ** 2 == n):
        raise UsageError(f"{path}: pos_embed {tuple(pos.shape)} is not (1, [1 +] g², {d})")
    new["pos_embed_v"] = _resize_video_pos(pos, model.grid_v)
    num_a = model.num_tokens[0]
    new["pos_embed_a"] = F.interpolate(pos.transpose(1, 2).float(), size=num_a, mode="nearest").transpose(
        1, 2
    )

    for i in range(depth):
        src = f"blocks.{i}."
        for part in ("norm1", "norm2"):
            for m in ("a", "v"):
                for leaf in ("weight", "bias"):
                    new[f"blocks.{i}.{part}_{m}.{leaf}"] = take(f"{src}{part}.{leaf}", (d,))
        for part in _BLOCK_PARTS:
            for leaf in ("weight", "bias"):
                target = model.get_parameter(f"blocks.{i}.{part}.{leaf}")
                new[f"blocks.{i}.{part}.{leaf}"] = take(f"{src}{part}.{leaf}", tuple(target.shape))
    for m in ("a", "v"):
        for leaf in ("weight", "bias"):
            new[f"norm_{m}.{leaf}"] = take(f"norm.{leaf}", (d,))
    for j in range(len(model.fusion)):
        src = f"blocks.{depth - len(model.fusion) + j}."
        for part in ("norm1", "norm2", *_BLOCK_PARTS):
            for leaf in ("weight", "bias"):
                new[f"fusion.{j}.{part}.{leaf}"] = sd[f"{src}{part}.{leaf}"]

    unknown = sorted(k for k in sd if k not in used and not k.startswith(_IGNORED_PREFIXES))
    if unknown:
        raise UsageError(f"{path}: keys this ViT mapping does not know: {', '.join(unknown[:5])}")
    with torch.no_grad():
        for key, value in new.items():
            model.get_parameter(key).copy_(value)
    return sorted(used)
