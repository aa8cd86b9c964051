"""MulT (Multimodal Transformer) for CMU-MOSEI, unaligned, and the video-only EDAM student of the seed paper.

Re-implemented from docs/reference/mult-mosei.md §1 (MulT, ``src/models.py`` ``MULTModel``) and §5
(seed paper: student configurations, EDAM-S). The transformer blocks are the shared fairseq/MulT ones of
:mod:`avkd.models.attention` (pre-LN, shared LN0 for q/k/v, ``sqrt(d)·x + PE``, PE padding quirk, the
``triu(-inf, 1 + |Tk - Tq|)`` mask, §1.3/§1.4), so state-dict names follow the reference: ``proj_l``,
``trans_l_with_a``, ..., ``trans_l_mem``, ``proj1``, ``proj2``, ``out_layer``.

Teacher (``build_model("mult")``), §1.2::

    text (B, 50, 300) ─dropout(embed)─ proj_l ─┐            (T, B, 30) each, sequence-first
    audio (B, 500, 74) ─────────────── proj_a ─┼─ trans_X_with_Y (query X, key/value Y), 6 blocks
    vision (B, 500, 35) ────────────── proj_v ─┘   cat([X_with_Y1, X_with_Y2], -1) → trans_X_mem (d = 60)
    last time step of each mem output → cat (B, 180) → proj1 → ReLU → dropout → proj2, + residual → out_layer

``branch`` selects MulT's ``--lonly/--aonly/--vonly`` modes ("language"/"audio"/"video"; "complete" = all).
A partial model still instantiates all three mem encoders, exactly like the reference (§1.2, §1.5), so its
parameter count and state dict match a reference ``lonly`` checkpoint; the two unused mem encoders receive no
gradient (use ``find_unused_parameters=True`` under DDP).

Student (``build_model("mult_student", config=N)``), §5.1/§5.2/§5.5 item 4: vision only. Three bias-free Conv1d
"proxies" of the vision features stand in for the three modalities: ``proj_v`` (V_S), ``proj_a`` (A_S),
``proj_l`` (L_S). With ``proxy="edam_s"`` (default, EDAM-S↓) their lengths equal the teacher's: V_S k=1 (500),
A_S k=3 pad 1 (500), L_S k=10 stride 10 (500 → 50); ``proxy="same"`` uses stride-1 kernels 1/3/5 (all 500).
Configurations (paper "Y←X" = query X, key/value Y = block ``X_with_Y``):

====  =========  ==============================================  ==========================================
cfg   teacher    student blocks (readout order)                  distilled blocks (same name in teacher)
====  =========  ==============================================  ==========================================
1     complete   the teacher's 9 (6 cross + 3 mem), head c=180   all 9
2     video      v_with_v, v_with_a, v_with_l                    v_with_a, v_with_l
3     language   v_with_v, l_with_v, l_with_a                    l_with_v, l_with_a
4     audio      v_with_v, a_with_v, a_with_l                    a_with_v, a_with_l
5     complete   v_with_v, l_with_v, a_with_v (seed Fig. 1)      a_with_v, l_with_v
====  =========  ==============================================  ==========================================

``v_with_v`` is a self-attention encoder (V_S←V_S, never distilled). Configs 2-5 have no mem encoders: the last
time step of each of the three block outputs is concatenated (c = 3·d = 90) and fed to the MulT head (§5.1,
§5.5 item 16). Attention dropout follows MulT's rule by the key/value (proxy) modality: L → ``attn_dropout``,
A → ``attn_dropout_a``, V → ``attn_dropout_v``; mem encoders ``attn_dropout`` (§1.2). The student applies no
input dropout (MulT drops out only the text input). :data:`STUDENT_CONFIGS` lists the table above.

Forward: ``teacher(text, audio, vision, taps=None)`` and ``student(text, audio, vision, taps=None)`` with the
same positional order so that a distillation loop calls both alike; the student ignores ``text`` and ``audio``
(they may be None or omitted: ``student(vision=v)``). Both return logits (B, output_dim), or
:class:`~avkd.models.attention.Tapped` when ``taps`` is given.

Taps (layers 1-based; block names are the module names without ``trans_``):

* ``{block}.{1..L}.{scores,probs,q,k,v,v_scaled,out,out_ln}``, ``{block}.emb`` — see
  :mod:`avkd.models.attention`. ``scores`` (B, H, Tq, Tk) are the per-head pre-softmax logits
  (Q·d_h^-½)Kᵀ + mask with −inf at masked entries; ``probs`` = softmax(scores) before attention dropout, rows
  sum to 1, masked entries exactly 0. Every row keeps at least its first key unmasked, so neither contains NaN,
  even for all-zero (padding) inputs. A loss on them must not form ``0·log 0`` (§5.5 item 8): take
  ``log_softmax(scores)`` and zero the masked terms (``torch.where(probs > 0, ..., 0)``) instead of ``log(probs)``.
  Shapes at MOSEI lengths: §1.7 (e.g. ``l_with_a`` 50×500, ``a_with_l`` 500×50, mem blocks T×T).
* ``proj_l``, ``proj_a``, ``proj_v`` (T, B, d): the projected (proxy) sequences.
* ``last_hs`` (B, c): concatenated last time steps (the reference's second return value);
  ``hidden`` (B, c): ``proj2(...) + last_hs``, the input of ``out_layer`` (the "penultimate" layer, §5.5 item 12).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

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
    "BRANCHES",
    "MOSEI_DIMS",
    "MOSEI_LENGTHS",
    "STUDENT_CONFIGS",
    "MulT",
    "MulTStudent",
    "StudentConfig",
]

#: Feature dims (text, audio, vision) of the unaligned MOSEI pickles (§1.2, §2.1).
MOSEI_DIMS: tuple[int, int, int] = (300, 74, 35)
#: Sequence lengths (text, audio, vision) of the unaligned MOSEI pickles (§2.1).
MOSEI_LENGTHS: tuple[int, int, int] = (50, 500, 500)

#: ``branch`` → query modalities run (MulT ``--lonly/--aonly/--vonly``; "complete" = none given, §1.1).
BRANCHES: dict[str, str] = {"complete": "lav", "language": "l", "audio": "a", "video": "v"}

_TapsArg = TapRequest | str | Iterable[str] | None


class StudentConfig(NamedTuple):
    """One seed-paper configuration (§5.2): the teacher branch, student blocks and distilled blocks."""

    teacher_branch: str
    #: (block name, query modality, key/value modality); readout order. Unused for config 1 (mem graph).
    blocks: tuple[tuple[str, str, str], ...]
    #: Student blocks distilled from the teacher block of the same name.
    distilled: tuple[str, ...]


_CROSS = ("l_with_a", "l_with_v", "a_with_l", "a_with_v", "v_with_l", "v_with_a")
_SELF_V = ("v_with_v", "v", "v")

#: §5.2 table (see the module docstring).
STUDENT_CONFIGS: dict[int, StudentConfig] = {
    1: StudentConfig("complete", (), (*_CROSS, "l_mem", "a_mem", "v_mem")),
    2: StudentConfig(
        "video", (_SELF_V, ("v_with_a", "v", "a"), ("v_with_l", "v", "l")), ("v_with_a", "v_with_l")
    ),
    3: StudentConfig(
        "language", (_SELF_V, ("l_with_v", "l", "v"), ("l_with_a", "l", "a")), ("l_with_v", "l_with_a")
    ),
    4: StudentConfig(
        "audio", (_SELF_V, ("a_with_v", "a", "v"), ("a_with_l", "a", "l")), ("a_with_v", "a_with_l")
    ),
    5: StudentConfig(
        "complete", (_SELF_V, ("l_with_v", "l", "v"), ("a_with_v", "a", "v")), ("a_with_v", "l_with_v")
    ),
}

#: Student proxy convs (kernel, stride, padding) for V_S, A_S, L_S (§5.5 item 4).
_PROXIES: dict[str, dict[str, tuple[int, int, int]]] = {
    "edam_s": {"v": (1, 1, 0), "a": (3, 1, 1), "l": (10, 10, 0)},
    "same": {"v": (1, 1, 0), "a": (3, 1, 1), "l": (5, 1, 2)},
}


class _MulTBase(nn.Module):
    """Shared pieces: encoder factory (§1.2 ``get_network``), the MulT graph, head, taps."""

    def __init__(
        self,
        d: int,
        num_heads: int,
        layers: int,
        attn_dropout: float,
        attn_dropout_a: float,
        attn_dropout_v: float,
        relu_dropout: float,
        res_dropout: float,
        embed_dropout: float,
        out_dropout: float,
        attn_mask: bool,
        output_dim: int,
    ) -> None:
        super().__init__()
        self.d = d
        self.num_heads = num_heads
        self.layers = layers
        self.attn_dropout = attn_dropout
        self.attn_dropout_a = attn_dropout_a
        self.attn_dropout_v = attn_dropout_v
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout
        self.embed_dropout = embed_dropout
        self.out_dropout = out_dropout
        self.attn_mask = attn_mask
        self.output_dim = output_dim
        self._blocks: list[str] = []  # names of the blocks the forward runs (for tap_names)

    def _encoder(self, source: str, *, mem: bool = False) -> TransformerEncoder:
        """``get_network`` (§1.2): attention dropout by the key/value modality; mem encoders are 2d wide and
        get ``max(layers, 3)`` layers (the reference quirk: 5, not 3, at the defaults)."""
        if mem:
            dim, attn_dropout, layers = 2 * self.d, self.attn_dropout, max(self.layers, 3)
        else:
            drop = {"l": self.attn_dropout, "a": self.attn_dropout_a, "v": self.attn_dropout_v}
            dim, attn_dropout, layers = self.d, drop[source], self.layers
        return TransformerEncoder(
            dim,
            self.num_heads,
            layers,
            attn_dropout=attn_dropout,
            relu_dropout=self.relu_dropout,
            res_dropout=self.res_dropout,
            embed_dropout=self.embed_dropout,
            attn_mask=self.attn_mask,
        )

    def _add_cross(self, queries: str) -> None:
        # Reference registration order: l_with_a, l_with_v, a_with_l, a_with_v, v_with_l, v_with_a.
        for q in queries:
            for s in (m for m in "lav" if m != q):
                setattr(self, f"trans_{q}_with_{s}", self._encoder(s))

    def _add_mem(self) -> None:
        for m in "lav":
            setattr(self, f"trans_{m}_mem", self._encoder(m, mem=True))

    def _add_head(self, combined_dim: int) -> None:
        # Default nn.Linear init, as in the reference (only the transformer Linears are xavier).
        self.proj1 = nn.Linear(combined_dim, combined_dim)
        self.proj2 = nn.Linear(combined_dim, combined_dim)
        self.out_layer = nn.Linear(combined_dim, self.output_dim)

    def _run(self, name: str, x: Tensor, src: Tensor | None, rec: TapRecorder | None) -> Tensor:
        enc: TransformerEncoder = getattr(self, f"trans_{name}")
        child = None if rec is None else rec.child(name + ".")
        if src is None:  # self-attention: one embedded stream for q, k and v
            return enc(x, taps=child)
        return enc(x, src, src, taps=child)

    def _mult_graph(self, streams: dict[str, Tensor], queries: str, rec: TapRecorder | None) -> Tensor:
        """Crossmodal blocks → mem encoder → last step, per query modality; concat in l, a, v order (§1.2)."""
        lasts = []
        for q in queries:
            hs = [self._run(f"{q}_with_{s}", streams[q], streams[s], rec) for s in "lav" if s != q]
            h = self._run(f"{q}_mem", torch.cat(hs, dim=2), None, rec)
            lasts.append(h[-1])  # last time step: real content, MOSEI is left-padded (§2.1)
        return torch.cat(lasts, dim=1)

    def _head(self, last_hs: Tensor, rec: TapRecorder | None) -> Tensor:
        """proj1 → ReLU → dropout → proj2, + residual → out_layer (§1.2)."""
        h = self.proj2(F.dropout(F.relu(self.proj1(last_hs)), p=self.out_dropout, training=self.training))
        h = h + last_hs
        if rec is not None:
            rec.put("last_hs", last_hs)
            rec.put("hidden", h)
        return self.out_layer(h)

    def _recorder(self, taps: _TapsArg) -> TapRecorder | None:
        return recorder_for(taps, self.tap_names())

    @staticmethod
    def _seq_first(conv: nn.Module | None, x: Tensor) -> Tensor:
        """(B, C, T) → optional Conv1d → (T, B, d), the reference's sequence-first layout."""
        if conv is not None:
            x = conv(x)
        return x.permute(2, 0, 1)

    def tap_names(self) -> list[str]:
        """Every tap name this model can record (see the module docstring)."""
        names = ["proj_l", "proj_a", "proj_v"]
        for blk in self._blocks:
            enc: TransformerEncoder = getattr(self, f"trans_{blk}")
            names += [f"{blk}.{n}" for n in enc.tap_names()]
        return [*names, "last_hs", "hidden"]


