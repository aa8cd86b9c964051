"""VocaLiST / MTDVocaLiST: state-dict compatibility, parameter counts, taps, split forward, training step.

Numbers and names come from docs/reference/vocalist.md §2 and §5.1. Parity with the official code itself is
checked outside the test suite (it cannot be vendored: non-commercial / no licence).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from avkd.core.errors import UsageError
from avkd.models import Tapped, TapRequest, build_model, flat_heads, list_models, registry
from avkd.models.attention import (
    future_mask,
    set_sdpa,
)
from avkd.models.vocalist import STUDENT_CHANNELS, TEACHER_CHANNELS, SyncTransformer, default_channels

T_V, T_A, H = 5, 16, 8


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def teacher() -> SyncTransformer:
    torch.manual_seed(0)
    return build_model("vocalist", width=512).eval()


@pytest.fixture(scope="module")
def student() -> SyncTransformer:
    torch.manual_seed(1)
    m = build_model("vocalist", width=200).eval()
    # Non-trivial eval-mode BN (as after training) so the checks do not run through identity norms.
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d | torch.nn.BatchNorm3d):
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    return m


def batch(b: int, seed: int = 0, t_v: int = T_V) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(b, 3 * t_v, 48, 96, generator=g)
    mel = torch.rand(b, 1, 80, 16 * t_v // 5, generator=g) * 8 - 4  # the [-4, 4] mel range (§1.4)
    return video, mel


# ---------------------------------------------------------------------------------------------- registry


def test_registry_lists_and_builds() -> None:
    assert {"vocalist", "mtdvocalist"} <= set(list_models())
    assert list_models("voca*") == ["vocalist", "vocalist_lite"]
    assert build_model("mtdvocalist").width == 200


def test_registry_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match=r"unknown model 'vocalst'; known: .*vocalist"):
        build_model("vocalst")
    with pytest.raises(UsageError, match="bad arguments for model 'vocalist'"):
        build_model("vocalist", widht=200)
    monkeypatch.setattr(registry.MODELS, "_entries", dict(registry.MODELS._entries))

    @registry.register_model(name="tiny_test_model")
    def tiny() -> torch.nn.Module:
        return torch.nn.Linear(1, 1)

    assert isinstance(build_model("tiny_test_model"), torch.nn.Linear)
    with pytest.raises(ValueError, match="already registered"):
        registry.register_model(lambda: torch.nn.Linear(1, 1), name="vocalist")


# ------------------------------------------------------------------------------------ state dict (§2.6)

CONV_KEYS = [
    "conv_block.0.weight",
    "conv_block.0.bias",
    "conv_block.1.weight",
    "conv_block.1.bias",
    "conv_block.1.running_mean",
    "conv_block.1.running_var",
    "conv_block.1.num_batches_tracked",
]
LAYER_KEYS = [
    "self_attn.in_proj_weight",
    "self_attn.in_proj_bias",
    "self_attn.out_proj.weight",
    "self_attn.out_proj.bias",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
    "layer_norms.0.weight",
    "layer_norms.0.bias",
    "layer_norms.1.weight",
    "layer_norms.1.bias",
]


def reference_keys() -> list[str]:
    """The §2.6 key list, built from the sheet's pattern and order."""
    keys = [f"vid_prenet.{i}.{k}" for i in range(17) for k in CONV_KEYS]
    keys += [f"aud_prenet.{i}.{k}" for i in range(14) for k in CONV_KEYS]
    for t in ("av", "va", "mem"):
        keys += [f"{t}_transformer.version", f"{t}_transformer.embed_positions._float_tensor"]
        keys += [f"{t}_transformer.layers.{i}.{k}" for i in range(4) for k in LAYER_KEYS]
        keys += [f"{t}_transformer.layer_norm.weight", f"{t}_transformer.layer_norm.bias"]
    return [*keys, "fc.weight", "fc.bias", "classifier.weight", "classifier.bias"]


@pytest.mark.parametrize("which", ["teacher", "student"])
def test_state_dict_keys_in_order(which: str, request: pytest.FixtureRequest) -> None:
    keys = list(request.getfixturevalue(which).state_dict().keys())
    assert len(keys) == 377
    assert keys == reference_keys()
    # The sheet's explicit boundaries of the first and last 40 keys.
    assert keys[:35] == [f"vid_prenet.{i}.{k}" for i in range(5) for k in CONV_KEYS]
    assert keys[35:40] == [f"vid_prenet.5.{k}" for k in CONV_KEYS[:5]]
    assert keys[-40] == "mem_transformer.layers.1.self_attn.out_proj.weight"
    assert keys[-4:] == ["fc.weight", "fc.bias", "classifier.weight", "classifier.bias"]


