"""The shared fairseq/MulT attention blocks (``avkd.models.attention``): the mask, the positional embedding and
its padding quirk, attention against torch's, the head layout (docs/reference/vocalist.md §2.4, §5.1), and avkd's
time bias."""

from __future__ import annotations

import torch

from avkd.models import flat_heads, unflat_heads
from avkd.models.attention import (
    MultiheadAttention,
    SinusoidalPositionalEmbedding,
    TapRecorder,
    TapRequest,
    TransformerEncoder,
    buffered_future_mask,
    future_mask,
)

H = 8


def test_va_mask_pattern() -> None:
    m = future_mask(5, 16)
    masked = torch.isinf(m)
    assert int(masked.sum()) == 10
    # video query i cannot see audio keys j >= 12 + i
    for i in range(5):
        assert masked[i].nonzero().flatten().tolist() == list(range(12 + i, 16))
    assert not torch.isinf(future_mask(16, 5)).any()
    assert torch.equal(torch.isinf(future_mask(4, 4)), torch.ones(4, 4).triu(1).bool())  # self: causal
    q, k = torch.zeros(5, 2, 8), torch.zeros(16, 2, 8)
    assert torch.equal(buffered_future_mask(q, k), m)


def test_positional_embedding_rule() -> None:
    d = 10
    tab = SinusoidalPositionalEmbedding.get_embedding(7, d)
    half = d // 2
    f = torch.exp(torch.arange(half, dtype=torch.float) * -(torch.log(torch.tensor(10000.0)) / (half - 1)))
    assert torch.equal(tab[0], torch.zeros(d))  # padding row
    assert torch.allclose(tab[3], torch.cat([torch.sin(3 * f), torch.cos(3 * f)]), atol=1e-6)  # concatenated
    assert torch.equal(SinusoidalPositionalEmbedding.get_embedding(4, 7)[:, -1], torch.zeros(4))  # odd d

    pe = SinusoidalPositionalEmbedding(d)
    x = torch.rand(6, 2, d) + 0.1
    x[1, 0, 0] = 0.0  # channel 0 exactly zero → treated as padding
    x[4, :, 0] = 0.0
    x[2, 1, 3] = 0.0  # other channels do not matter
    out = pe(x)
    for t in range(6):
        for b in range(2):
            expect = torch.zeros(d) if x[t, b, 0] == 0 else tab[t + 1]  # position = index + 1, not a count
            assert torch.equal(out[t, b], expect), (t, b)
    enc = TransformerEncoder(d, 2, 1).eval()
    assert torch.equal(enc.embed(x)[4], enc.embed_scale * x[4])  # no PE where ch0 == 0


def test_attention_matches_torch_multihead_attention() -> None:
    # Same packed [q; k; v] layout and scaling as nn.MultiheadAttention (§2.4).
    torch.manual_seed(0)
    ours = MultiheadAttention(24, 4).eval()
    ref = torch.nn.MultiheadAttention(24, 4).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.in_proj_weight)
        ref.in_proj_bias.copy_(torch.randn(72))
        ours.in_proj_bias.copy_(ref.in_proj_bias)
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(torch.randn(24))
        ours.out_proj.bias.copy_(ref.out_proj.bias)
        q, k, v = torch.randn(5, 3, 24), torch.randn(16, 3, 24), torch.randn(16, 3, 24)
        mask = future_mask(5, 16)
        expect, _ = ref(q, k, v, attn_mask=mask, need_weights=False)
        for sdpa in (True, False):
            ours.use_sdpa = sdpa
            assert torch.allclose(ours(q, k, v, attn_mask=mask), expect, atol=1e-5)


def test_head_layout_helpers() -> None:
    x = torch.arange(2 * H * 3).reshape(2, H, 3, 1)
    flat = flat_heads(x)
    assert torch.equal(flat[1 * H + 5], x[1, 5])  # row b·H + h (§5.1)
    assert torch.equal(unflat_heads(flat, H), x)


def test_time_bias_penalises_distance_in_window_time_as_computed_by_hand() -> None:
    """Queries at t = 1/4, 3/4 (2 tokens) and keys at t = 1/8, 3/8, 5/8, 7/8 (4 tokens) of the same window."""
    torch.manual_seed(0)
    enc = TransformerEncoder(8, 2, 1, time_bias=True).eval()
    plain = TransformerEncoder(8, 2, 1).eval()
    plain.load_state_dict({k: v for k, v in enc.state_dict().items() if "time_slope" not in k})
    with torch.no_grad():
        enc.layers[0].time_slope.copy_(torch.tensor([1.0, 0.5]))  # not the initial value: any slope
    q, kv = torch.randn(2, 3, 8), torch.randn(4, 3, 8)
    rec, ref = TapRecorder(TapRequest("1.scores")), TapRecorder(TapRequest("1.scores"))
    with torch.no_grad():
        biased = enc(q, kv, kv, taps=rec)
        plain(q, kv, kv, taps=ref)
    distance = torch.tensor([[1 / 8, 1 / 8, 3 / 8, 5 / 8], [5 / 8, 3 / 8, 1 / 8, 1 / 8]])
    expected = torch.stack([-10 * 1.0 * distance, -10 * 0.5 * distance])  # (H, Tq, Tk)
    torch.testing.assert_close(rec.store["1.scores"] - ref.store["1.scores"], expected.expand(3, -1, -1, -1))
    assert biased.shape == (2, 3, 8)
    assert "layers.0.time_slope" not in plain.state_dict()  # off: the official layouts are unchanged

    enc.train()
    enc(q, kv, kv).pow(2).mean().backward()
    assert enc.layers[0].time_slope.grad is not None and enc.layers[0].time_slope.grad.abs().sum() > 0
