"""AVSiam on CMU-MOSEI features: the emotion task's ``forward(text, audio, vision)`` over one weight-shared ViT.

The issue's "inputs for three kinds of data" for MOSEI (item 2): the audio (COVAREP, (B, T_a, 74)) and vision
(FACET, (B, T_v, 35)) sequences become 2-D maps that the AVSiam encoder cuts into p×p patches, so that the same
shared blocks serve the emotion track; the text (GloVe) is accepted and not read (the issue's "text optional":
AVSiam is an audio-visual model). :class:`AVSiamEmotion` *is* an :class:`~avkd.models.avsiam.AVSiam` (a
subclass, not a wrapper): its parameter names are AVSiam's, so a pre-trained AVSiam's weights map onto it key for
key (:func:`init_from_avsiam`) and every AVSiam method (``reconstruct``, ``multi_ratio_features``) works on
the maps (``avkd pretrain`` on a ``mosei-features`` artifact, :mod:`avkd.tasks.avsiam.inputs`).

Maps (our choices; the paper and the released code have no MOSEI input):

* **Layout**: features are rows and time steps columns, as AVSiam's fbank has frequency rows and time columns
  (docs/reference/avsiam-mfh-syncnet.md §1.2): audio → (B, 1, 74 → F_a, T_a'), vision → (B, 1, 35 → F_v, T_v'), a
  1-channel "video" (``video_channels=1``).
* **Padding**: the feature rows are zero-padded at the bottom to a multiple of the patch (74 → 80, 35 → 40 with
  8-pixel patches; 74 → 80, 35 → 48 with 16). The time axis is padded with zeros on the *left* and cut keeping
  the *last* frames, to ``audio_len`` / ``vision_len`` rounded up to a multiple of the patch: the rule the MOSEI
  ingest applies to the sequences (:mod:`avkd.data.mosei.ingest` item 1, the SDK's ``get_tensors``), so a map
  of a stored (T, D) sequence only adds zeros where the ingest already put them.
* **Normalisation** (``input_norm``): MulT feeds the raw features to a Conv1d (docs/reference/mult-mosei.md §2.1:
  only ``-inf`` is set to 0, which the ingest does, item 6); the ``mosei-features`` artifact is not scaled
  either. A ViT patch embedding initialised for unit-scale pixels (timm's, std 0.02 Linear layers) is not made
  for COVAREP/FACET magnitudes in the tens to hundreds, so ``"slog"`` (default) maps each value x to
  ``sign(x)·log(1 + |x|)``: close to x near 0, logarithmic for large magnitudes, padding zeros stay zero, and no
  statistics of a split are needed (nothing to store or to get wrong across splits). ``"none"`` feeds the raw
  values.

Modalities (the released fine-tuning's ``mm_grad`` rule, §1.8, as :func:`avkd.tasks.avsiam.finetune.
modality_for_step`): in training mode, ``train_mode="mixed"`` draws each forward's head from p ~ U(0, 1): p > 0.5
audio-visual (the fusion head), p < 0.25 audio-only, otherwise video-only; ``"av"``, ``"a"``, ``"v"`` fix it. The
draw is a pure function of an explicit counter, the ``mode_draws`` buffer (a seed drawn from the torch RNG when
the model is built, and the number of training-mode forwards so far): it is saved with the weights and in
the loop's checkpoints, so a resumed run draws what an uninterrupted one would; under data parallelism every
rank builds its model after the same seeding (the stages seed with ``loop.seed`` before building; the loop's DDP
does not broadcast buffers) and runs one training forward per step, so all ranks run the same head each step (the loop's torch RNG is seeded per rank, so a draw
from it would differ between ranks, and would move with everything else that consumes it). In eval mode the
head is ``eval_mode`` (``"v"``, video-only, by default: the emotion track's table compares video-only models);
``mode=`` overrides either.

Taps: AVSiam's (:mod:`avkd.models.avsiam`: ``patch_a``, ``a.{l}.scores``, ..., ``feat_a``, ``feat_v``,
``fusion.{l}...``, ``pooled``, each recorded only by a mode that computes it), plus ``hidden`` (B, d or 2d):
the input of the head's Linear (after its LayerNorm), the "penultimate" layer CRD reads (:mod:`avkd.losses.
emotion`); :attr:`out_layer` is the eval mode's head Linear (CRD sizes its embeddings from it). There are no
MulT crossmodal blocks (``a_with_v`` ...), so the attention-map methods (EDAM, CRD on attention) do not apply.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avkd.core.errors import UsageError
from avkd.models.attention import Tapped, TapRequest
from avkd.models.avsiam import MODES, SIZES, AVSiam
from avkd.models.mult import MOSEI_DIMS
from avkd.models.registry import register_model

__all__ = [
    "INPUT_NORMS",
    "TRAIN_MODES",
    "AVSiamEmotion",
    "draw_mode",
    "init_from_avsiam",
    "sequence_map",
]

#: Training-mode head choices: the mixed draw, or one fixed mode.
TRAIN_MODES: tuple[str, ...] = ("mixed", *MODES)
INPUT_NORMS: tuple[str, ...] = ("slog", "none")
_Taps = TapRequest | str | Iterable[str] | None


def draw_mode(seed: int, draw: int) -> str:
    """The mixed rule (§1.8): p ~ U(0, 1) from (seed, draw); p > 0.5 ``av``, p < 0.25 ``a``, otherwise ``v``."""
    p = float(np.random.default_rng([seed, draw]).random())
    return "av" if p > 0.5 else "a" if p < 0.25 else "v"


def _up(n: int, p: int) -> int:
    return -(-n // p) * p


def sequence_map(x: Tensor, rows: int, cols: int, input_norm: str = "slog") -> Tensor:
    """(B, T, D) → (B, 1, rows, cols): features as rows (zero-padded at the bottom to ``rows``), time as
    columns (left-padded with zeros, or cut keeping the last ``cols`` frames), values normalised by
    ``input_norm`` (see the module docstring)."""
    if x.dim() != 3 or x.size(-1) > rows:
        raise ValueError(f"expected (B, T, D <= {rows}), got {tuple(x.shape)}")
    if input_norm == "slog":
        x = torch.sign(x) * torch.log1p(x.abs())
    elif input_norm != "none":
        raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {input_norm!r}")
    x = x.transpose(1, 2)[..., -cols:]  # (B, D, T), the last frames kept
    x = F.pad(x, (cols - x.size(-1), 0, 0, rows - x.size(1)))  # time on the left, features at the bottom
    return x.unsqueeze(1)


class AVSiamEmotion(AVSiam):
    """AVSiam over MOSEI's COVAREP and FACET maps (see the module docstring); 7 classes by default.

    ``audio_len``, ``vision_len``: the time columns of each map (MulT's 500 by default; rounded up to a multiple of
    the patch); ``audio_dim``, ``vision_dim``: the feature rows before padding (74, 35); ``size``,
    ``patch_size``, ``fusion_depth``, ``decoder``, ``decoder_depth`` as :class:`AVSiam` (no decoder by default:
    the classifier does not use it; pre-training needs ``decoder=True``).
    """

    #: A forward runs one head (and for "a"/"v" one side): DDP must look for unused parameters.
    find_unused_parameters = True

    def __init__(
        self,
        size: str = "toy",
        num_classes: int = 7,
        audio_len: int = 500,
        vision_len: int = 500,
        *,
        audio_dim: int = MOSEI_DIMS[1],
        vision_dim: int = MOSEI_DIMS[2],
        patch_size: int | None = None,
        eval_mode: str = "v",
        train_mode: str = "mixed",
        input_norm: str = "slog",
        fusion_depth: int = 2,
        decoder: bool = False,
        decoder_depth: int | None = None,
    ) -> None:
        if size not in SIZES:
            raise ValueError(f"unknown AVSiam size {size!r}; choose one of {sorted(SIZES)}")
        if eval_mode not in MODES:
            raise ValueError(f"eval_mode must be one of {MODES}, got {eval_mode!r}")
        if train_mode not in TRAIN_MODES:
            raise ValueError(f"train_mode must be one of {TRAIN_MODES}, got {train_mode!r}")
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {input_norm!r}")
        if min(audio_len, vision_len, audio_dim, vision_dim) < 1:
            raise ValueError("audio_len, vision_len, audio_dim and vision_dim must be >= 1")
        p = int(patch_size or SIZES[size].patch_size)
        super().__init__(
            size,
            num_classes,
            decoder_depth=decoder_depth,
            fusion_depth=fusion_depth,
            decoder=decoder,
            audio_size=(_up(audio_dim, p), _up(audio_len, p)),
            video_size=(_up(vision_dim, p), _up(vision_len, p)),
            video_channels=1,
            patch_size=p,
        )
        self.audio_dim, self.vision_dim = int(audio_dim), int(vision_dim)
        self.eval_mode, self.train_mode, self.input_norm = eval_mode, train_mode, input_norm
        # (seed, training-mode forwards so far): the mixed draw's explicit state (module docstring).
        seed = int(torch.randint(0, 2**31 - 1, (), device="cpu").item())
        self.register_buffer("mode_draws", torch.tensor([seed, 0], dtype=torch.int64))
        self.last_mode: str | None = None

    # ------------------------------------------------------------------------------------------- inputs

    def audio_map(self, audio: Tensor) -> Tensor:
        """COVAREP (B, T, 74) → (B, 1, F_a, T_a')."""
        _check("audio", audio, self.audio_dim)
        return sequence_map(audio, *self.cfg.audio_size, self.input_norm)

    def vision_map(self, vision: Tensor) -> Tensor:
        """FACET (B, T, 35) → (B, 1, F_v, T_v')."""
        _check("vision", vision, self.vision_dim)
        return sequence_map(vision, *self.video_size, self.input_norm)

    # ------------------------------------------------------------------------------------------- modes

    def next_mode(self) -> str:
        """The head of this forward: eval → ``eval_mode``; training → ``train_mode``, or the mixed draw (which
        advances the counter)."""
        if not self.training:
            return self.eval_mode
        if self.train_mode != "mixed":
            return self.train_mode
        seed, draw = (int(v) for v in self.mode_draws.tolist())
        self.mode_draws[1] += 1
        return draw_mode(seed, draw)

    def train_modes(self) -> tuple[str, ...]:
        """The heads a training-mode forward may run."""
        return MODES if self.train_mode == "mixed" else (self.train_mode,)

    def head_parts(self, mode: str) -> tuple[nn.LayerNorm, nn.Linear]:
        """(LayerNorm, Linear) of a mode's head."""
        if mode == "a":
            return self.head_a_norm, self.head_a
        if mode == "v":
            return self.head_v_norm, self.head_v
        return self.head_norm, self.head

    @property
    def out_layer(self) -> nn.Linear:
        """The eval mode's head Linear (what CRD's ``final`` / ``penultimate`` sites size themselves from)."""
        return self.head_parts(self.eval_mode)[1]

    @property
    def input_modalities(self) -> tuple[str, ...]:
        """The emotion inputs the eval mode reads (``("vision",)`` for the default video-only model)."""
        return {"av": ("audio", "vision"), "a": ("audio",), "v": ("vision",)}[self.eval_mode]

    # ------------------------------------------------------------------------------------------ forward

    def forward(  # type: ignore[override]
        self,
        text: Tensor | None = None,
        audio: Tensor | None = None,
        vision: Tensor | None = None,
        taps: _Taps = None,
        *,
        mode: str | None = None,
    ) -> Tensor | Tapped:
        """Logits (B, num_classes) of one head (``mode``, default :meth:`next_mode`); ``text`` is not read, nor
        is ``audio`` in mode "v" or ``vision`` in mode "a". :class:`Tapped` with ``taps``."""
        del text
        mode = self.next_mode() if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        missing = [n for n, x in (("audio", audio), ("vision", vision)) if x is None and n in _READS[mode]]
        if missing:
            raise ValueError(f"mode {mode!r} needs {' and '.join(missing)}")
        rec = self._recorder(taps)
        self.last_mode = mode  # what the last forward ran (the training stage logs each mode's share)
        norm, linear = self.head_parts(mode)
        if mode == "a":
            pooled = self._side(self.audio_map(audio), "a", rec).mean(dim=1)  # type: ignore[arg-type]
        elif mode == "v":
            pooled = self._side(self.vision_map(vision), "v", rec).mean(dim=1)  # type: ignore[arg-type]
        else:
            tokens_a = self._side(self.audio_map(audio), "a", rec)  # type: ignore[arg-type]
            tokens_v = self._side(self.vision_map(vision), "v", rec)  # type: ignore[arg-type]
            pooled = self.fuse(tokens_a, tokens_v, rec)
            if rec is not None:
                rec.put("pooled", pooled)
        hidden = norm(pooled)
        logits = linear(hidden)
        if rec is None:
            return logits
        rec.put("hidden", hidden)
        return Tapped(logits, rec.store)

    def tap_names(self) -> list[str]:
        """AVSiam's tap names plus ``hidden`` (every mode records ``hidden``)."""
        return [*super().tap_names(), "hidden"]


_READS = {"av": ("audio", "vision"), "a": ("audio",), "v": ("vision",)}


def _check(name: str, x: Tensor | None, dim: int) -> None:
    if x is None or x.dim() != 3 or x.size(-1) != dim:
        raise ValueError(f"{name} must be (B, T, {dim}), got {None if x is None else tuple(x.shape)}")


register_model(AVSiamEmotion, name="avsiam_emotion")


# --------------------------------------------------------------------------------- pre-trained weights


def _resize_grid(pos: Tensor, src: tuple[int, int], dst: tuple[int, int]) -> Tensor:
    """(1, h·w, d) positions on grid ``src`` → grid ``dst``: bicubic, antialiased (how timm resamples ViT
    positions, and :func:`avkd.models.avsiam.load_vit_checkpoint` the video ones)."""
    if src == dst:
        return pos
    img = pos.reshape(1, *src, -1).permute(0, 3, 1, 2).float()
    img = F.interpolate(img, size=dst, mode="bicubic", antialias=True, align_corners=False)
    return img.permute(0, 2, 3, 1).reshape(1, dst[0] * dst[1], -1).to(pos.dtype)


def init_from_avsiam(model: AVSiam, source: AVSiam, where: str = "--init") -> list[str]:
    """Copy a (pre-trained) AVSiam's encoder and fusion weights into ``model``; returns the keys that were
    adapted rather than copied. The heads stay fresh (another task's classes) and the decoder is left out, as
    :func:`avkd.tasks.avsiam.finetune` does for clips.

    The two must agree on width, depth, heads, patch size and fusion depth (else a ``UsageError`` naming
    ``where``). What may differ, adapted: the position grids (a clips model's 32 × 64 fbank vs a MOSEI map),
    resampled bicubically in 2-D; the video patch embedding's input channels (RGB vs a 1-channel feature map),
    replaced by the mean over the source's channels in every channel (the rule the released code uses for the
    audio embedding, §1.2, and :func:`~avkd.models.avsiam.load_vit_checkpoint` for feature maps).
    """
    mine, theirs = model.cfg, source.cfg
    keys = ("embed_dim", "depth", "num_heads", "patch_size", "mlp_ratio")
    differ = [k for k in keys if getattr(mine, k) != getattr(theirs, k)]
    if len(model.fusion) != len(source.fusion):
        differ.append("fusion_depth")
    if differ:
        got = ", ".join(f"{k} {getattr(theirs, k, len(source.fusion))}" for k in differ)
        raise UsageError(f"{where}: its AVSiam does not fit {model.size!r} ({got} vs this model's)")
    target = model.state_dict()
    state: dict[str, Tensor] = {}
    adapted: list[str] = []
    original = source.state_dict()
    for key, value in original.items():
        if "head" in key or key.startswith("decoder.") or key not in target:
            continue
        if key == "pos_embed_a":
            value = _resize_grid(value, source.grid_a, model.grid_a)
        elif key == "pos_embed_v":
            value = _resize_grid(value, source.grid_v, model.grid_v)
        elif key == "patch_embed_v.proj.weight" and value.size(1) != target[key].size(1):
            value = value.mean(dim=1, keepdim=True).repeat(1, target[key].size(1), 1, 1)
        if value.shape != target[key].shape:  # e.g. another audio_dim's rows: nothing to adapt it by
            raise UsageError(
                f"{where}: {key} is {tuple(value.shape)}, this model needs {tuple(target[key].shape)}"
            )
        if value is not original[key]:
            adapted.append(key)
        state[key] = value
    missing, _ = model.load_state_dict(state, strict=False)
    left = [k for k in missing if "head" not in k and not k.startswith("decoder.") and k != "mode_draws"]
    if left:
        raise UsageError(f"{where}: its weights lack {len(left)} of this model's (e.g. {left[0]})")
    return adapted


# --------------------------------------------------------------------------------- pre-training items