@pytest.mark.parametrize(
    ("which", "d", "c0"),
    [("teacher", 512, 32), ("student", 200, 16)],
)
def test_state_dict_shapes(which: str, d: int, c0: int, request: pytest.FixtureRequest) -> None:
    sd = request.getfixturevalue(which).state_dict()
    assert sd["vid_prenet.0.conv_block.0.weight"].shape == (c0, 3, 7, 7, 7)
    assert sd["aud_prenet.0.conv_block.0.weight"].shape == (c0, 1, 3, 3)
    assert sd["vid_prenet.16.conv_block.0.weight"].shape == (d, d, 1, 1, 1)
    assert sd["av_transformer.layers.0.self_attn.in_proj_weight"].shape == (3 * d, d)
    assert sd["va_transformer.layers.3.self_attn.in_proj_bias"].shape == (3 * d,)
    assert sd["mem_transformer.layers.2.fc1.weight"].shape == (4 * d, d)
    assert sd["mem_transformer.layers.2.fc2.weight"].shape == (d, 4 * d)
    assert sd["fc.weight"].shape == (d, d)
    assert sd["classifier.weight"].shape == (1, d)
    assert torch.equal(sd["av_transformer.version"], torch.tensor([2.0]))
    assert sd["mem_transformer.embed_positions._float_tensor"].shape == (1,)


def test_parameter_counts(teacher: SyncTransformer, student: SyncTransformer) -> None:
    def count(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    # §2.7 table.
    for m, total, vid, aud, trans, fc in (
        (teacher, 80_106_561, 38_608_448, 3_403_264, 12_610_560, 262_656),
        (student, 13_280_961, 6_685_808, 762_352, 1_930_800, 40_200),
    ):
        assert count(m) == total
        assert (count(m.vid_prenet), count(m.aud_prenet), count(m.fc)) == (vid, aud, fc)
        assert count(m.av_transformer) == count(m.va_transformer) == count(m.mem_transformer) == trans


def test_channels_rule() -> None:
    assert default_channels(512) == TEACHER_CHANNELS
    assert default_channels(200) == STUDENT_CHANNELS
    assert default_channels(256) == (16, 32, 64, 128, 256)
    assert default_channels(768) == (32, 64, 128, 256, 768)
    with pytest.raises(ValueError, match="ending in width"):
        SyncTransformer(width=200, channels=(16, 32, 64, 128, 256))


@pytest.mark.parametrize("which", ["teacher", "student"])
def test_strict_load_of_saved_checkpoint(which: str, request: pytest.FixtureRequest) -> None:
    src = request.getfixturevalue(which)
    buf = io.BytesIO()
    torch.save({"state_dict": src.state_dict(), "global_step": 1}, buf)  # the official file layout (§2.6)
    buf.seek(0)
    ckpt = torch.load(buf, map_location="cpu", weights_only=True)
    dst = build_model("vocalist", width=src.width)
    dst.load_state_dict(ckpt["state_dict"], strict=True)
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    if which == "student":  # one forward is enough to show the loaded model computes the same thing
        video, mel = batch(2)
        with torch.no_grad():
            assert torch.equal(src(video, mel), dst.eval()(video, mel))


# ------------------------------------------------------------------------------------------- forward


def test_teacher_output_shape(teacher: SyncTransformer) -> None:
    video, mel = batch(2)
    with torch.no_grad():
        y = teacher(video, mel)
    assert y.shape == (2,) and torch.isfinite(y).all()


def test_student_longer_context_and_bad_shapes(student: SyncTransformer) -> None:
    video, mel = batch(3, t_v=10)  # no temporal downsampling: any T works (§2.2)
    with torch.no_grad():
        assert student(video, mel).shape == (3,)
    with pytest.raises(ValueError, match="video must be"):
        student(torch.zeros(1, 15, 96, 96), mel[:1])
    with pytest.raises(ValueError, match="mel must be"):
        student(video[:1], torch.zeros(1, 80, 16))


def test_split_forward_equals_forward(student: SyncTransformer) -> None:
    video, mel = batch(3)
    with torch.no_grad():
        y = student(video, mel)
        v, a = student.encode_video(video), student.encode_audio(mel)
        assert v.shape == (T_V, 3, 200) and a.shape == (T_A, 3, 200)
        assert torch.allclose(student.fuse(v, a), y, atol=1e-6, rtol=0)
        # The evaluator pattern: one video window against several audio windows via an expanded view.
        y_rep = student(video[:1].expand(3, -1, -1, -1), mel)
        y_exp = student.fuse(v[:, :1].expand(-1, 3, -1), a)
        assert torch.allclose(y_exp, y_rep, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------- taps (§5.1)


@pytest.fixture(scope="module")
def tapped(student: SyncTransformer) -> tuple[torch.Tensor, Tapped]:
    video, mel = batch(2, seed=3)
    with torch.no_grad():
        return student(video, mel), student(video, mel, taps=TapRequest("*"))


def test_tap_shapes(tapped: tuple[torch.Tensor, Tapped]) -> None:
    _, (logits, taps) = tapped
    b, d, dh = 2, 200, 25
    tq = {"av": T_A, "va": T_V, "mem": T_A}
    tk = {"av": T_V, "va": T_A, "mem": T_V}  # the fusion block's keys/values are va_emb (5 tokens)
    assert logits.shape == (b,)
    for blk in ("av", "va", "mem"):
        for layer in range(1, 5):
            p = f"{blk}.{layer}."
            assert taps[p + "scores"].shape == taps[p + "probs"].shape == (b, H, tq[blk], tk[blk])
            assert taps[p + "q"].shape == (b, H, tq[blk], dh)
            for n in ("k", "v", "v_scaled"):
                assert taps[p + n].shape == (b, H, tk[blk], dh)
            assert taps[p + "out"].shape == taps[p + "out_ln"].shape == (tq[blk], b, d)
        assert taps[f"{blk}.emb"].shape == (tq[blk], b, d)
        assert torch.equal(taps[f"{blk}.4.out_ln"], taps[f"{blk}.emb"])
    assert taps["vid_prenet"].shape == (T_V, b, d) and taps["aud_prenet"].shape == (T_A, b, d)
    assert taps["pooled"].shape == taps["hidden"].shape == (b, d)
    assert flat_heads(taps["va.1.scores"]).shape == (b * H, T_V, T_A)  # reference layout


def test_tap_values(tapped: tuple[torch.Tensor, Tapped]) -> None:
    _, (_, taps) = tapped
    for blk in ("av", "va", "mem"):
        for layer in range(1, 5):
            p = f"{blk}.{layer}."
            s, probs, q, k, v = (taps[p + n] for n in ("scores", "probs", "q", "k", "v"))
            mask = future_mask(s.size(2), s.size(3))
            assert torch.allclose(s, q @ k.transpose(-1, -2) + mask, atol=1e-5)
            assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[:-1]), atol=1e-6)
            assert torch.equal(torch.isinf(s), torch.isinf(mask).expand_as(s))
            assert (probs[torch.isinf(s)] == 0).all()
            assert torch.allclose(taps[p + "v_scaled"], v * 25**-0.5)
    assert int(torch.isinf(taps["va.1.scores"]).sum()) == 10 * 2 * H  # the va quirk
    assert not torch.isinf(taps["av.1.scores"]).any() and not torch.isinf(taps["mem.1.scores"]).any()
    assert torch.equal(taps["pooled"], taps["mem.emb"].amax(0))


