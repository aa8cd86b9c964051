"""AVSiam over CMU-MOSEI feature maps (avkd/models/avsiam_emotion.py): maps, modes, taps, pre-trained weights."""

from __future__ import annotations

import math

import pytest
import torch

from avkd.core.errors import UsageError
from avkd.models import build_model
from avkd.models.avsiam_emotion import (
    AVSiamEmotion,
    draw_mode,
    init_from_avsiam,
    sequence_map,
)

#: 16-pixel patches on 40-step sequences: 15 audio and 9 vision tokens, a cheap forward.
TINY = {"size": "toy", "audio_len": 40, "vision_len": 40, "patch_size": 16}


def inputs(b: int = 3, t: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, 4, 300, generator=g),
        torch.randn(b, t, 74, generator=g) * 30,
        torch.randn(b, t, 35, generator=g),
    )


def model(seed: int = 0, **kwargs) -> AVSiamEmotion:
    torch.manual_seed(seed)
    return build_model("avsiam_emotion", **{**TINY, **kwargs})


def test_maps_pad_features_below_and_time_on_the_left_and_keep_the_last_frames() -> None:
    x = torch.arange(1, 2 * 5 * 3 + 1, dtype=torch.float32).reshape(2, 5, 3)  # (B, T=5, D=3)
    m = sequence_map(x, rows=8, cols=8, input_norm="none")
    assert m.shape == (2, 1, 8, 8)
    assert torch.equal(m[:, 0, :3, 3:], x.transpose(1, 2))  # features as rows, time as columns, at the right
    assert m[:, :, 3:].abs().sum() == 0 and m[:, :, :, :3].abs().sum() == 0  # zeros below and on the left
    cut = sequence_map(x, rows=4, cols=2, input_norm="none")
    assert torch.equal(cut[:, 0, :3], x[:, -2:].transpose(1, 2))  # the last two frames
    logged = sequence_map(torch.tensor([[[-99.0, 0.0, 1.0]]]), rows=3, cols=1)
    assert torch.allclose(logged.flatten(), torch.tensor([-math.log(100.0), 0.0, math.log(2.0)]))


def test_model_map_sizes_round_up_to_the_patch() -> None:
    m = model()
    assert m.cfg.audio_size == (80, 48) and m.video_size == (48, 48) and m.video_channels == 1
    assert m.num_tokens == (15, 9)
    _, audio, vision = inputs()
    assert m.audio_map(audio).shape == (3, 1, 80, 48) and m.vision_map(vision).shape == (3, 1, 48, 48)
    with pytest.raises(ValueError, match=r"vision must be \(B, T, 35\)"):
        m.vision_map(audio)
    with pytest.raises(ValueError, match="eval_mode"):
        model(eval_mode="x")


def test_video_only_eval_ignores_audio_and_text() -> None:
    m = model().eval()
    text, audio, vision = inputs()
    with torch.no_grad():
        out = m(text, audio, vision)
        assert torch.equal(out, m(None, torch.randn_like(audio), vision))
        assert torch.equal(out, m(None, None, vision))
        assert not torch.equal(out, m(None, audio, torch.randn_like(vision)))
        av = m(text, audio, vision, mode="av")
        assert not torch.equal(av, m(text, torch.randn_like(audio), vision, mode="av"))
    assert m.input_modalities == ("vision",) and m.out_layer is m.head_v
    with pytest.raises(ValueError, match="needs audio"):
        m(None, None, vision, mode="a")


def test_mixed_training_draws_each_head_at_the_released_rates_reproducibly() -> None:
    m = model().train()
    modes = [m.next_mode() for _ in range(800)]
    shares = {c: modes.count(c) / len(modes) for c in ("av", "a", "v")}
    assert (
        abs(shares["av"] - 0.5) < 0.06 and abs(shares["a"] - 0.25) < 0.05 and abs(shares["v"] - 0.25) < 0.05
    )
    assert int(m.mode_draws[1]) == 800
    # The draw is the state in the buffer: a copy resumed from it continues the same sequence.
    other = model(seed=1).train()
    other.load_state_dict(m.state_dict())
    assert [m.next_mode() for _ in range(20)] == [other.next_mode() for _ in range(20)]
    # Eval and a fixed training mode draw nothing.
    fixed = model(train_mode="v").train()
    assert {fixed.next_mode() for _ in range(10)} == {"v"} and int(fixed.mode_draws[1]) == 0
    m.eval()
    assert m.next_mode() == "v"


