"""VocaLiST (``SyncTransformer``): the 80.1M teacher (width 512) and the 13.3M MTDVocaLiST student (width 200).

Re-implemented from docs/reference/vocalist.md §2; state-dict keys, order and shapes match the official
checkpoints (§2.6), so ``model.load_state_dict(ckpt["state_dict"], strict=True)`` works for
``vocalist_5f_lrs2.pth`` and ``pure_MTDVocaLiST.pth``.

Inputs (§1.3, §1.4): ``video`` (B, 3·T, 48, 96), frames stacked on the channel axis as [f0c0, f0c1, f0c2, f1c0,
...] (lower half of a 96×96 face crop; colour order and scale are a per-checkpoint convention, not the model's);
``mel`` (B, 1, 80, 16·T/5). Output: one raw logit per sample (B,), trained with BCE-with-logits (1 = in sync).

Structure (the teacher/student differ only in widths)::

    encode_video: vid_prenet, 17 Conv3d blocks over (H, W, T) → (T_v, B, D)    one token per video frame
    encode_audio: aud_prenet, 14 Conv2d blocks over (F, T)    → (T_a, B, D)    one token per mel step
    fuse: av  = av_transformer(q=audio, k=v=video)   (T_a, B, D)
          va  = va_transformer(q=video, k=v=audio)   (T_v, B, D)   the only block with a non-empty mask
          mem = mem_transformer(q=av, k=v=va)        (T_a, B, D)   "fusion" block (MTD paper: fus)
          max over time → fc → tanh → classifier → (B,)

``forward(video, mel) == fuse(encode_video(video), encode_audio(mel))``: an evaluator can run each front-end once
per unique window (BN is frozen in eval, so this is exact) and batch only the transformers over candidates. The
video front-end is ~96% of the FLOPs (§2.8).

Taps (internals for distillation, §5.1): ``model(video, mel, taps=TapRequest(...))`` returns
``Tapped(logits, taps)``. Names (layers 1-based, blocks named after the state dict: ``av``, ``va``, ``mem``):

* ``{av,va,mem}.{1..4}.{scores,probs,q,k,v,v_scaled,out,out_ln}`` and ``{av,va,mem}.emb`` — see
  :mod:`avkd.models.attention` for shapes; (Tq, Tk) is (16, 5) for av and mem, (5, 16) for va (with the 10
  −inf entries in ``va.*.scores``); the mem block's K/V come from ``va.emb`` (5 tokens).
* ``vid_prenet`` (T_v, B, D), ``aud_prenet`` (T_a, B, D): front-end outputs (== ``encode_video/encode_audio``;
  the reference's ``CNN_feature`` holds the same numbers as (B, D, 1, 1, T_v) / (B, D, 1, T_a)).
* ``pooled`` (B, D): max over time of ``mem.emb`` (before ``fc``); ``hidden`` (B, D): ``tanh(fc(pooled))``.

Reference-name mapping (§5.1): ``*_qk`` = ``scores``, ``*_q_norm`` = ``q``, ``*_k`` = ``k``, ``*_v`` = ``v``,
``*_v_norm`` = ``v_scaled``, ``*_emb_list[l-1]`` = ``l.out_ln``, ``fus`` = ``mem``; reference head layout
(B·H, T, ·) = :func:`avkd.models.attention.flat_heads` of ours.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, overload

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avkd.models.attention import (
    Tapped,
    TapRecorder,
    TapRequest,
    TransformerEncoder,
    recorder_for,
)
from avkd.models.registry import register_model

__all__ = [
    "STUDENT_CHANNELS",
    "TEACHER_CHANNELS",
    "SyncTransformer",
    "default_channels",
    "mtdvocalist",
    "vocalist_lite",
]

#: §2.2/§2.3 front-end channel lists of the official teacher (d=512) and MTD student (d=200).
TEACHER_CHANNELS: tuple[int, ...] = (32, 64, 128, 256, 512)
STUDENT_CHANNELS: tuple[int, ...] = (16, 32, 64, 128, 200)

# Front-end layouts (§2.2, §2.3): (in, out, kernel, stride, padding, residual); in/out index the channel list,
# -1 = the input (3 colour channels / 1 mel channel). Video axes are (H, W, T), audio axes (F, T).
_Block = tuple[int, int, int, tuple[int, ...] | int, tuple[int, ...] | int, bool]
_VIDEO_BLOCKS: tuple[_Block, ...] = (
    (-1, 0, 7, 1, 3, False),
    (0, 1, 5, (1, 2, 1), (1, 1, 2), False),
    (1, 1, 3, 1, 1, True),
    (1, 1, 3, 1, 1, True),
    (1, 2, 3, (2, 2, 1), 1, False),
    (2, 2, 3, 1, 1, True),
    (2, 2, 3, 1, 1, True),
    (2, 2, 3, 1, 1, True),
    (2, 3, 3, (2, 2, 1), 1, False),
    (3, 3, 3, 1, 1, True),
    (3, 3, 3, 1, 1, True),
    (3, 4, 3, (2, 2, 1), 1, False),
    (4, 4, 3, 1, 1, True),
    (4, 4, 3, 1, 1, True),
    (4, 4, 3, (2, 2, 1), 1, False),
    (4, 4, 3, 1, (0, 0, 1), False),  # 3×3 → 1×1 spatially, time kept
    (4, 4, 1, 1, 0, False),
)
_AUDIO_BLOCKS: tuple[_Block, ...] = (
    (-1, 0, 3, 1, 1, False),
    (0, 0, 3, 1, 1, True),
    (0, 0, 3, 1, 1, True),
    (0, 1, 3, (3, 1), 1, False),
    (1, 1, 3, 1, 1, True),
    (1, 1, 3, 1, 1, True),
    (1, 2, 3, (3, 1), 1, False),
    (2, 2, 3, 1, 1, True),
    (2, 2, 3, 1, 1, True),
    (2, 3, 3, (3, 1), 1, False),
    (3, 3, 3, 1, 1, True),
    (3, 3, 3, 1, 1, True),
    (3, 4, 3, 1, (0, 1), False),  # 3 mel rows → 1, time kept
    (4, 4, 1, 1, 0, False),
)
#: The "lite" video front-end (not in the reference; our addition for CPU-sized runs such as the demo): average-pool
#: the 48×96 mouth crops by 4 to 12×24 first, then five Conv3d blocks reduce it to 1×1 with time kept. It is ~60×
#: cheaper than the official front-end, whose full-resolution 7×7×7 first convolution dominates the FLOPs (§2.8).
_LITE_POOL = (4, 4, 1)
_LITE_VIDEO_BLOCKS: tuple[_Block, ...] = (
    (-1, 0, 3, 1, 1, False),  # 12, 24
    (0, 1, 3, (2, 2, 1), 1, False),  # 6, 12
    (1, 2, 3, (2, 2, 1), 1, False),  # 3, 6
    (2, 3, 3, (1, 2, 1), (0, 1, 1), False),  # 1, 3
    (3, 4, (1, 3, 1), 1, 0, False),  # 1, 1
)

#: Input frame size the front-end reduces to 1×1 (§1.3: lower half of a 96×96 crop).
FRAME_HW: tuple[int, int] = (48, 96)
N_MELS = 80


def default_channels(width: int) -> tuple[int, ...]:
    """Front-end channel list for a transformer ``width`` (§2.2/§2.3; the last entry is always ``width``).

    Rule (our choice, fits every official model): ``width ≥ 512`` → ``(32, 64, 128, 256, width)`` (the teacher
    family); ``width < 512`` → ``(16, 32, 64, 128, width)`` (the MTD "thin" students: d=200 is MTDVocaLiST,
    d=256 is [M] ``student_thin``). Pass ``channels=`` to :class:`SyncTransformer` for anything else.
    """
    base = TEACHER_CHANNELS[:4] if width >= 512 else STUDENT_CHANNELS[:4]
    return (*base, width)


class ConvBlock(nn.Module):
    """``conv → BN [+ x] → ReLU`` (§2.1); conv and BN live in ``conv_block`` for the official key names."""

    def __init__(
        self,
        dims: int,
        cin: int,
        cout: int,
        kernel_size: int,
        stride: int | tuple[int, ...],
        padding: int | tuple[int, ...],
        residual: bool = False,
    ) -> None:
        super().__init__()
        conv = nn.Conv3d if dims == 3 else nn.Conv2d
        norm = nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d
        self.conv_block = nn.Sequential(conv(cin, cout, kernel_size, stride, padding), norm(cout))
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv_block(x)
        if self.residual:
            out += x  # in place: the BN output is not needed by autograd, saves one activation
        return F.relu(out, inplace=True)


class SyncTransformer(nn.Module):
    """VocaLiST audio-visual synchronisation model (§2); see the module docstring for inputs and taps.

    ``width`` = d_model: 512 (teacher, 80,106,561 params) or 200 (MTDVocaLiST, 13,280,961 params).
    ``channels`` defaults to :func:`default_channels`. The transformer settings default to §2.4 (8 heads,
    4 layers, dropouts 0.25 embed / 0.1 res / 0.1 relu / 0.0 attn). ``num_layers`` changes the state dict;
    ``num_heads`` only how the same weights are split into heads (official weights need 8). ``time_bias`` (not in
    the reference; :mod:`avkd.models.attention`) adds a learned per-head penalty on the time distance between a
    query and a key of the window, and one ``time_slope`` per layer to the state dict.
    """

    BLOCKS: tuple[str, ...] = ("av", "va", "mem")

    def __init__(
        self,
        width: int = 512,
        channels: Sequence[int] | None = None,
        num_heads: int = 8,
        num_layers: int = 4,
        embed_dropout: float = 0.25,
        res_dropout: float = 0.1,
        relu_dropout: float = 0.1,
        attn_dropout: float = 0.0,
        video_frontend: str = "vocalist",
        time_bias: bool = False,
    ) -> None:
        super().__init__()
        ch = tuple(channels) if channels is not None else default_channels(width)
        if len(ch) != 5 or ch[-1] != width:
            raise ValueError(f"channels must be 5 numbers ending in width={width}, got {ch}")
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
        self.width = width
        self.channels = ch
        self.num_heads = num_heads
        if video_frontend not in ("vocalist", "lite"):
            raise ValueError(f"video_frontend must be 'vocalist' or 'lite', got {video_frontend!r}")
        self.video_frontend = video_frontend
        blocks = _VIDEO_BLOCKS if video_frontend == "vocalist" else _LITE_VIDEO_BLOCKS
        video_layers: list[nn.Module] = [] if video_frontend == "vocalist" else [nn.AvgPool3d(_LITE_POOL)]
        video_layers += [
            ConvBlock(3, 3 if i < 0 else ch[i], ch[o], k, s, p, r) for i, o, k, s, p, r in blocks
        ]
        self.vid_prenet = nn.Sequential(*video_layers)
        self.aud_prenet = nn.Sequential(
            *(ConvBlock(2, 1 if i < 0 else ch[i], ch[o], k, s, p, r) for i, o, k, s, p, r in _AUDIO_BLOCKS)
        )

        def encoder() -> TransformerEncoder:
            return TransformerEncoder(
                width,
                num_heads,
                num_layers,
                attn_dropout=attn_dropout,
                relu_dropout=relu_dropout,
                res_dropout=res_dropout,
                embed_dropout=embed_dropout,
                attn_mask=True,
                time_bias=time_bias,
            )

        self.av_transformer = encoder()
        self.va_transformer = encoder()
        self.mem_transformer = encoder()
        # Default nn.Linear init for the head, as in the reference (only the transformer Linears are xavier).
        self.fc = nn.Linear(width, width)
        self.classifier = nn.Linear(width, 1)

    # ----------------------------------------------------------------------------------------- front-ends

    def encode_video(self, video: Tensor) -> Tensor:
        """``video`` (B, 3·T, 48, 96) → tokens (T, B, D), one per frame (§2.2)."""
        if video.dim() != 4 or video.size(1) % 3 or tuple(video.shape[2:]) != FRAME_HW:
            raise ValueError(
                f"video must be (B, 3·T, {FRAME_HW[0]}, {FRAME_HW[1]}), got {tuple(video.shape)}"
            )
        b = video.size(0)
        # (B, T·3, H, W) → (B, 3, H, W, T): the 3D convs run over (height, width, time-last) (§1.3).
        x = video.view(b, -1, 3, *FRAME_HW).permute(0, 2, 3, 4, 1).contiguous()
        x = self.vid_prenet(x)  # (B, D, 1, 1, T)
        return x.flatten(1, 3).permute(2, 0, 1).contiguous()

    def encode_audio(self, mel: Tensor) -> Tensor:
        """``mel`` (B, 1, 80, T_a) → tokens (T_a, B, D), one per mel step (§2.3)."""
        if mel.dim() != 4 or mel.size(1) != 1 or mel.size(2) != N_MELS:
            raise ValueError(f"mel must be (B, 1, {N_MELS}, T_a), got {tuple(mel.shape)}")
        x = self.aud_prenet(mel)  # (B, D, 1, T_a)
        return x.flatten(1, 2).permute(2, 0, 1).contiguous()

    # -------------------------------------------------------------------------------------------- backend

    def _fuse(self, v: Tensor, a: Tensor, rec: TapRecorder | None) -> Tensor:
        def scoped(name: str) -> TapRecorder | None:
            return None if rec is None else rec.child(name + ".")

        av = self.av_transformer(a, v, v, taps=scoped("av"))
        va = self.va_transformer(v, a, a, taps=scoped("va"))
        mem = self.mem_transformer(av, va, va, taps=scoped("mem"))
        pooled = mem.amax(dim=0)  # max over time (§2.5; == max_pool1d over all T_a steps)
        hidden = torch.tanh(self.fc(pooled))
        if rec is not None:
            rec.put("pooled", pooled)
            rec.put("hidden", hidden)
        return self.classifier(hidden).squeeze(-1)

    def _recorder(self, taps: TapRequest | str | Iterable[str] | None) -> TapRecorder | None:
        return recorder_for(taps, self.tap_names())

    @overload
    def fuse(self, v_emb: Tensor, a_emb: Tensor, taps: None = None) -> Tensor: ...
    @overload
    def fuse(self, v_emb: Tensor, a_emb: Tensor, taps: TapRequest | str | Iterable[str]) -> Tapped: ...
    def fuse(
        self, v_emb: Tensor, a_emb: Tensor, taps: TapRequest | str | Iterable[str] | None = None
    ) -> Tensor | Tapped:
        """Transformers + head on front-end tokens ``v_emb`` (T_v, B, D), ``a_emb`` (T_a, B, D) → logits (B,).

        ``v_emb`` may be an expanded view (e.g. one video window repeated over 31 audio candidates). With
        ``taps`` returns :class:`Tapped` (front-end taps are not available here).
        """
        rec = self._recorder(taps)
        logits = self._fuse(v_emb, a_emb, rec)
        return logits if rec is None else Tapped(logits, rec.store)

    @overload
    def forward(self, video: Tensor, mel: Tensor, taps: None = None) -> Tensor: ...
    @overload
    def forward(self, video: Tensor, mel: Tensor, taps: TapRequest | str | Iterable[str]) -> Tapped: ...
    def forward(
        self, video: Tensor, mel: Tensor, taps: TapRequest | str | Iterable[str] | None = None
    ) -> Tensor | Tapped:
        """``video`` (B, 3·T, 48, 96), ``mel`` (B, 1, 80, T_a) → logits (B,), or :class:`Tapped` with ``taps``."""
        rec = self._recorder(taps)
        v = self.encode_video(video)
        a = self.encode_audio(mel)
        if rec is not None:
            rec.put("vid_prenet", v)
            rec.put("aud_prenet", a)
        logits = self._fuse(v, a, rec)
        return logits if rec is None else Tapped(logits, rec.store)

    def tap_names(self) -> list[str]:
        """Every tap name this model can record (see the module docstring)."""
        names = ["vid_prenet", "aud_prenet"]
        for blk in self.BLOCKS:
            enc: TransformerEncoder = getattr(self, f"{blk}_transformer")
            names += [f"{blk}.{n}" for n in enc.tap_names()]
        return [*names, "pooled", "hidden"]


# The class is the entrypoint (build_model checks arguments against its signature): VocaLiST; ``width=512`` is the
# official teacher, ``width=200`` the MTDVocaLiST student (§2). The variants share its signature with other defaults.
register_model(SyncTransformer, name="vocalist")


def _variant(name: str, doc: str, **defaults: Any) -> Callable[..., SyncTransformer]:
    """Register ``vocalist`` under another name with other defaults (and the same checked signature)."""

    def entrypoint(**kwargs: Any) -> SyncTransformer:
        args = {**defaults, **kwargs}
        if "width" in kwargs and "channels" not in kwargs and defaults.get("channels") is not None:
            args["channels"] = (*defaults["channels"][:4], kwargs["width"])  # keep the variant's front-end
        return SyncTransformer(**args)

    base = inspect.signature(SyncTransformer)
    entrypoint.__signature__ = base.replace(  # type: ignore[attr-defined]
        parameters=[
            p.replace(default=defaults[p.name], kind=inspect.Parameter.KEYWORD_ONLY)
            if p.name in defaults
            else p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in base.parameters.values()
        ]
    )
    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__doc__ = doc
    return register_model(entrypoint, name=name)


mtdvocalist = _variant(
    "mtdvocalist",
    "MTDVocaLiST student: VocaLiST at width 200, channels (16, 32, 64, 128, 200) (§2, §2.7).",
    width=200,
)

vocalist_lite = _variant(
    "vocalist_lite",
    """VocaLiST with the "lite" video front-end (4x pooled input), small widths and the time bias: trains on a CPU
    in minutes.

    Same transformers, taps and interfaces as :func:`vocalist`, so every stage (training, evaluation,
    distillation) runs unchanged; used by ``avkd demo`` and the tests. Not a reproduction of a published model.
    ``time_bias=True`` (each attention prefers keys near its query's time; ``time_bias=False`` turns it off) raised
    the demo teacher from 56 % to 67-70 % at 5 frames in the same schedule (README, "What held the demo's teacher
    back"): without it the cross-modal attention has to find the time alignment from the sinusoidal positions,
    which the demo's short training does not manage.
    """,
    width=64,
    channels=(8, 16, 32, 32, 64),
    video_frontend="lite",
    time_bias=True,
)