def test_tapped_forward_equals_plain(tapped: tuple[torch.Tensor, Tapped]) -> None:
    plain, (logits, _) = tapped
    assert torch.allclose(logits, plain, atol=1e-5, rtol=0)


def test_sdpa_equals_explicit(student: SyncTransformer) -> None:
    video, mel = batch(3, seed=4)
    with torch.no_grad():
        v, a = student.encode_video(video), student.encode_audio(mel)
        try:
            set_sdpa(student, False)
            explicit = student.fuse(v, a)
        finally:
            set_sdpa(student, True)
        assert torch.allclose(student.fuse(v, a), explicit, atol=1e-5, rtol=0)


def test_only_requested_taps_are_kept(student: SyncTransformer) -> None:
    video, mel = batch(1)
    with torch.no_grad():
        out = student(video, mel, taps="va.2.probs")
        assert set(out.taps) == {"va.2.probs"}
        out = student.fuse(
            student.encode_video(video), student.encode_audio(mel), taps=["mem.*.out_ln", "pooled"]
        )
        assert set(out.taps) == {f"mem.{i}.out_ln" for i in range(1, 5)} | {"pooled"}
    with pytest.raises(UsageError, match="match nothing"):
        student(video, mel, taps=TapRequest("fus.1.probs"))


def test_taps_carry_gradients(student: SyncTransformer) -> None:
    video, mel = batch(1)
    student.zero_grad()
    out = student(video, mel, taps=TapRequest("mem.4.probs"))
    out.taps["mem.4.probs"].square().sum().backward()
    g = student.mem_transformer.layers[3].self_attn.in_proj_weight.grad
    assert g is not None and g.abs().sum() > 0
    student.zero_grad(set_to_none=True)


# ------------------------------------------------------------------------------------------- training


def test_adam_step_lowers_bce() -> None:
    torch.manual_seed(0)
    model = build_model("vocalist", width=200, embed_dropout=0.0, res_dropout=0.0, relu_dropout=0.0).train()
    video, mel = batch(4, seed=5)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def loss() -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(model(video, mel), y)

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss()
    assert after.item() < before.item()


def test_training_after_inference_mode() -> None:
    # Cached masks / PE tables first built under inference_mode must still be usable in a training step.
    from avkd.models.attention import _cached_mask

    _cached_mask.cache_clear()
    model = build_model("vocalist", width=200, num_layers=1)
    video, mel = batch(2, seed=6)
    with torch.inference_mode():
        model.eval()(video, mel)
    model.train()(video, mel).sum().backward()
    assert model.va_transformer.layers[0].self_attn.in_proj_weight.grad is not None
