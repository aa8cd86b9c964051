"""AVSiam (avkd/models/avsiam.py): parameter counts against the formula, weight sharing, the modes and features,
the multi-ratio and reconstruction passes, and initialisation from a timm-layout ViT state dict."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from avkd.core.errors import UsageError
from avkd.models import TapRequest, build_model
from avkd.models.avsiam import SIZES, AVSiam, AVSiamSize, load_vit_checkpoint, patchify

NUM_CLASSES = 5
TOY = SIZES["toy"]


def toy(seed: int = 0, **kwargs) -> AVSiam:
    torch.manual_seed(seed)
    return build_model("avsiam", size="toy", num_classes=NUM_CLASSES, **kwargs).eval()


def inputs(b: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    f, t = TOY.audio_size
    return torch.randn(b, 1, f, t, generator=g), torch.randn(
        b, 3, TOY.image_size, TOY.image_size, generator=g
    )


# ------------------------------------------------------------------------------------------ parameters


def linear(i: int, o: int) -> int:
    return i * o + o


def block(d: int, r: float, norms: int) -> int:
    """qkv + proj + fc1 + fc2, and ``norms`` LayerNorms of 2d each (4 in a shared block: norm1/norm2 per a/v)."""
    h = int(d * r)
    return linear(d, 3 * d) + linear(d, d) + linear(d, h) + linear(h, d) + norms * 2 * d


def hand_count(s: AVSiamSize, num_classes: int, fusion: int = 2) -> dict[str, int]:
    d, p, dd = s.embed_dim, s.patch_size, s.decoder_dim
    n_a = (s.audio_size[0] // p) * (s.audio_size[1] // p)
    n_v = (s.image_size // p) ** 2
    encoder = (
        (3 * p * p * d + d)  # RGB patch embedding
        + (p * p * d + d)  # audio patch embedding (1 channel)
        + (n_a + n_v) * d  # positions, no CLS
        + s.depth * block(d, s.mlp_ratio, norms=4)
        + 2 * 2 * d  # final norm per modality
    )
    fusion_blocks = fusion * block(d, s.mlp_ratio, norms=2)
    heads = (2 * 2 * d + linear(2 * d, num_classes)) + 2 * (2 * d + linear(d, num_classes))
    decoder = (
        linear(d, dd)
        + dd  # mask token
        + 2 * dd  # modality tokens
        + (n_a + n_v) * dd  # decoder positions
        + s.decoder_depth * block(dd, s.mlp_ratio, norms=2)
        + 2 * dd  # decoder norm
        + linear(dd, p * p)
        + linear(dd, 3 * p * p)
    )
    return {"encoder": encoder, "fusion": fusion_blocks, "heads": heads, "decoder": decoder}


def counted(model: torch.nn.Module) -> dict[str, int]:
    out = {"encoder": 0, "fusion": 0, "heads": 0, "decoder": 0}
    for name, p in model.named_parameters():
        part = name.split(".")[0]
        key = (
            "decoder"
            if part == "decoder"
            else "heads"
            if "head" in part
            else "fusion"
            if part == "fusion"
            else "encoder"
        )
        out[key] += p.numel()
    return out


def test_toy_parameter_count_is_the_formula_and_about_a_million() -> None:
    model = toy()
    assert counted(model) == hand_count(TOY, NUM_CLASSES)
    assert 0.8e6 < sum(p.numel() for p in model.parameters()) < 1.3e6


def test_base_size_counts_on_the_meta_device() -> None:
    """ViT-B: encoder + 2 fusion blocks ≈ 100M (the paper's "100M"; 100,601,856 by hand,
    docs/reference/avsiam-mfh-syncnet.md §1.2)."""
    with torch.device("meta"):
        model = build_model("avsiam", size="b")
    assert next(model.parameters()).is_meta
    got = counted(model)
    assert got == hand_count(SIZES["b"], 527)
    assert got["encoder"] + got["fusion"] == 100_601_856
    # The released decoder: 8 blocks of 512 with 16 heads (§1.4); the seed's 6 is a size option.
    assert SIZES["b"].decoder_depth == 8 and SIZES["b"].decoder_heads == 16 and SIZES["b"].decoder_dim == 512


def test_decoder_depth_is_an_option_and_the_decoder_can_be_left_out() -> None:
    with torch.device("meta"):
        six = build_model("avsiam", size="toy", decoder_depth=6)
        none = build_model("avsiam", size="toy", decoder=False)
    assert counted(six)["decoder"] == hand_count(replace(TOY, decoder_depth=6), 527)["decoder"]
    assert counted(six)["decoder"] - counted(toy())["decoder"] == 4 * block(TOY.decoder_dim, 4.0, norms=2)
    assert counted(none)["decoder"] == 0 and not any("decoder" in n for n, _ in none.named_parameters())
    assert counted(none)["encoder"] == hand_count(TOY, 527)["encoder"]


@pytest.mark.parametrize(
    ("size", "dims"), [("s", (384, 12, 6)), ("l", (1024, 24, 16)), ("h", (1280, 32, 16))]
)
def test_other_sizes_are_the_vit_shapes(size: str, dims: tuple[int, int, int]) -> None:
    s = SIZES[size]
    assert (s.embed_dim, s.depth, s.num_heads) == dims
    assert s.image_size % s.patch_size == 0 and s.audio_size[0] % s.patch_size == 0
    assert s.audio_size[1] % s.patch_size == 0


@pytest.mark.parametrize(("size", "paper"), [("l", 332e6), ("h", 672e6)])
def test_large_and_huge_without_decoder_match_the_paper_within_one_percent(size: str, paper: float) -> None:
    """The paper's 332M / 672M (Table 1) against our count of encoder + fusion + heads (527 classes)."""
    c = hand_count(SIZES[size], 527)
    assert abs(c["encoder"] + c["fusion"] + c["heads"] - paper) / paper < 0.01


