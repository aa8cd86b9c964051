"""LSE-D / LSE-C (avkd.evaluate.lse): the distance curve, the metrics of both protocols, the sign convention, the
window layout fed to the model, and which models LSE accepts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import medfilt
from torch import Tensor, nn

from avkd.core.errors import MediaError, UsageError
from avkd.evaluate.lse import (
    check_lse_model,
    distance_matrix,
    embed_windows,
    framewise_confidence,
    lse_from_distances,
    score_windows,
    summarize,
    window_count,
)
from avkd.models import build_model


def test_distance_matrix_by_hand() -> None:
    v = torch.tensor([[0.0], [1.0], [2.0]])
    # Reference: audio padded by one zero row each side, so row i reads padded rows i..i+2 = a_{i-1}, a_i, a_{i+1}.
    ref = distance_matrix(v, v.clone(), vshift=1, protocol="reference")
    np.testing.assert_allclose(ref, [[0, 0, 1], [1, 0, 1], [1, 0, 2]], atol=1e-5)
    ours = distance_matrix(v, v.clone(), vshift=1, protocol="avkd")
    assert np.isnan(ours[0, 0]) and np.isnan(ours[2, 2])  # a_{-1} and a_3 do not exist
    np.testing.assert_allclose(np.nan_to_num(ours, nan=-1), [[-1, 0, 1], [1, 0, 1], [1, 0, -1]], atol=1e-5)


def test_metrics_by_hand_and_the_two_protocols_differ() -> None:
    v = torch.tensor([[0.0], [1.0], [2.0]])
    ref = lse_from_distances(distance_matrix(v, v.clone(), 1, "reference"), "reference")
    # curve = column means [2/3, 0, 4/3]; min 0 at offset 0; median 2/3
    np.testing.assert_allclose(ref.curve, [2 / 3, 0, 4 / 3], atol=1e-5)
    assert (
        ref.offset == 0
        and ref.lse_d == pytest.approx(0, abs=1e-5)
        and ref.lse_c == pytest.approx(2 / 3, abs=1e-5)
    )
    ours = lse_from_distances(distance_matrix(v, v.clone(), 1, "avkd"), "avkd")
    # the zero padding is not scored: curve [1, 0, 1] over 2, 3, 2 windows; median 1
    np.testing.assert_allclose(ours.curve, [1, 0, 1], atol=1e-5)
    assert ours.support == [2, 3, 2]
    assert ours.lse_c == pytest.approx(1, abs=1e-5)


def _independent_reference(v: np.ndarray, a: np.ndarray, vshift: int) -> tuple[int, float, float, np.ndarray]:
    """syncnet_python's evaluate() arithmetic written out in loops, float64
    (docs/reference/avsiam-mfh-syncnet.md §3.4)."""
    w, dim = v.shape
    padded = np.vstack([np.zeros((vshift, dim)), a, np.zeros((vshift, dim))])
    dist = np.array(
        [[np.linalg.norm(v[i] - padded[i + j] + 1e-6) for j in range(2 * vshift + 1)] for i in range(w)]
    )
    mean = dist.mean(axis=0)
    best = int(np.argmin(mean))
    median = float(np.sort(mean)[(len(mean) - 1) // 2])  # torch.median: the lower middle value
    conf = medfilt(median - dist[:, best], kernel_size=9)
    return vshift - best, float(mean[best]), median - float(mean[best]), conf


@pytest.mark.parametrize("windows", [11, 300])  # 300: past the 256-window chunks
def test_reference_protocol_matches_the_official_arithmetic(windows: int) -> None:
    rng = np.random.default_rng(windows)
    v = rng.standard_normal((windows, 8)).astype(np.float32)
    a = np.roll(v, 2, axis=0) + 0.7 * rng.standard_normal((windows, 8)).astype(np.float32)
    offset, low, conf, framewise = _independent_reference(v.astype(np.float64), a.astype(np.float64), 15)
    got = lse_from_distances(distance_matrix(v, a, 15, "reference"), "reference")
    assert got.offset_reference == offset and got.offset == -offset
    assert got.lse_d == pytest.approx(low, rel=1e-5) and got.lse_c == pytest.approx(conf, rel=1e-4)
    np.testing.assert_allclose(got.framewise, framewise, rtol=1e-4, atol=1e-5)
    assert all(got.considered) and got.support == [windows] * 31


@pytest.mark.parametrize("protocol", ["avkd", "reference"])
@pytest.mark.parametrize("lag", [-6, 0, 4])
def test_sign_convention_positive_means_audio_lags(protocol: str, lag: int) -> None:
    """Audio window t holds what video window t − lag showed: the sound of frame i is heard at i + lag."""
    rng = np.random.default_rng(1)
    w = 40
    v = rng.standard_normal((w, 6))
    a = rng.standard_normal((w, 6))
    for t in range(w):
        if 0 <= t - lag < w:
            a[t] = v[t - lag]
    got = lse_from_distances(distance_matrix(v, a, 15, protocol), protocol)
    assert got.offset == lag and got.offset_reference == -lag
    assert got.to_json()["offset_ms"] == pytest.approx(40.0 * lag)
    if protocol == "avkd":
        assert got.lse_d == pytest.approx(0.0, abs=1e-4)  # every scored pair at the true offset is identical
    else:
        # the reference also scores the |lag| windows whose audio lies in the zero padding: distance ‖v_i‖
        outside = [i for i in range(w) if not 0 <= i + lag < w]
        assert got.lse_d == pytest.approx(sum(np.linalg.norm(v[i]) for i in outside) / w, abs=1e-4)
    assert got.lse_c > 1.0


def test_avkd_protocol_takes_the_minimum_only_over_well_supported_offsets() -> None:
    rng = np.random.default_rng(2)
    w = 12
    v = rng.standard_normal((w, 4))
    a = rng.standard_normal((w, 4))
    a[-1] = v[0]  # one pair at offset +11 is identical: the mean of that offset rests on one window
    got = lse_from_distances(distance_matrix(v, a, 15, "avkd"), "avkd")
    d = np.arange(-15, 16)
    assert got.support == [max(0, w - abs(k)) for k in d]
    # min(MIN_SUPPORT = 10, ceil(12 / 2) = 6) windows: offsets |d| <= 6
    assert got.considered == [bool(abs(k) <= 6) for k in d]
    assert abs(got.offset) <= 6
    assert np.isnan(got.curve[0]) and not math.isnan(got.curve[15])  # offset -15: no window has it
    # without the rule, the one identical pair (distance ~0) would be the minimum
    assert int(np.nanargmin(got.curve)) - 15 == 11


def test_framewise_confidence_filters() -> None:
    dist = np.full((12, 3), 2.0)
    dist[:, 1] = 1.0
    np.testing.assert_allclose(framewise_confidence(dist, 1, 2.0, "avkd"), 1.0)
    dist[:3, 1] = -1.0  # raw confidence 3, 3, 3, then 1
    ours = framewise_confidence(dist, 1, 2.0, "avkd")
    ref = framewise_confidence(dist, 1, 2.0, "reference")
    # first window: avkd takes the median of raw[0:5] = 3, 3, 3, 1, 1; the reference's medfilt adds 4 zeros
    assert ours[0] == 3.0 and ref[0] == 1.0
    np.testing.assert_allclose(ours[4:], 1.0)
    spike = np.full((12, 3), 2.0)
    spike[:, 1] = 1.0
    spike[5, 1] = -50.0  # one outlying window is removed by the width-9 median
    np.testing.assert_allclose(framewise_confidence(spike, 1, 2.0, "avkd"), 1.0)


def test_window_count() -> None:
    # 50 frames with audio cut to 640·50 samples: 4·50 − 1 = 199 MFCC steps; both protocols score 45 windows
    assert window_count(50, 199, "avkd") == window_count(50, 199, "reference") == 45
    # longer audio: avkd scores every window whose frames exist (46), the reference stops one short (45)
    assert (window_count(50, 400, "avkd"), window_count(50, 400, "reference")) == (46, 45)
    assert window_count(5, 20, "avkd") == 1 and window_count(5, 20, "reference") == 0
    assert window_count(50, 19) == 0
    with pytest.raises(UsageError, match="--protocol"):
        window_count(50, 199, "official")


class _Probe(nn.Module):
    """encode_video gives each window's first frame index and pixel value of channel 0; encode_audio its first
    MFCC column index (frames and MFCC are made to hold their own indices)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def encode_video(self, frames: Tensor) -> Tensor:  # (B, 3, 5, S, S)
        return torch.stack([frames[:, 0, 0, 0, 0], frames[:, 0, 4, 0, 0], frames[:, 2, 0, 0, 0]], dim=1)

    def encode_audio(self, mfcc: Tensor) -> Tensor:  # (B, 1, 13, 20)
        return torch.stack([mfcc[:, 0, 0, 0], mfcc[:, 0, 0, 19], mfcc[:, 0, 12, 0]], dim=1)