def test_training_forward_uses_the_drawn_head() -> None:
    m = model().train()
    text, audio, vision = inputs()
    seed = int(m.mode_draws[0])
    for step in range(6):
        logits = m(text, audio, vision)
        assert m.last_mode == draw_mode(seed, step) and logits.shape == (3, 7)
    logits.sum().backward()
    used = {"av": "head.weight", "a": "head_a.weight", "v": "head_v.weight"}[m.last_mode]
    assert m.get_parameter(used).grad is not None


@pytest.mark.parametrize(("mode", "width"), [("v", 96), ("a", 96), ("av", 192)])
def test_hidden_is_the_head_linear_input(mode: str, width: int) -> None:
    m = model(eval_mode=mode).eval()
    text, audio, vision = inputs()
    with torch.no_grad():
        out = m(text, audio, vision, taps=["hidden", "feat_v" if mode != "a" else "feat_a"])
    assert out.taps["hidden"].shape == (3, width) and m.out_layer.in_features == width
    torch.testing.assert_close(m.out_layer(out.taps["hidden"]), out.logits)
    assert "hidden" in m.tap_names() and "a_with_v.1.scores" not in m.tap_names()


def test_init_from_a_clips_avsiam_copies_the_shared_encoder_and_adapts_grids_and_channels() -> None:
    torch.manual_seed(3)
    source = build_model("avsiam", size="toy", num_classes=5)  # 3-channel 32×32 frames, 32×64 fbanks
    m = model(patch_size=8)  # the source's patch: 80 × 40 audio, 40 × 40 vision maps
    before_head = m.head_v.weight.detach().clone()
    adapted = init_from_avsiam(m, source)
    assert set(adapted) == {"pos_embed_a", "pos_embed_v", "patch_embed_v.proj.weight"}
    for key in (
        "blocks.0.attn.qkv.weight",
        "blocks.5.mlp.fc2.bias",
        "fusion.1.norm1.weight",
        "norm_v.weight",
    ):
        assert torch.equal(m.state_dict()[key], source.state_dict()[key]), key
    assert torch.equal(m.patch_embed_a.proj.weight, source.patch_embed_a.proj.weight)
    assert torch.allclose(
        m.patch_embed_v.proj.weight, source.patch_embed_v.proj.weight.mean(dim=1, keepdim=True)
    )
    assert (
        m.pos_embed_a.shape == (1, 50, 96)
        and m.pos_embed_v.shape == (1, 25, 96)
        and torch.equal(m.head_v.weight, before_head)
    )
    with pytest.raises(UsageError, match=r"pre: .*fusion_depth"):
        init_from_avsiam(model(patch_size=8, fusion_depth=1), source, where="pre")
    with pytest.raises(UsageError, match="patch_size"):
        init_from_avsiam(model(), source)


def test_pretraining_items_feed_the_avsiam_objectives() -> None:
    from avkd.tasks.avsiam.inputs import MoseiMaps

    m = model(decoder=True)
    _, audio, vision = inputs(b=2)
    samples = [(None, audio[i], vision[i], torch.tensor(y), i) for i, y in enumerate((-2.6, 0.4))]
    items = list(MoseiMaps(samples, m, seed=None))  # the MOSEI adapter of avkd pretrain
    assert [tuple(a.shape) for a, _, _ in items] == [(1, 80, 48)] * 2 and items[0][1].shape == (1, 48, 48)
    assert [int(y) for _, _, y in items] == [0, 3]
    a, v = torch.stack([i[0] for i in items]), torch.stack([i[1] for i in items])
    assert torch.equal(a, m.audio_map(audio))
    rec = m.reconstruct(a, v, generator=torch.Generator().manual_seed(0))
    assert rec.pred_v.shape == (2, 9, 256) and rec.pred_a.shape == (2, 15, 256)
    f_a, f_v = m.multi_ratio_features(a, v, generator=torch.Generator().manual_seed(0))
    assert f_a.shape == f_v.shape == (2, 96)