def _check(name: str, x: Tensor | None, dim: int) -> Tensor:
    if x is None or x.dim() != 3 or x.size(-1) != dim:
        shape = None if x is None else tuple(x.shape)
        raise ValueError(f"{name} must be (B, T, {dim}), got {shape}")
    return x


class MulT(_MulTBase):
    """MulT ``MULTModel`` (§1.2) with repo defaults for unaligned MOSEI (§1.1), 7-way output (seed paper).

    ``kernel_size`` is the input Conv1d kernel (reference 1, padding 0; the seed paper says 3, padding 1 —
    odd kernels keep the length). The input convs are skipped when ``orig_d == d`` as in the reference.
    Parameter counts (§1.5): complete 1,074,817 (out 7) / 1,073,731 (out 1); any single branch 792,097 (out 7)
    / 791,731 (out 1); complete with ``kernel_size=3`` 1,099,357.
    """

    def __init__(
        self,
        orig_d_l: int = MOSEI_DIMS[0],
        orig_d_a: int = MOSEI_DIMS[1],
        orig_d_v: int = MOSEI_DIMS[2],
        *,
        d: int = 30,
        num_heads: int = 5,
        layers: int = 5,
        attn_dropout: float = 0.1,
        attn_dropout_a: float = 0.0,
        attn_dropout_v: float = 0.0,
        relu_dropout: float = 0.1,
        res_dropout: float = 0.1,
        embed_dropout: float = 0.25,
        out_dropout: float = 0.0,
        attn_mask: bool = True,
        output_dim: int = 7,
        branch: str = "complete",
        kernel_size: int = 1,
    ) -> None:
        super().__init__(
            d, num_heads, layers, attn_dropout, attn_dropout_a, attn_dropout_v, relu_dropout, res_dropout,
            embed_dropout, out_dropout, attn_mask, output_dim,
        )  # fmt: skip
        if branch not in BRANCHES:
            raise ValueError(f"branch must be one of {sorted(BRANCHES)}, got {branch!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (length-preserving), got {kernel_size}")
        self.branch = branch
        self.queries = BRANCHES[branch]
        self.orig_dims = (orig_d_l, orig_d_a, orig_d_v)
        pad = (kernel_size - 1) // 2
        for m, od in zip("lav", self.orig_dims, strict=True):
            conv = None if od == d else nn.Conv1d(od, d, kernel_size=kernel_size, padding=pad, bias=False)
            setattr(self, f"proj_{m}", conv)
        self._add_cross(self.queries)
        self._add_mem()  # all three, even in a partial mode (reference l.58-60)
        self._add_head(2 * d * len(self.queries))  # combined_dim: 2·d per query modality
        self._blocks = [f"{q}_with_{s}" for q in self.queries for s in "lav" if s != q]
        self._blocks += [f"{q}_mem" for q in self.queries]

    def forward(self, text: Tensor, audio: Tensor, vision: Tensor, taps: _TapsArg = None) -> Tensor | Tapped:
        """``text`` (B, T_l, 300), ``audio`` (B, T_a, 74), ``vision`` (B, T_v, 35) → logits (B, output_dim),
        or :class:`Tapped` with ``taps``. All three inputs are required in every branch (as in the reference)."""
        rec = self._recorder(taps)
        dl, da, dv = self.orig_dims
        # Only the text input gets embedding dropout before its conv (reference l.96).
        x_l = F.dropout(
            _check("text", text, dl).transpose(1, 2), p=self.embed_dropout, training=self.training
        )
        streams = {
            "l": self._seq_first(self.proj_l, x_l),
            "a": self._seq_first(self.proj_a, _check("audio", audio, da).transpose(1, 2)),
            "v": self._seq_first(self.proj_v, _check("vision", vision, dv).transpose(1, 2)),
        }
        if rec is not None:
            for m, s in streams.items():
                rec.put(f"proj_{m}", s)
        logits = self._head(self._mult_graph(streams, self.queries, rec), rec)
        return logits if rec is None else Tapped(logits, rec.store)