def test_windows_fed_to_the_model() -> None:
    n = 12
    crops = np.zeros((n, 8, 8, 3), np.uint8)
    crops[..., 0] = np.arange(n)[:, None, None]  # R = frame index
    crops[..., 2] = 100  # B
    mfcc = np.tile(np.arange(4 * n - 1, dtype=np.float32), (13, 1))  # every row = column index
    mfcc[12] += 1000
    w = window_count(n, mfcc.shape[1])
    video, audio = embed_windows(
        _Probe(), crops, mfcc, w, batch_size=3, pixel_order="bgr", pixel_range="byte"
    )
    assert video.shape == audio.shape == (w, 3)
    i = torch.arange(w, dtype=torch.float32)
    # BGR: channel 0 is the blue plane (100), channel 2 the red one (frame index); frames i..i+4
    torch.testing.assert_close(video[:, 0], torch.full((w,), 100.0))
    torch.testing.assert_close(video[:, 2], i)
    # MFCC columns [4i, 4i + 20)
    torch.testing.assert_close(audio[:, 0], 4 * i)
    torch.testing.assert_close(audio[:, 1], 4 * i + 19)
    torch.testing.assert_close(audio[:, 2], 4 * i + 1000)
    unit, _ = embed_windows(_Probe(), crops, mfcc, w, pixel_order="rgb", pixel_range="unit")
    torch.testing.assert_close(unit[:, 0], i / 255)
    torch.testing.assert_close(unit[:, 1], (i + 4) / 255)