def test_names_of_heads_and_decoder() -> None:
    names = [n for n, _ in toy().named_parameters()]
    assert {n.split(".")[0] for n in names if "head" in n} == {
        "head", "head_norm", "head_a", "head_a_norm", "head_v", "head_v_norm",
    }  # fmt: skip
    assert any(n.startswith("decoder.") for n in names)
    # No separate audio copy of the blocks and no CLS token: one set of attention/MLP weights per block.
    assert sum(n.endswith("attn.qkv.weight") for n in names) == TOY.depth + 2 + TOY.decoder_depth
    assert not any("cls" in n for n in names)


def test_unknown_size_and_untileable_inputs_are_refused() -> None:
    with pytest.raises(UsageError, match="bad arguments"):
        build_model("avsiam", size="toy", width=3)
    with pytest.raises(ValueError, match="unknown AVSiam size 'xl'"):
        AVSiam(size="xl")


# ---------------------------------------------------------------------------------------------- forward


def test_modes_read_only_their_modalities() -> None:
    model = toy()
    a, v = inputs()
    a2, v2 = inputs(seed=1)
    with torch.no_grad():
        out_a, out_v, out_av = model(a, v, mode="a"), model(a, v, mode="v"), model(a, v, mode="av")
        assert out_a.shape == out_v.shape == out_av.shape == (3, NUM_CLASSES)
        assert torch.equal(model(a, None, mode="a"), out_a)
        assert torch.equal(model(a, v2, mode="a"), out_a)
        assert torch.equal(model(None, v, mode="v"), out_v)
        assert not torch.equal(model(a2, v, mode="av"), out_av)
        assert not torch.equal(model(a, v2, mode="av"), out_av)
    with pytest.raises(ValueError, match="needs video"):
        model(a, None, mode="av")
    with pytest.raises(ValueError, match="mode must be"):
        model(a, v, mode="audio")
    with pytest.raises(ValueError, match="audio must be"):
        model(a[:, :, :16], v)


def test_encode_features_are_the_mean_of_the_normalised_tokens_and_feed_the_heads() -> None:
    model = toy()
    a, v = inputs()
    with torch.no_grad():
        fa, fv = model.encode_audio(a), model.encode_video(v)
        out = model(a, v, taps=TapRequest("tokens_a", "feat_a", "feat_v", "pooled"))
        assert fa.shape == fv.shape == (3, TOY.embed_dim)
        torch.testing.assert_close(out.taps["feat_a"], fa)
        torch.testing.assert_close(out.taps["feat_v"], fv)
        torch.testing.assert_close(out.taps["tokens_a"].mean(dim=1), fa)
        torch.testing.assert_close(model(a, v, mode="a"), model.head_a(model.head_a_norm(fa)))
        torch.testing.assert_close(model(a, v, mode="v"), model.head_v(model.head_v_norm(fv)))
        torch.testing.assert_close(model.head(model.head_norm(out.taps["pooled"])), out.logits)
        # The AV head reads the fused tokens, not the unimodal features.
        assert not torch.allclose(out.taps["pooled"], torch.cat([fa, fv], dim=-1))


