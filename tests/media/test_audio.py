"""avkd.media.audio: the VocaLiST mel against an independent librosa/numpy computation, and the helpers."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from avkd.media import audio as A


def make_clip(seconds: float = 1.3) -> np.ndarray:
    """Random + tonal audio with a near-silent stretch (exercises the 1e-5 floor and the clip at -4)."""
    rng = np.random.default_rng(0)
    n = int(seconds * A.SAMPLE_RATE)
    t = np.arange(n) / A.SAMPLE_RATE
    wave = (
        0.05 * rng.standard_normal(n) + 0.5 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t)
    )
    wave[6000:9000] *= 1e-4
    return wave.astype(np.float32)


def librosa_vocalist_mel(wave: np.ndarray) -> np.ndarray:
    """The same recipe (docs/reference/vocalist.md §1.4) written independently with librosa in float64."""
    spec = np.abs(
        librosa.stft(
            wave.astype(np.float64),
            n_fft=800,
            hop_length=200,
            win_length=800,
            window="hann",
            center=True,
            pad_mode="reflect",
        )
    )
    fbank = librosa.filters.mel(
        sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600, htk=False, norm="slaney", dtype=np.float64
    )
    db = 20 * np.log10(np.maximum(fbank @ spec, 1e-5)) - 20
    return np.clip(8 * (db + 100) / 100 - 4, -4, 4)


def test_mel_matches_librosa() -> None:
    wave = make_clip()
    ours = A.vocalist_mel(wave)
    ref = librosa_vocalist_mel(wave)
    assert ours.shape == ref.shape == (80, len(wave) // 200 + 1)
    assert ours.dtype == np.float32
    assert np.abs(ours - ref).max() < 2e-5  # measured 5.6e-6 (float32 STFT; the filterbanks agree to 8e-8)
    assert ours.min() == -4.0  # the near-silent stretch hits the floor
    ours64 = A.vocalist_mel_torch(torch.from_numpy(wave.astype(np.float64)))
    assert ours64.dtype == torch.float64
    assert np.abs(ours64.numpy() - ref).max() < 2e-5


@pytest.mark.parametrize("n", [401, 3200, 3201, 20800])
def test_mel_shape_and_range(n: int) -> None:
    wave = make_clip()[:n]
    mel = A.vocalist_mel(wave)
    assert mel.shape == (80, n // 200 + 1) == (80, A.mel_steps(n))
    assert mel.min() >= -4.0 and mel.max() <= 4.0


def test_training_window_has_17_steps() -> None:
    # 5 frames = 3200 samples -> 17 STFT frames; VocaLiST drops the last to get 16 (docs/reference/vocalist.md §1.4)
    assert A.vocalist_mel(np.zeros(3200, np.float32)).shape == (80, 17)


def test_too_short_raises() -> None:
    with pytest.raises(ValueError, match="400"):
        A.vocalist_mel(np.zeros(400, np.float32))


def test_batched_equals_per_item() -> None:
    wave = torch.from_numpy(make_clip())
    batch = torch.stack([wave[i * 1000 : i * 1000 + 3200] for i in range(6)]).reshape(2, 3, 3200)
    out = A.vocalist_mel_torch(batch)
    assert out.shape == (2, 3, 80, 17)
    for i in range(2):
        for j in range(3):
            single = A.vocalist_mel_torch(batch[i, j])
            torch.testing.assert_close(out[i, j], single, atol=1e-5, rtol=0)


def test_numpy_wrapper_is_batched_too() -> None:
    wave = make_clip()[:6400].reshape(2, 3200)
    out = A.vocalist_mel(wave)
    assert out.shape == (2, 80, 17)
    np.testing.assert_allclose(out[1], A.vocalist_mel(wave[1]), atol=1e-5)


def test_filterbank_cached_per_device_and_dtype() -> None:
    w1, f1 = A._window_and_fbank(torch.device("cpu"), torch.float32)
    w2, f2 = A._window_and_fbank(torch.device("cpu"), torch.float32)
    assert w1 is w2 and f1 is f2
    assert f1.shape == (80, 401)
    _, f64 = A._window_and_fbank(torch.device("cpu"), torch.float64)
    assert f64.dtype == torch.float64 and f64 is not f1
    torch.testing.assert_close(w1, torch.hann_window(800))  # periodic, as torch.hann_window's default


def test_half_precision_input_computed_in_float32() -> None:
    wave = torch.from_numpy(make_clip()[:3200]).to(torch.bfloat16)
    assert A.vocalist_mel_torch(wave).dtype == torch.float32


def test_resample_keeps_frequency() -> None:
    sr = 44100
    t = np.arange(sr) / sr
    wave = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out = A.resample(wave, sr, 16000)
    assert out.dtype == np.float32 and out.shape == (16000,)
    spec = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    assert np.argmax(spec) * 16000 / len(out) == pytest.approx(1000.0, abs=2)
    assert np.abs(out[1000:-1000]).max() == pytest.approx(0.5, abs=0.01)  # no loss of level in the pass band
    stereo = A.resample(np.stack([wave, wave]), sr, 16000)
    assert stereo.shape == (2, 16000)


def test_resample_identity() -> None:
    wave = make_clip()
    out = A.resample(wave, 16000, 16000)
    np.testing.assert_array_equal(out, wave)
    assert A.resample(wave.astype(np.float64), 16000).dtype == np.float32


def test_to_mono() -> None:
    stereo = np.stack([np.ones(5), -np.ones(5) * 0.5]).astype(np.float32)
    np.testing.assert_allclose(A.to_mono(stereo), np.full(5, 0.25))
    assert A.to_mono(stereo).dtype == np.float32
    np.testing.assert_array_equal(A.to_mono(stereo[:1]), stereo[0])
    np.testing.assert_array_equal(A.to_mono(stereo[0]), stereo[0])
    with pytest.raises(ValueError):
        A.to_mono(np.zeros((1, 2, 3)))


def test_int16_round_trip() -> None:
    x = np.array([-1.0, -0.5, 0.0, 0.25, 0.999, 1.0, 1.5, -2.0], np.float32)
    q = A.to_int16(x)
    assert q.dtype == np.int16
    assert q.tolist() == [-32768, -16384, 0, 8192, 32735, 32767, 32767, -32768]
    back = A.from_int16(q)
    assert back.dtype == np.float32 and back.min() >= -1.0 and back.max() < 1.0
    all_codes = np.arange(-32768, 32768, dtype=np.int16)
    np.testing.assert_array_equal(A.to_int16(A.from_int16(all_codes)), all_codes)