class MulTStudent(_MulTBase):
    """Video-only EDAM student (§5.1, §5.2, §5.6): three Conv1d proxies of ``vision`` + MulT blocks.

    ``config`` 1-5 selects the blocks (module docstring table, :data:`STUDENT_CONFIGS`); ``proxy`` "edam_s"
    (lengths = teacher's, default) or "same" (all 500). Config 5 with the defaults is the §5.6 prototype:
    199,747 parameters.
    """

    def __init__(
        self,
        config: int = 5,
        orig_d_v: int = MOSEI_DIMS[2],
        *,
        proxy: str = "edam_s",
        d: int = 30,
        num_heads: int = 5,
        layers: int = 5,
        attn_dropout: float = 0.1,
        attn_dropout_a: float = 0.0,
        attn_dropout_v: float = 0.0,
        relu_dropout: float = 0.1,
        res_dropout: float = 0.1,
        embed_dropout: float = 0.25,
        out_dropout: float = 0.0,
        attn_mask: bool = True,
        output_dim: int = 7,
    ) -> None:
        super().__init__(
            d, num_heads, layers, attn_dropout, attn_dropout_a, attn_dropout_v, relu_dropout, res_dropout,
            embed_dropout, out_dropout, attn_mask, output_dim,
        )  # fmt: skip
        if config not in STUDENT_CONFIGS:
            raise ValueError(f"config must be one of {sorted(STUDENT_CONFIGS)}, got {config!r}")
        if proxy not in _PROXIES:
            raise ValueError(f"proxy must be one of {sorted(_PROXIES)}, got {proxy!r}")
        self.config = config
        self.spec = STUDENT_CONFIGS[config]
        self.proxy = proxy
        self.orig_d_v = orig_d_v
        # Same attribute names as the teacher's input convs, registered in the reference order l, a, v.
        for m in "lav":
            k, s, p = _PROXIES[proxy][m]
            setattr(self, f"proj_{m}", nn.Conv1d(orig_d_v, d, kernel_size=k, stride=s, padding=p, bias=False))
        if config == 1:
            self._add_cross("lav")
            self._add_mem()
            self._add_head(6 * d)
            self._blocks = [*_CROSS, "l_mem", "a_mem", "v_mem"]
        else:
            for name, _q, s in self.spec.blocks:
                setattr(self, f"trans_{name}", self._encoder(s))
            self._add_head(d * len(self.spec.blocks))
            self._blocks = [name for name, _, _ in self.spec.blocks]

    def forward(
        self,
        text: Tensor | None = None,
        audio: Tensor | None = None,
        vision: Tensor | None = None,
        taps: _TapsArg = None,
    ) -> Tensor | Tapped:
        """``vision`` (B, T_v, 35) → logits (B, output_dim), or :class:`Tapped` with ``taps``.

        ``text`` and ``audio`` are accepted so the teacher's call ``(text, audio, vision)`` works unchanged,
        and ignored (the student is video-only).
        """
        del text, audio
        rec = self._recorder(taps)
        x_v = _check("vision", vision, self.orig_d_v).transpose(1, 2)
        streams = {m: self._seq_first(getattr(self, f"proj_{m}"), x_v) for m in "lav"}
        if rec is not None:
            for m, s in streams.items():
                rec.put(f"proj_{m}", s)
        if self.config == 1:
            last_hs = self._mult_graph(streams, "lav", rec)
        else:
            outs = [
                self._run(name, streams[q], None if name == "v_with_v" else streams[s], rec)
                for name, q, s in self.spec.blocks
            ]
            last_hs = torch.cat([h[-1] for h in outs], dim=1)
        logits = self._head(last_hs, rec)
        return logits if rec is None else Tapped(logits, rec.store)


# The classes are the registry entrypoints: their constructors spell out every argument, so build_model can
# reject a misspelt one, and no forwarding function repeats the parameter lists.
register_model(MulT, name="mult")
register_model(MulTStudent, name="mult_student")