def test_too_short_clip_is_a_media_error() -> None:
    crops = np.zeros((5, 8, 8, 3), np.uint8)
    with pytest.raises(MediaError, match="too short for LSE: 5 frames"):
        score_windows(_Probe(), crops, np.zeros((13, 19), np.float32), 5, protocol="reference")


def test_which_models_lse_takes() -> None:
    thin = build_model(
        "syncnet", embed_dim=16, audio_channels=(4, 4, 4, 4, 4, 8), video_channels=(4,) * 5 + (8,)
    )
    assert check_lse_model(thin.eval(), "syncnet") == 16
    with pytest.raises(UsageError, match="has no encode_video/encode_audio"):
        check_lse_model(nn.Linear(2, 2), "linear")
    with pytest.raises(UsageError, match="does not take SyncNet's inputs"):
        check_lse_model(build_model("vocalist_lite").eval(), "vocalist_lite")


def test_syncnet_scores_a_clip_end_to_end() -> None:
    """SyncNet (thin widths, random weights; the full model runs in tests/cli/test_lse.py) on 224x224 crops and
    an MFCC: finite metrics."""
    torch.manual_seed(0)
    model = build_model(
        "syncnet", embed_dim=32, audio_channels=(8, 8, 8, 8, 8, 16), video_channels=(8,) * 5 + (16,)
    ).eval()
    rng = np.random.default_rng(0)
    n = 14
    crops = rng.integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)
    mfcc = rng.standard_normal((13, 4 * n - 1)).astype(np.float32)
    got = score_windows(model, crops, mfcc, n, pixel_order="bgr", pixel_range="byte", batch_size=4)
    assert got.windows == n - 5 and math.isfinite(got.lse_d) and math.isfinite(got.lse_c) and got.lse_c >= 0


def test_summary_means_over_scored_videos() -> None:
    v = torch.tensor([[0.0], [1.0], [2.0]])
    one = lse_from_distances(distance_matrix(v, v.clone(), 1, "reference"), "reference")
    two = lse_from_distances(distance_matrix(v, 2 * v, 1, "reference"), "reference")
    s = summarize([one, None, two])
    assert (s.videos, s.scored, s.failed) == (3, 2, 1)
    assert s.lse_d == pytest.approx((one.lse_d + two.lse_d) / 2)
    assert s.lse_c == pytest.approx((one.lse_c + two.lse_c) / 2)
    assert summarize([None]).lse_d is None
