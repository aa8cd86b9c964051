"""SyncNet v2 (avkd/models/syncnet.py): the released state dict's names and shapes, the parameter count, the
front-ends' shapes and the distance score."""

from __future__ import annotations

import pytest
import torch

from avkd.models import build_model
from avkd.models.io import count_parameters
from avkd.models.syncnet import SyncNet

#: Thin widths for the cheaper checks (the 224×224 input stays: the strides need it).
THIN = {"embed_dim": 16, "audio_channels": (4, 4, 8, 8, 8, 8), "video_channels": (4, 8, 8, 8, 8, 8)}

# The layers of joonson/syncnet_python SyncNetModel.py ``S`` by their nn.Sequential index, with weight shapes:
# conv (out, in, *kernel), bn (features,), linear (out, in). Written out from the reference file, not generated.
OFFICIAL_LAYERS = {
    "netcnnaud": [
        (0, (64, 1, 3, 3)),
        (1, (64,)),
        (4, (192, 64, 3, 3)),
        (5, (192,)),
        (8, (384, 192, 3, 3)),
        (9, (384,)),
        (11, (256, 384, 3, 3)),
        (12, (256,)),
        (14, (256, 256, 3, 3)),
        (15, (256,)),
        (18, (512, 256, 5, 4)),
        (19, (512,)),
    ],
    "netfcaud": [(0, (512, 512)), (1, (512,)), (3, (1024, 512))],
    "netfclip": [(0, (512, 512)), (1, (512,)), (3, (1024, 512))],
    "netcnnlip": [
        (0, (96, 3, 5, 7, 7)),
        (1, (96,)),
        (4, (256, 96, 1, 5, 5)),
        (5, (256,)),
        (8, (256, 256, 1, 3, 3)),
        (9, (256,)),
        (11, (256, 256, 1, 3, 3)),
        (12, (256,)),
        (14, (256, 256, 1, 3, 3)),
        (15, (256,)),
        (18, (512, 256, 1, 6, 6)),
        (19, (512,)),
    ],
}


def official_keys() -> dict[str, tuple[int, ...]]:
    keys: dict[str, tuple[int, ...]] = {}
    for stream, layers in OFFICIAL_LAYERS.items():
        for index, shape in layers:
            p = f"{stream}.{index}."
            keys[p + "weight"] = shape
            keys[p + "bias"] = (shape[0],)
            if len(shape) == 1:  # BatchNorm
                keys |= {p + "running_mean": shape, p + "running_var": shape, p + "num_batches_tracked": ()}
    return keys


@pytest.fixture(scope="module")
def full() -> SyncNet:
    torch.manual_seed(0)
    return build_model("syncnet").eval()


def test_state_dict_has_the_official_names_shapes_and_order(full: SyncNet) -> None:
    state = full.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == official_keys()
    assert list(state) == list(
        official_keys()
    )  # the reference's attribute order: aud CNN, aud FC, lip FC, lip CNN


def test_parameter_count(full: SyncNet) -> None:
    # 13,631,616 = audio CNN 4,875,712 + FC 788,992 + video CNN 7,177,920 + FC 788,992
    # (docs/reference/avsiam-mfh-syncnet.md §3.2).
    assert count_parameters(full) == 13_631_616
    assert count_parameters(full.netcnnaud) == 4_875_712
    assert count_parameters(full.netcnnlip) == 7_177_920
    assert count_parameters(full.netfcaud) == count_parameters(full.netfclip) == 788_992


def test_full_size_front_ends_give_1024_d_tokens(full: SyncNet) -> None:
    g = torch.Generator().manual_seed(0)
    mfcc, frames = (
        torch.randn(2, 1, 13, 20, generator=g) * 10,
        torch.rand(1, 3, 5, 224, 224, generator=g) * 255,
    )
    with torch.inference_mode():
        a, v = full.encode_audio(mfcc), full.encode_video(frames)
    assert a.shape == (1, 2, 1024) and v.shape == (1, 1, 1024)
    assert torch.isfinite(a).all() and torch.isfinite(v).all()


def test_score_is_minus_the_euclidean_distance() -> None:
    torch.manual_seed(0)
    model = build_model("syncnet", **THIN).eval()
    g = torch.Generator().manual_seed(1)
    video, mfcc = torch.rand(3, 3, 5, 224, 224, generator=g) * 255, torch.randn(3, 1, 13, 20, generator=g)
    with torch.inference_mode():
        v, a = model.encode_video(video), model.encode_audio(mfcc)
        scores = model(video, mfcc)
        # By hand: sqrt of the summed squares of (v − a + 1e-6), pairwise_distance's definition.
        by_hand = -((v[0] - a[0] + 1e-6) ** 2).sum(-1).sqrt()
        tapped = model(video, mfcc, taps="*")
    torch.testing.assert_close(scores, by_hand)
    torch.testing.assert_close(model.fuse(v, a), scores)
    assert scores.shape == (3,) and (scores < 0).all()
    # Each embedding comes from its own stream only: the taps are the tokens, the CNN taps the MLPs' inputs.
    torch.testing.assert_close(tapped.taps["audio"], a[0])
    torch.testing.assert_close(tapped.taps["video"], v[0])
    with torch.inference_mode():
        torch.testing.assert_close(model.netfclip(tapped.taps["video_cnn"]), v[0])
        # A pair is scored against itself at distance ~0: −pairwise_distance(x, x) = −‖1e-6‖.
        assert model.fuse(v, v).abs().max() < 1e-4
    assert tapped.taps["audio_cnn"].shape == (3, 8)


def test_wrong_input_shapes_are_refused() -> None:
    model = build_model("syncnet", **THIN).eval()
    with pytest.raises(ValueError, match=r"mfcc must be \(B, 1, 13, 20\)"):
        model.encode_audio(torch.zeros(1, 1, 13, 16))
    with pytest.raises(ValueError, match=r"frames must be \(B, 3, 5, 224, 224\)"):
        model.encode_video(torch.zeros(1, 15, 48, 96))
    with pytest.raises(ValueError, match="tokens must be"):
        model.fuse(torch.zeros(5, 1, 16), torch.zeros(5, 1, 16))
    with pytest.raises(ValueError, match="6 positive numbers"):
        SyncNet(audio_channels=(4, 4))
