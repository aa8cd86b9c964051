"""Fairseq / MulT-style attention, sinusoidal positions and the cross-modal transformer encoder.

Re-implemented from docs/reference/vocalist.md §2.4 (VocaLiST, whose transformer is MulT's) so
that the official state dicts load unchanged, and shared by every model family that uses MulT blocks.

Quirks kept on purpose (they change pretrained outputs, §2.4 and §7.8):

* **PE padding rule**: a timestep whose feature channel 0 is exactly 0.0 is treated as padding and gets no
  positional embedding (fairseq ``make_positions`` on ``x[:, :, 0]``); all others get position t+1.
* **Mask**: ``triu(full(Tq, Tk, -inf), diagonal=1 + |Tk - Tq|)`` (:func:`future_mask`), i.e. a causal mask for
  self-attention but an odd partial mask for cross-attention with Tq < Tk.
* **Shared LN0** for query, key and value; key and value streams embedded and dropped out separately.

Not in the reference: ``time_bias=True`` adds a learned, per-head bias ``-10·slope_h·|t_q - t_k|`` to the scores,
where ``t = (i + ½)/T`` is a token's place in its window (so the 16 mel steps and 5 video frames of one window line
up) and ``slope_h`` starts at 3 (:data:`TIME_BIAS_INIT`; :func:`time_distance`). It is ALiBi's idea (Press et al., ICLR 2022: a linear
distance penalty instead of learned positions) with learned slopes and time measured as a fraction of the window;
the factor 10 lets Adam move the penalty at a useful pace. Off by default: official checkpoints have no slopes.

Taps (internals for distillation)
---------------------------------
Nothing is recorded and no hooks run unless a forward is given ``taps=TapRequest(...)``. A request is a set of
fnmatch patterns over *tap names*; each module prefixes the names of its children (``"av." + "2.probs"``). Layers
are **1-based**. Per encoder, per layer ``l``:

==============  ================  ====================================================================
name            shape             meaning
==============  ================  ====================================================================
``l.scores``    (B, H, Tq, Tk)    pre-softmax S = (Q·d_h^-½)Kᵀ + mask (−inf where masked; + the time bias if on)
``l.probs``     (B, H, Tq, Tk)    softmax(S) in float (before attention dropout); masked entries 0
``l.q``         (B, H, Tq, d_h)   Q·d_h^-½ (the scaled query, reference ``q_norm``)
``l.k``         (B, H, Tk, d_h)   K
``l.v``         (B, H, Tk, d_h)   V
``l.v_scaled``  (B, H, Tk, d_h)   V·d_h^-½ (reference ``v_norm``)
``l.out``       (Tq, B, D)        the layer's output (residual stream, before the final LayerNorm)
``l.out_ln``    (Tq, B, D)        final LayerNorm of ``l.out`` (reference ``*_emb_list``)
``emb``         (Tq, B, D)        the encoder output (after the final LayerNorm; == ``{last}.out_ln``)
==============  ================  ====================================================================

Head layout: (B, H, ...) with head h of sample b at ``[b, h]``. The reference code uses (B·H, T, ·) with row
``b·H + h``; :func:`flat_heads` converts (a free view) and :func:`unflat_heads` converts back. Tensors stay in the
autograd graph (the student's maps need gradients); run a frozen teacher under ``torch.no_grad()``. Only
requested tensors are kept; the rest are freed as in a plain forward.

When a layer's attention internals are not requested its attention runs through
``torch.nn.functional.scaled_dot_product_attention`` with the float additive mask; otherwise the explicit
fairseq computation runs so that S and softmax(S) exist. Both give the same numbers to ~1e-6.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avkd.core.errors import UsageError

__all__ = [
    "ATTENTION_TAPS",
    "LAYER_TAPS",
    "MultiheadAttention",
    "SinusoidalPositionalEmbedding",
    "TapRecorder",
    "TapRequest",
    "Tapped",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "buffered_future_mask",
    "flat_heads",
    "future_mask",
    "recorder_for",
    "set_sdpa",
    "time_distance",
    "unflat_heads",
    "validate_taps",
]

#: Per-layer attention internals; requesting any of them switches that layer to the explicit path.
ATTENTION_TAPS: tuple[str, ...] = ("scores", "probs", "q", "k", "v", "v_scaled")
#: All per-layer tap names of a :class:`TransformerEncoder` (prefixed with ``"{layer}."``).
LAYER_TAPS: tuple[str, ...] = (*ATTENTION_TAPS, "out", "out_ln")


# ------------------------------------------------------------------------------------------------- taps


class TapRequest:
    """Which internals a forward pass keeps: fnmatch patterns over tap names (see the module docstring).

    ``TapRequest("av.*.probs", "mem.4.*", "pooled")``; ``TapRequest("*")`` keeps everything. Patterns are
    case-sensitive; a model raises ``UsageError`` for a pattern that matches none of its tap names.
    """

    __slots__ = ("patterns",)

    def __init__(self, *patterns: str | Iterable[str]) -> None:
        flat: list[str] = []
        for p in patterns:
            if isinstance(p, str):
                flat.append(p)
            else:
                flat.extend(p)
        if not flat:
            raise ValueError("TapRequest needs at least one pattern")
        self.patterns: tuple[str, ...] = tuple(flat)

    @classmethod
    def coerce(cls, taps: TapRequest | str | Iterable[str]) -> TapRequest:
        """Accept a request, one pattern or an iterable of patterns."""
        return taps if isinstance(taps, TapRequest) else cls(taps)

    def matches(self, name: str) -> bool:
        return any(fnmatchcase(name, p) for p in self.patterns)

    def unmatched(self, names: Iterable[str]) -> list[str]:
        """Patterns that match none of ``names`` (typos, or taps a model does not have)."""
        names = list(names)
        return [p for p in self.patterns if not any(fnmatchcase(n, p) for n in names)]

    def __repr__(self) -> str:
        return f"TapRequest({', '.join(map(repr, self.patterns))})"


class TapRecorder:
    """Per-forward store of requested internals; :meth:`child` scopes names under a prefix.

    Created by a model's forward from a :class:`TapRequest`; modules call :meth:`wants` / :meth:`put`.
    """

    __slots__ = ("_cache", "prefix", "request", "store")

    def __init__(
        self,
        request: TapRequest,
        prefix: str = "",
        store: dict[str, Tensor] | None = None,
        cache: dict[str, bool] | None = None,
    ) -> None:
        self.request = request
        self.prefix = prefix
        self.store: dict[str, Tensor] = {} if store is None else store
        self._cache: dict[str, bool] = {} if cache is None else cache

    def child(self, prefix: str) -> TapRecorder:
        return TapRecorder(self.request, self.prefix + prefix, self.store, self._cache)

    def wants(self, name: str) -> bool:
        full = self.prefix + name
        hit = self._cache.get(full)
        if hit is None:
            hit = self._cache[full] = self.request.matches(full)
        return hit

    def wants_any(self, names: Iterable[str]) -> bool:
        return any(self.wants(n) for n in names)

    def put(self, name: str, value: Tensor) -> None:
        if self.wants(name):
            self.store[self.prefix + name] = value


class Tapped(NamedTuple):
    """Result of a forward with ``taps=``: the usual output plus ``{tap name: tensor}``."""

    logits: Tensor
    taps: dict[str, Tensor]


def flat_heads(x: Tensor) -> Tensor:
    """(B, H, T, ·) → (B·H, T, ·) with row ``b·H + h``, the reference layout (§5.1). A view, no copy."""
    return x.flatten(0, 1)


def unflat_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B·H, T, ·) with row ``b·H + h`` → (B, H, T, ·)."""
    return x.unflatten(0, (-1, num_heads))