def test_weights_are_shared_and_layernorms_are_per_modality() -> None:
    model = toy().train()
    a, _ = inputs()
    model.encode_audio(a).pow(2).sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert "blocks.0.attn.qkv.weight" in grads and "blocks.5.mlp.fc2.weight" in grads
    assert (
        "blocks.0.norm1_a.weight" in grads
        and "norm_a.weight" in grads
        and "patch_embed_a.proj.weight" in grads
    )
    assert not any(k.startswith(("patch_embed_v", "pos_embed_v", "norm_v", "fusion", "head")) for k in grads)
    assert not any("norm1_v" in k or "norm2_v" in k for k in grads)


def test_the_attention_tap_path_gives_the_sdpa_numbers() -> None:
    model = toy()
    a, v = inputs()
    with torch.no_grad():
        plain = model(a, v)
        out = model(a, v, taps="*")
    torch.testing.assert_close(out.logits, plain, atol=1e-5, rtol=1e-5)
    probs = out.taps["v.1.probs"]
    assert probs.shape == (3, TOY.num_heads, 16, 16)
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, TOY.num_heads, 16))
    assert out.taps["fusion.2.out"].shape == (3, 32 + 16, TOY.embed_dim)


# ------------------------------------------------------------------------------------------ pre-training


def test_multi_ratio_features_at_ratio_zero_are_the_unmasked_features_in_batch_order() -> None:
    model = toy()
    a, v = inputs(b=7)
    with torch.no_grad():
        fa, fv = model.multi_ratio_features(a, v, ratios=(0.0,), generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(fa, model.encode_audio(a), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fv, model.encode_video(v), atol=1e-5, rtol=1e-5)


def test_multi_ratio_features_mask_some_samples_and_carry_gradients() -> None:
    model = toy().train()
    a, v = inputs(b=6)
    fa, fv = model.multi_ratio_features(a, v, ratios="released", generator=torch.Generator().manual_seed(0))
    assert fa.shape == fv.shape == (6, TOY.embed_dim)
    with torch.no_grad():
        ref = model.encode_video(v)
    same = torch.isclose(fv, ref, atol=1e-5, rtol=1e-5).all(dim=1)
    assert 1 <= int(same.sum()) <= 2  # ratio 0 goes to one or two of 6 samples (assigned evenly over 5)
    (fa.sum() + fv.sum()).backward()
    assert model.blocks[0].attn.qkv.weight.grad is not None
    assert model.decoder.embed.weight.grad is None  # the contrastive pass does not use the decoder


def test_reconstruct_masks_three_quarters_and_predicts_raw_patches() -> None:
    model = toy().train()
    a, v = inputs(b=2)
    rec = model.reconstruct(a, v, generator=torch.Generator().manual_seed(0))
    p = TOY.patch_size
    assert rec.pred_a.shape == rec.target_a.shape == (2, 32, p * p)
    assert rec.pred_v.shape == rec.target_v.shape == (2, 16, 3 * p * p)
    torch.testing.assert_close(rec.target_v, patchify(v, p))
    assert rec.mask_a.sum(dim=1).tolist() == [32 - 8, 32 - 8]  # int(32·0.25) = 8 kept
    assert rec.mask_v.sum(dim=1).tolist() == [16 - 4, 16 - 4]
    (rec.pred_a.pow(2).mean() + rec.pred_v.pow(2).mean()).backward()
    grads = {n for n, q in model.named_parameters() if q.grad is not None and q.grad.abs().sum() > 0}
    # The released quirk fixed: audio reconstruction trains the shared blocks through the audio LayerNorms.
    assert {"blocks.0.attn.qkv.weight", "blocks.0.norm1_a.weight", "fusion.1.mlp.fc1.weight"} <= grads
    assert {"decoder.pred_a.weight", "decoder.mask_token", "decoder.pos_v"} <= grads
    assert not any(n.startswith("head") for n in grads)


def test_reconstruct_needs_the_decoder() -> None:
    with pytest.raises(UsageError, match="decoder=False"):
        toy(decoder=False).reconstruct(*inputs())


def test_patchify_is_row_major_with_channels_last_in_each_patch() -> None:
    x = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(1, 2, 4, 6)  # C=2, H=4, W=6, p=2
    out = patchify(x, 2)
    assert out.shape == (1, 6, 8)
    # Patch 1 is row 0, column 1 (pixels rows 0-1, columns 2-3); values ordered (row, column, channel).
    expect = [x[0, c, r, 2 + q].item() for r in range(2) for q in range(2) for c in range(2)]
    assert out[0, 1].tolist() == expect


# ------------------------------------------------------------------------------------------ ViT weights


def vit_state_dict(d: int, depth: int, p: int, grid: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict in timm's ViT layout (names as timm's VisionTransformer, with a CLS token, the
    in21k representation layer and a classifier that AVSiam has no place for)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    sd = {
        "cls_token": r(1, 1, d),
        "pos_embed": r(1, 1 + grid * grid, d),
        "patch_embed.proj.weight": r(d, 3, p, p),
        "patch_embed.proj.bias": r(d),
        "norm.weight": r(d),
        "norm.bias": r(d),
        "pre_logits.fc.weight": r(d, d),
        "pre_logits.fc.bias": r(d),
        "head.weight": r(11, d),
        "head.bias": r(11),
    }
    for i in range(depth):
        for name, shape in {
            "norm1": (d,), "attn.qkv": (3 * d, d), "attn.proj": (d, d),
            "norm2": (d,), "mlp.fc1": (4 * d, d), "mlp.fc2": (d, 4 * d),
        }.items():  # fmt: skip
            sd[f"blocks.{i}.{name}.weight"] = r(*shape)
            sd[f"blocks.{i}.{name}.bias"] = r(shape[0])
    return sd


def test_vit_checkpoint_initialises_the_encoder_and_fusion(tmp_path: Path) -> None:
    d, depth, p = TOY.embed_dim, TOY.depth, TOY.patch_size
    sd = vit_state_dict(d, depth, p, grid=4)  # the toy's video grid is 4 × 4: positions copied
    path = tmp_path / "vit.pth"
    torch.save({"model": sd}, path)  # nested, as training checkpoints often are
    model = toy()
    decoder_before = model.decoder.embed.weight.clone()
    used = load_vit_checkpoint(model, path)
    assert "cls_token" not in used and "head.weight" not in used and "blocks.0.attn.qkv.weight" in used
    assert torch.equal(model.patch_embed_v.proj.weight, sd["patch_embed.proj.weight"])
    torch.testing.assert_close(
        model.patch_embed_a.proj.weight, sd["patch_embed.proj.weight"].mean(1, keepdim=True)
    )
    assert torch.equal(model.patch_embed_a.proj.bias, sd["patch_embed.proj.bias"])
    assert torch.equal(model.pos_embed_v[0], sd["pos_embed"][0, 1:])
    # Audio positions: the released 1-D nearest interpolation of the 16 flattened positions to 32 tokens.
    flat = sd["pos_embed"][0, 1:]
    assert torch.equal(model.pos_embed_a[0], flat[[i * 16 // 32 for i in range(32)]])
    for i in range(depth):
        blk = model.blocks[i]
        assert torch.equal(blk.attn.qkv.weight, sd[f"blocks.{i}.attn.qkv.weight"])
        assert torch.equal(blk.mlp.fc2.bias, sd[f"blocks.{i}.mlp.fc2.bias"])
        for norm in (blk.norm1_a, blk.norm1_v):
            assert torch.equal(norm.weight, sd[f"blocks.{i}.norm1.weight"])
        for norm in (blk.norm2_a, blk.norm2_v):
            assert torch.equal(norm.bias, sd[f"blocks.{i}.norm2.bias"])
    assert torch.equal(model.norm_a.weight, sd["norm.weight"]) and torch.equal(
        model.norm_v.bias, sd["norm.bias"]
    )
    for j, src in enumerate((depth - 2, depth - 1)):  # the last two blocks (paper; released fine-tuning)
        assert torch.equal(model.fusion[j].attn.proj.weight, sd[f"blocks.{src}.attn.proj.weight"])
        assert torch.equal(model.fusion[j].norm1.weight, sd[f"blocks.{src}.norm1.weight"])
    assert torch.equal(model.decoder.embed.weight, decoder_before)
    with torch.no_grad():
        assert torch.isfinite(model(*inputs())).all()


def test_vit_positions_on_another_grid_are_resampled(tmp_path: Path) -> None:
    sd = vit_state_dict(TOY.embed_dim, TOY.depth, TOY.patch_size, grid=7)
    const = torch.randn(TOY.embed_dim)
    sd["pos_embed"] = torch.cat([torch.zeros(1, 1, TOY.embed_dim), const.expand(1, 49, -1)], dim=1)
    torch.save(sd, tmp_path / "vit.pth")
    model = toy()
    load_vit_checkpoint(model, tmp_path / "vit.pth")
    # Bicubic resampling of a constant grid (7×7 → 4×4) is that constant; so is the audio interpolation.
    torch.testing.assert_close(model.pos_embed_v[0], const.expand(16, -1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.pos_embed_a[0], const.expand(32, -1))


def test_vit_checkpoint_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    model = toy()
    wide = vit_state_dict(TOY.embed_dim * 2, TOY.depth, TOY.patch_size, grid=4)
    torch.save(wide, tmp_path / "wide.pth")
    with pytest.raises(UsageError, match=r"wide\.pth: patch_embed\.proj\.weight is"):
        load_vit_checkpoint(model, tmp_path / "wide.pth")
    shallow = vit_state_dict(TOY.embed_dim, TOY.depth - 1, TOY.patch_size, grid=4)
    torch.save(shallow, tmp_path / "shallow.pth")
    with pytest.raises(UsageError, match="5 blocks, this AVSiam"):
        load_vit_checkpoint(model, tmp_path / "shallow.pth")
    scaled = vit_state_dict(TOY.embed_dim, TOY.depth, TOY.patch_size, grid=4)
    scaled["blocks.0.ls1.gamma"] = torch.ones(TOY.embed_dim)  # layer scale: not a plain ViT
    torch.save(scaled, tmp_path / "ls.pth")
    before = model.blocks[0].attn.qkv.weight.clone()
    with pytest.raises(
        UsageError, match=r"ls\.pth: keys this ViT mapping does not know: blocks\.0\.ls1\.gamma"
    ):
        load_vit_checkpoint(model, tmp_path / "ls.pth")
    assert torch.equal(model.blocks[0].attn.qkv.weight, before)  # nothing half-loaded
    with pytest.raises(UsageError, match="no such ViT checkpoint"):
        load_vit_checkpoint(model, tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError, match=r"junk\.pth: cannot read it"):
        load_vit_checkpoint(model, tmp_path / "junk.pth")


def test_vit_checkpoint_mapping_reaches_every_encoder_parameter(tmp_path: Path) -> None:
    """Every parameter outside the heads and decoder changes when a checkpoint is loaded (none is forgotten)."""
    model = toy()
    before = {n: q.clone() for n, q in model.named_parameters()}
    torch.save(vit_state_dict(TOY.embed_dim, TOY.depth, TOY.patch_size, grid=4, seed=5), tmp_path / "v.pth")
    load_vit_checkpoint(model, tmp_path / "v.pth")
    unchanged = {n for n, q in model.named_parameters() if torch.equal(q, before[n])}
    assert {n.split(".")[0] for n in unchanged} <= {
        "decoder",
        "head",
        "head_norm",
        "head_a",
        "head_a_norm",
        "head_v",
        "head_v_norm",
    }
    assert F.mse_loss(model.blocks[0].attn.qkv.weight, before["blocks.0.attn.qkv.weight"]) > 0


def reference_vit_features(sd: dict[str, torch.Tensor], x: torch.Tensor, heads: int, p: int) -> torch.Tensor:
    """A plain ViT written out from the timm state dict (pre-LN blocks, LayerNorm ε 1e-6, exact GELU), without
    the CLS token, mean-pooled after the final norm: what AVSiam's video encoder computes after loading it."""
    t = (
        F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=p)
        .flatten(2)
        .transpose(1, 2)
    )
    t = t + sd["pos_embed"][:, 1:]
    b, n, d = t.shape
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    for i in range(depth):
        w = {
            name[len(f"blocks.{i}.") :]: v for name, v in sd.items() if name.startswith(f"blocks.{i}.")
        }.__getitem__
        h = F.layer_norm(t, (d,), w("norm1.weight"), w("norm1.bias"), eps=1e-6)
        q, k, v = (
            (h @ w("attn.qkv.weight").t() + w("attn.qkv.bias")).reshape(b, n, 3, heads, d // heads).unbind(2)
        )
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # (B, H, N, d_h)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), dim=-1) @ v
        t = t + att.transpose(1, 2).reshape(b, n, d) @ w("attn.proj.weight").t() + w("attn.proj.bias")
        h = F.layer_norm(t, (d,), w("norm2.weight"), w("norm2.bias"), eps=1e-6)
        h = F.gelu(h @ w("mlp.fc1.weight").t() + w("mlp.fc1.bias"))
        t = t + h @ w("mlp.fc2.weight").t() + w("mlp.fc2.bias")
    return F.layer_norm(t, (d,), sd["norm.weight"], sd["norm.bias"], eps=1e-6).mean(dim=1)


def test_loaded_video_encoder_is_the_vit_without_its_cls_token(tmp_path: Path) -> None:
    sd = {
        k: v * 0.1
        for k, v in vit_state_dict(TOY.embed_dim, TOY.depth, TOY.patch_size, grid=4, seed=2).items()
    }
    for i in range(
        TOY.depth
    ):  # LayerNorm gains near 1, as in a trained ViT (random ones blow the residual up)
        for part in ("norm1", "norm2"):
            sd[f"blocks.{i}.{part}.weight"] = 1 + sd[f"blocks.{i}.{part}.weight"]
    torch.save(sd, tmp_path / "vit.pth")
    model = toy()
    load_vit_checkpoint(model, tmp_path / "vit.pth")
    _, video = inputs()
    with torch.no_grad():
        expect = reference_vit_features(sd, video, TOY.num_heads, TOY.patch_size)
        torch.testing.assert_close(model.encode_video(video), expect, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------ other inputs


def test_other_input_grids_and_channels_run_every_pass() -> None:
    # The adapters' inputs: a 1-channel 16 × 40 feature map as "video", a 24 × 16 spectrogram, 8-pixel patches.
    model = toy(audio_size=(24, 16), video_size=(16, 40), video_channels=1)
    assert model.grid_a == (3, 2) and model.grid_v == (2, 5) and model.num_tokens == (6, 10)
    g = torch.Generator().manual_seed(0)
    a, v = torch.randn(4, 1, 24, 16, generator=g), torch.randn(4, 1, 16, 40, generator=g)
    for mode in ("av", "a", "v"):
        assert model(a, v, mode=mode).shape == (4, NUM_CLASSES)
    fa, fv = model.multi_ratio_features(a, v, generator=torch.Generator().manual_seed(1))
    assert fa.shape == fv.shape == (4, TOY.embed_dim)
    rec = model.reconstruct(a, v, generator=torch.Generator().manual_seed(2))
    assert rec.pred_v.shape == rec.target_v.shape == (4, 10, TOY.patch_size**2)  # one channel per patch
    torch.testing.assert_close(rec.target_v, patchify(v, TOY.patch_size))
    with pytest.raises(ValueError, match=r"video must be \(B, 1, 16, 40\)"):
        model.encode_video(torch.zeros(1, 3, 32, 32))


def test_patch_size_override_and_untileable_sides_are_checked() -> None:
    model = toy(patch_size=4, audio_size=(8, 12), video_size=(8, 8))
    assert model.num_tokens == (2 * 3, 2 * 2)
    with pytest.raises(ValueError, match="do not tile"):
        toy(audio_size=(20, 16))  # 20 is not a multiple of the toy's 8-pixel patches
    with pytest.raises(ValueError, match="two positive sides"):
        toy(video_size=(16,))


def test_vit_checkpoint_into_one_channel_video_uses_the_mean_kernel(tmp_path: Path) -> None:
    d, p = TOY.embed_dim, TOY.patch_size
    sd = vit_state_dict(d, TOY.depth, p, grid=4)
    torch.save(sd, tmp_path / "vit.pth")
    model = toy(video_channels=1, video_size=(16, 24))
    load_vit_checkpoint(model, tmp_path / "vit.pth")
    mean = sd["patch_embed.proj.weight"].mean(dim=1, keepdim=True)
    torch.testing.assert_close(model.patch_embed_v.proj.weight, mean)
    torch.testing.assert_close(model.patch_embed_a.proj.weight, mean)
    assert model.pos_embed_v.shape == (1, 2 * 3, d)  # the 4 × 4 grid resampled to 2 × 3


def test_without_heads_the_encoder_works_and_forward_is_refused() -> None:
    model = toy(heads=False, decoder=False)
    assert not any(n.startswith("head") for n, _ in model.named_parameters())
    full = toy(decoder=False)
    heads = sum(q.numel() for n, q in full.named_parameters() if n.startswith("head"))
    assert sum(q.numel() for q in full.parameters()) - sum(q.numel() for q in model.parameters()) == heads
    a, v = inputs()
    assert model.encode_audio(a).shape == (3, TOY.embed_dim)
    with pytest.raises(UsageError, match="heads=False"):
        model(a, v)
