"""SyncNet's MFCC (:func:`avkd.media.audio.syncnet_mfcc`) against ``python_speech_features.mfcc``, its definition."""

from __future__ import annotations

import numpy as np
import pytest
import python_speech_features as psf  # the dev extra pins it (pyproject.toml)

from avkd.media.audio import from_int16, mfcc_steps, resample, syncnet_mfcc


def speechy(n: int, seed: int) -> np.ndarray:
    """int16 test audio: a 150 Hz harmonic buzz with a syllable-rate envelope plus noise (not white noise only,
    so that the filterbank energies span a wide range)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    buzz = sum(np.sin(2 * np.pi * 150 * h * t) / h for h in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    x = 6000 * envelope * buzz + 300 * rng.standard_normal(n)
    return np.clip(x, -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("n", [1, 399, 400, 401, 560, 3200, 16000 + 77])
def test_matches_python_speech_features(n: int) -> None:
    wave = speechy(n, seed=n)
    expected = psf.mfcc(wave, 16000).T  # the official call (SyncNetInstance.evaluate), transposed to (13, T)
    got = syncnet_mfcc(wave, 16000)
    assert got.shape == expected.shape == (13, mfcc_steps(n))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_frame_rate_is_four_per_video_frame() -> None:
    # 25 fps video: 640 samples per frame give 4 MFCC steps per frame (§3.3); N frames give 4N − 1 steps.
    assert [mfcc_steps(640 * n) for n in (5, 6, 50)] == [19, 23, 199]
    assert mfcc_steps(0) == mfcc_steps(400) == 1 and mfcc_steps(401) == 2


def test_float_input_is_read_on_the_int16_scale() -> None:
    wave = speechy(4000, seed=3)
    np.testing.assert_allclose(syncnet_mfcc(from_int16(wave)), syncnet_mfcc(wave), rtol=1e-5, atol=1e-4)
    # The scale only moves c0 (the log energy), by log(4) for twice the amplitude.
    louder = syncnet_mfcc(from_int16(wave) * 2)
    np.testing.assert_allclose(louder[0], syncnet_mfcc(wave)[0] + np.log(4), atol=1e-4)
    np.testing.assert_allclose(louder[1:], syncnet_mfcc(wave)[1:], rtol=1e-4, atol=1e-3)


def test_silence_is_finite_and_matches() -> None:
    wave = np.zeros(2000, np.int16)
    got = syncnet_mfcc(wave)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, psf.mfcc(wave, 16000).T, rtol=1e-5, atol=1e-4)


def test_other_rates_are_resampled_to_16k_first() -> None:
    wave = from_int16(speechy(16000, seed=4))
    at_8k = resample(wave, 16000, 8000)
    expected = syncnet_mfcc(resample(at_8k, 8000, 16000))
    np.testing.assert_allclose(syncnet_mfcc(at_8k, 8000), expected, rtol=1e-5, atol=1e-4)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="mono"):
        syncnet_mfcc(np.zeros((2, 800), np.float32))
    with pytest.raises(ValueError, match="empty"):
        syncnet_mfcc(np.zeros(0, np.int16))