# ------------------------------------------------------------------------------------------------- mask


def future_mask(
    tq: int, tk: int, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """The MulT/VocaLiST additive mask (Tq, Tk): ``triu(full(-inf), diagonal=1 + |Tk - Tq|)`` (§2.4).

    Query i cannot see keys j ≥ i + 1 + |Tk − Tq|. Self-attention (Tq = Tk) gives the causal mask; for
    (Tq, Tk) = (5, 16) it hides 10 entries; for (16, 5) none.
    """
    full = torch.full((tq, tk), float("-inf"), device=device, dtype=dtype)
    return torch.triu(full, diagonal=1 + abs(tk - tq))


def buffered_future_mask(query: Tensor, key: Tensor | None = None) -> Tensor:
    """Reference-named wrapper of :func:`future_mask` for (T, B, D) query/key tensors (``key=None``: self)."""
    tq = query.size(0)
    tk = tq if key is None else key.size(0)
    return future_mask(tq, tk, device=query.device, dtype=query.dtype)


@lru_cache(maxsize=64)
def _cached_mask(tq: int, tk: int, device: torch.device, dtype: torch.dtype) -> Tensor | None:
    # None when nothing is masked (e.g. (16, 5)): adding zeros is exact, so skipping it changes no number
    # and lets SDPA run unmasked.
    if 1 + abs(tk - tq) >= tk:
        return None
    # A normal tensor even when first built under torch.inference_mode(): the cache outlives that block and
    # SDPA saves the mask for backward in a later training step.
    with torch.inference_mode(False):
        return future_mask(tq, tk, device=device, dtype=dtype)


@lru_cache(maxsize=64)
def time_distance(tq: int, tk: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """|t_q − t_k| (Tq, Tk) with ``t = (i + ½)/T``: the distance in time between two tokens of the same window,
    as a fraction of the window, whatever each stream's rate (16 mel steps against 5 frames)."""
    with torch.inference_mode(False):  # cached across steps: must not be an inference tensor
        tq_pos = (torch.arange(tq, device=device, dtype=dtype) + 0.5) / tq
        tk_pos = (torch.arange(tk, device=device, dtype=dtype) + 0.5) / tk
        return (tq_pos[:, None] - tk_pos[None, :]).abs()


#: Scale of the learned time-bias slopes (see the module docstring): bias = −TIME_BIAS_SCALE · slope · distance.
TIME_BIAS_SCALE = 10.0
#: Initial slope: −30 per window, i.e. −6 between the times of two neighbouring video frames of a 5-frame window, a
#: firm but learnable preference for keys near the query's time (measured against 1.0 on the demo: 70.2 against
#: 67.1 % at K5, README "What holds the demo's teacher back").
TIME_BIAS_INIT = 3.0


# ---------------------------------------------------------------------------------------- positional


class SinusoidalPositionalEmbedding(nn.Module):
    """Sinusoidal positions, tensor2tensor variant, with fairseq's padding rule (§2.4).

    Frequencies ``f_k = exp(-k·ln(10000)/(half-1))``, ``emb[p] = [sin(p·f), cos(p·f)]`` concatenated (not
    interleaved), a zero column appended for odd dims, row 0 (padding) all zeros. The ``_float_tensor`` buffer
    exists only so that official state dicts load with ``strict=True`` (§2.6); its value is unused.
    """

    def __init__(self, embedding_dim: int) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.register_buffer("_float_tensor", torch.zeros(1))
        # (device, dtype) -> table with ≥ T+1 rows; a plain dict so it is not part of the state dict.
        self._tables: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    @staticmethod
    def get_embedding(num_embeddings: int, embedding_dim: int) -> Tensor:
        """Table (num_embeddings, embedding_dim) in float32; row 0 is zero (padding)."""
        # Same float32 operation order as fairseq so the table matches bit for bit.
        half = embedding_dim // 2
        step = math.log(10000) / (half - 1)
        freq = torch.exp(torch.arange(half, dtype=torch.float) * -step)
        ang = torch.arange(num_embeddings, dtype=torch.float).unsqueeze(1) * freq.unsqueeze(0)
        emb = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)
        if embedding_dim % 2 == 1:
            emb = torch.cat([emb, torch.zeros(num_embeddings, 1)], dim=1)
        emb[0, :] = 0
        return emb

    def table(self, length: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """Rows 1..length (positions of timesteps 0..length-1), shape (length, D)."""
        key = (device, dtype)
        tab = self._tables.get(key)
        if tab is None or tab.size(0) < length + 1:
            with torch.inference_mode(False):  # cached across calls: must not be an inference tensor
                tab = self.get_embedding(length + 1, self.embedding_dim).to(device=device, dtype=dtype)
            self._tables[key] = tab
        return tab[1 : length + 1]

    def forward(self, x: Tensor) -> Tensor:
        """PE for token features ``x`` (T, B, D) → (T, B, D); zero where ``x[t, b, 0] == 0`` (the quirk)."""
        t = x.size(0)
        keep = (x[:, :, 0] != 0).unsqueeze(-1).to(x.dtype)  # (T, B, 1): 1 = real token, 0 = "padding"
        # table·1 / table·0 equals fairseq's index_select of row t+1 / row 0 exactly.
        return self.table(t, x.device, x.dtype).unsqueeze(1) * keep


# ------------------------------------------------------------------------------------------ attention


def _xavier_linear(d_in: int, d_out: int) -> nn.Linear:
    # §2.4: fc1/fc2 use xavier_uniform weights and zero bias (fairseq ``Linear``).
    m = nn.Linear(d_in, d_out)
    nn.init.xavier_uniform_(m.weight)
    nn.init.zeros_(m.bias)
    return m


class MultiheadAttention(nn.Module):
    """Fairseq multi-head attention (§2.4): packed ``in_proj_weight`` (3d, d) rows [q; k; v], ``out_proj``.

    Inputs are (T, B, D); ``attn_mask`` is an additive float (Tq, Tk) mask. ``q`` is multiplied by
    ``head_dim**-0.5`` before QKᵀ, the softmax is taken in float, then attention dropout. Set ``use_sdpa=False``
    (or :func:`set_sdpa`) to force the explicit path everywhere, e.g. to compare the two.
    """

    def __init__(self, embed_dim: int, num_heads: int, attn_dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.attn_dropout = attn_dropout
        self.use_sdpa = True
        # Parameter order (in_proj_weight, in_proj_bias, out_proj.*) is the state-dict order of §2.6.
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.xavier_uniform_(self.out_proj.weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def _proj(self, x: Tensor, start: int, end: int) -> Tensor:
        d = self.embed_dim
        bias = None if self.in_proj_bias is None else self.in_proj_bias[start * d : end * d]
        return F.linear(x, self.in_proj_weight[start * d : end * d], bias)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None = None,
        taps: TapRecorder | None = None,
    ) -> Tensor:
        """Attend ``query`` (Tq, B, D) to ``key``/``value`` (Tk, B, D) → (Tq, B, D).

        With ``taps`` wanting any of :data:`ATTENTION_TAPS` (unprefixed names relative to ``taps``) the explicit
        path runs and records them in (B, H, T, ·) layout.
        """
        tq, bsz, d = query.shape
        h, dh = self.num_heads, self.head_dim
        # One GEMM when tensors coincide (self-attention; k = v in eval), three otherwise.
        if query is key and key is value:
            q, k, v = self._proj(query, 0, 3).chunk(3, dim=-1)
        elif key is value:
            q = self._proj(query, 0, 1)
            k, v = self._proj(key, 1, 3).chunk(2, dim=-1)
        else:
            q, k, v = self._proj(query, 0, 1), self._proj(key, 1, 2), self._proj(value, 2, 3)

        def heads(x: Tensor) -> Tensor:  # (T, B, D) -> (B, H, T, dh)
            return x.unflatten(-1, (h, dh)).permute(1, 2, 0, 3)

        if attn_mask is not None and attn_mask.dtype != q.dtype:
            attn_mask = attn_mask.to(q.dtype)  # e.g. under autocast
        dropout = self.attn_dropout if self.training else 0.0
        explicit = not self.use_sdpa or (taps is not None and taps.wants_any(ATTENTION_TAPS))
        if not explicit:
            out = F.scaled_dot_product_attention(
                heads(q), heads(k), heads(v), attn_mask=attn_mask, dropout_p=dropout
            )
        else:
            qs = heads(q * self.scaling)
            kh, vh = heads(k), heads(v)
            scores = torch.matmul(qs, kh.transpose(-1, -2))
            if attn_mask is not None:
                scores = scores + attn_mask
            probs = F.softmax(scores.float(), dim=-1).type_as(scores)
            out = torch.matmul(F.dropout(probs, p=dropout, training=self.training), vh)
            if taps is not None:
                taps.put("scores", scores)
                taps.put("probs", probs)
                taps.put("q", qs)
                taps.put("k", kh)
                taps.put("v", vh)
                if taps.wants("v_scaled"):
                    taps.put("v_scaled", vh * self.scaling)
        return self.out_proj(out.permute(2, 0, 1, 3).reshape(tq, bsz, d))


def set_sdpa(module: nn.Module, enabled: bool) -> None:
    """Switch every :class:`MultiheadAttention` in ``module`` between SDPA and the explicit path."""
    for m in module.modules():
        if isinstance(m, MultiheadAttention):
            m.use_sdpa = enabled


# ------------------------------------------------------------------------------------------- encoder


class TransformerEncoderLayer(nn.Module):
    """Pre-LN MulT layer (§2.4): ``x += drop(MHA(LN0(x), LN0(x_k), LN0(x_v)))``; ``x += drop(FFN(LN1(x)))``.

    The same ``layer_norms[0]`` normalises query, key and value. FFN is d → 4d → d with ReLU.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        attn_dropout: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
        attn_mask: bool = False,
        time_bias: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dim, num_heads, attn_dropout=attn_dropout)
        self.fc1 = _xavier_linear(embed_dim, 4 * embed_dim)
        self.fc2 = _xavier_linear(4 * embed_dim, embed_dim)
        self.layer_norms = nn.ModuleList([nn.LayerNorm(embed_dim) for _ in range(2)])
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout
        self.attn_mask = attn_mask
        # Registered only when on, so that the official state dicts (which have none) load strictly.
        if time_bias:
            self.time_slope = nn.Parameter(torch.full((num_heads,), TIME_BIAS_INIT))
        else:
            self.register_parameter("time_slope", None)

    def _mask(self, tq: int, tk: int, like: Tensor) -> Tensor | None:
        mask = _cached_mask(tq, tk, like.device, like.dtype) if self.attn_mask else None
        if self.time_slope is None:
            return mask
        slope = self.time_slope.to(like.dtype)
        bias = (-TIME_BIAS_SCALE * slope)[:, None, None] * time_distance(tq, tk, like.device, like.dtype)
        return (bias if mask is None else bias + mask).unsqueeze(
            0
        )  # (1, H, Tq, Tk): broadcast over the batch

    def forward(
        self, x: Tensor, x_k: Tensor | None = None, x_v: Tensor | None = None, taps: TapRecorder | None = None
    ) -> Tensor:
        """``x`` (Tq, B, D); ``x_k``/``x_v`` (Tk, B, D) or None for self-attention."""
        ln0 = self.layer_norms[0]
        q_in = ln0(x)
        if x_k is None or x_v is None:
            k_in = v_in = q_in
        else:
            k_in = ln0(x_k)
            v_in = k_in if x_v is x_k else ln0(x_v)  # identical streams (eval): normalise once
        mask = self._mask(q_in.size(0), k_in.size(0), q_in)
        a = self.self_attn(q_in, k_in, v_in, attn_mask=mask, taps=taps)
        x = x + F.dropout(a, p=self.res_dropout, training=self.training)
        y = F.relu(self.fc1(self.layer_norms[1](x)))
        y = self.fc2(F.dropout(y, p=self.relu_dropout, training=self.training))
        return x + F.dropout(y, p=self.res_dropout, training=self.training)


class TransformerEncoder(nn.Module):
    """MulT/VocaLiST encoder (§2.4): ``sqrt(d)·x + PE``, dropout, ``layers`` pre-LN layers, final LayerNorm.

    Cross-modal when called with ``x_in_k``/``x_in_v``: the key and value streams are embedded separately and
    get independent embedding-dropout masks in training (the reference does so even when they are the same
    tensor). In eval, or with ``embed_dropout=0``, the same tensor passed as k and v is embedded once (exact).
    State-dict names and order match the reference (§2.6): ``version``, ``embed_positions._float_tensor``,
    ``layers.{i}.*``, ``layer_norm.*``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        layers: int,
        attn_dropout: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
        embed_dropout: float = 0.0,
        attn_mask: bool = False,
        time_bias: bool = False,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.embed_scale = math.sqrt(embed_dim)
        self.embed_dropout = embed_dropout
        self.embed_positions = SinusoidalPositionalEmbedding(embed_dim)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(
                embed_dim,
                num_heads,
                attn_dropout=attn_dropout,
                relu_dropout=relu_dropout,
                res_dropout=res_dropout,
                attn_mask=attn_mask,
                time_bias=time_bias,
            )
            for _ in range(layers)
        )
        # fairseq's version marker: unused, kept for strict loading of official checkpoints (§2.6).
        self.register_buffer("version", torch.tensor([2.0]))
        self.layer_norm = nn.LayerNorm(embed_dim)

    def tap_names(self) -> list[str]:
        """Tap names this encoder records (relative; a model prefixes them)."""
        return [f"{i}.{n}" for i in range(1, len(self.layers) + 1) for n in LAYER_TAPS] + ["emb"]

    def embed(self, x_in: Tensor) -> Tensor:
        """``sqrt(d)·x_in + PE(x_in)`` then embedding dropout (§2.4)."""
        x = self.embed_scale * x_in + self.embed_positions(x_in)
        return F.dropout(x, p=self.embed_dropout, training=self.training)

    def forward(
        self,
        x_in: Tensor,
        x_in_k: Tensor | None = None,
        x_in_v: Tensor | None = None,
        taps: TapRecorder | None = None,
    ) -> Tensor:
        """Query stream ``x_in`` (Tq, B, D), optional key/value streams (Tk, B, D) → (Tq, B, D)."""
        x = self.embed(x_in)
        x_k = x_v = None
        if x_in_k is not None and x_in_v is not None:
            x_k = self.embed(x_in_k)
            shared = x_in_v is x_in_k and not (self.training and self.embed_dropout > 0)
            x_v = x_k if shared else self.embed(x_in_v)
        for i, layer in enumerate(self.layers, 1):
            lt = None if taps is None else taps.child(f"{i}.")
            x = layer(x, x_k, x_v, taps=lt)
            if lt is not None:
                lt.put("out", x)
                if lt.wants("out_ln"):
                    lt.put("out_ln", self.layer_norm(x))
        x = self.layer_norm(x)
        if taps is not None:
            taps.put("emb", x)
        return x


def validate_taps(request: TapRequest, names: Sequence[str]) -> None:
    """Raise ``UsageError`` for patterns of ``request`` that match none of ``names`` (a model's tap names)."""
    bad = request.unmatched(names)
    if bad:
        raise UsageError(
            f"tap pattern(s) {', '.join(map(repr, bad))} match nothing; e.g. {', '.join(names[:6])}, ..."
        )


def recorder_for(taps: TapRequest | str | Iterable[str] | None, names: Sequence[str]) -> TapRecorder | None:
    """The recorder of a forward asked for ``taps`` (None: record nothing), its patterns checked against the
    model's tap ``names`` (:func:`validate_taps`)."""
    if taps is None:
        return None
    request = TapRequest.coerce(taps)
    validate_taps(request, names)
    return TapRecorder(request)
