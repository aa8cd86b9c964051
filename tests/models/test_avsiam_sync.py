"""``avsiam_sync``: AVSiam's encoder on VocaLiST's windows, scored by a scaled cosine (avkd/models/avsiam_sync.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avkd.core.errors import UsageError
from avkd.data.lrs2.layouts import layout_of
from avkd.evaluate.sync import score_clip, score_clip_naive, valid_candidates
from avkd.models import build_model
from avkd.models.avsiam_sync import TEMPERATURE, load_backbone
from tests.evaluate.sync_helpers import random_clip

torch.set_num_threads(1)


def tiny(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("avsiam_sync", patch_size=16)


def windows(b: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 15, 48, 96, generator=g), torch.rand(b, 1, 80, 16, generator=g) * 8 - 4


def test_shapes_unit_embeddings_and_the_score() -> None:
    model = tiny().eval()
    assert layout_of(model).name == "vocalist"
    video, audio = windows(3)
    with torch.no_grad():
        v, a = model.encode_video(video), model.encode_audio(audio)
        assert v.shape == a.shape == (1, 3, 96)
        torch.testing.assert_close(v.norm(dim=-1), torch.ones(1, 3))
        scores = model.fuse(v, a)
        assert scores.shape == (3,)
        # At initialisation the score is the cosine over AVSiam's τ (no shift), and the forward is the same.
        torch.testing.assert_close(scores, (v[0] * a[0]).sum(-1) / TEMPERATURE)
        torch.testing.assert_close(model(video, audio), scores)
        out = model(video, audio, taps=["video", "audio", "v.1.probs"])
    torch.testing.assert_close(out.taps["video"], v[0])
    assert out.taps["v.1.probs"].shape == (3, 4, 18, 18)  # the toy's 4 heads over 3×6 tokens of 16 pixels
    with pytest.raises(ValueError, match="tokens must be"):
        model.fuse(v[0], a[0])


def test_only_the_encoder_is_kept() -> None:
    model = tiny()
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.startswith(("backbone.head", "backbone.fusion", "backbone.decoder")) for n in names)
    enc = build_model("avsiam", size="toy", num_classes=1, fusion_depth=0, decoder=False, patch_size=16,
                      audio_size=(80, 16), video_size=(48, 96), video_channels=15)  # fmt: skip
    heads = sum(p.numel() for n, p in enc.named_parameters() if "head" in n)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in enc.parameters()) - heads + 2


def test_fast_path_equals_naive() -> None:
    model = tiny().train()
    for n in (22, 8):
        crops, mel = random_clip(n, seed=n)
        fast = score_clip(model, crops, mel, batch_size=29, encode_batch_size=4)
        naive = score_clip_naive(model, crops, mel)
        assert fast.shape == (n - 4, 31)
        assert np.array_equal(np.isnan(fast), ~valid_candidates(n - 4))
        np.testing.assert_allclose(fast, naive, atol=1e-4, rtol=0)
    assert model.training


def test_backbone_from_a_pretrained_avsiam() -> None:
    torch.manual_seed(3)
    pre = build_model(
        "avsiam", size="toy", num_classes=4, patch_size=16, audio_size=(32, 64), video_size=(32, 32)
    )
    model = tiny(seed=4)
    adapted = load_backbone(model, pre)
    assert adapted == ["pos_embed_a", "pos_embed_v", "patch_embed_v.proj.weight"]
    mine, theirs = model.backbone.state_dict(), pre.state_dict()
    for key in (
        "blocks.0.attn.qkv.weight",
        "blocks.5.norm2_v.bias",
        "norm_a.weight",
        "patch_embed_a.proj.weight",
    ):
        assert torch.equal(mine[key], theirs[key]), key
    # Five identical frames through the inflated kernel give the pre-trained kernel's response to one frame.
    frame = torch.rand(1, 3, 48, 96)
    with torch.no_grad():
        torch.testing.assert_close(
            model.backbone.patch_embed_v(frame.repeat(1, 5, 1, 1)),
            pre.patch_embed_v(frame),
            atol=1e-5,
            rtol=1e-5,
        )
    other = build_model("avsiam", size="toy", decoder=False)  # 8-pixel patches
    with pytest.raises(UsageError, match=r"pre\.pt: .* does not fit"):
        load_backbone(model, other, "pre.pt")
    with pytest.raises(UsageError, match="not a pre-trained avsiam"):
        load_backbone(model, tiny())
