"""The fbank against torchaudio's Kaldi fbank with the released arguments, padding, cutting and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as AF

from avkd.data.clips.audio import FBANK_MEAN, FBANK_STD, clip_fbank, fbank_frames, kaldi_fbank, pad_or_cut


def released(wave: np.ndarray, sr: int, bins: int, target: int) -> np.ndarray:
    """The steps of the released ``_wav2fbank`` + normalisation, written out here on torch tensors (with the
    rate of the resampled wave given to fbank, see avkd.data.clips.audio)."""
    x = torch.from_numpy(wave.astype(np.float32))
    x = x.reshape(-1, x.shape[-1])
    if sr != 16000:
        x = AF.resample(x, sr, 16000)
    x = x.mean(dim=0, keepdim=True)
    x = x - x.mean()
    fb = kaldi.fbank(
        x,
        htk_compat=True,
        sample_frequency=16000,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=bins,
        dither=0.0,
        frame_shift=10,
    )
    p = target - fb.shape[0]
    fb = torch.nn.ZeroPad2d((0, 0, 0, p))(fb) if p > 0 else fb[:target]
    return ((fb - (-5.081)) / 4.4849).T.numpy()


@pytest.mark.parametrize(("sr", "channels", "target"), [(16000, 1, 128), (44100, 2, 60), (48000, 1, 300)])
def test_matches_the_released_steps(sr: int, channels: int, target: int) -> None:
    rng = np.random.default_rng(sr)
    t = np.arange(int(1.5 * sr)) / sr
    wave = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.normal(size=(channels, t.size)) + 0.1).astype(
        np.float32
    )
    ours, valid = clip_fbank(wave if channels > 1 else wave[0], sr, num_mel_bins=64, target_length=target)
    ref = released(wave, sr, 64, target)
    assert ours.shape == (64, target) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-4)
    assert (
        valid == min(fbank_frames(24000), target) == min(148, target)
    )  # 1.5 s at 16 kHz: 1 + (24000-400)//160


def test_frame_count_padding_and_normalisation() -> None:
    wave = np.random.default_rng(0).normal(size=16000).astype(np.float32) * 0.1
    raw = kaldi_fbank(wave, num_mel_bins=128)
    assert raw.shape == (fbank_frames(16000), 128) == (98, 128)
    assert np.allclose(pad_or_cut(raw, 50), raw[:50]) and pad_or_cut(raw, 50).shape == (50, 128)
    padded = pad_or_cut(raw, 1024)
    assert padded.shape == (1024, 128) and not padded[98:].any() and np.array_equal(padded[:98], raw)
    stored, valid = clip_fbank(wave, 16000)  # the released sizes and statistics
    assert stored.shape == (128, 1024) and valid == 98
    np.testing.assert_allclose(stored[:, :98], (raw.T - FBANK_MEAN) / FBANK_STD, rtol=1e-6, atol=1e-6)
    # Padding is zeros of log-mel, normalised like the rest: (0 + 5.081) / 4.4849 = 1.1329.
    np.testing.assert_allclose(stored[:, 98:], 5.081 / 4.4849, rtol=1e-6)
    unnormalised, _ = clip_fbank(wave, 16000, mean=0.0, std=1.0)
    np.testing.assert_allclose(unnormalised[:, :98], raw.T, rtol=1e-6)


def test_a_tone_lights_its_mel_bin() -> None:
    t = np.arange(16000) / 16000
    peaks = [int(kaldi_fbank(np.sin(2 * np.pi * f * t), 128).mean(0).argmax()) for f in (300, 1000, 3000)]
    assert peaks[0] < peaks[1] < peaks[2]


def test_the_fbank_does_not_depend_on_the_thread_count() -> None:
    """Preprocessing workers run one torch thread, the in-process path the caller's: the same bytes either way."""
    wave = (
        np.random.default_rng(1).normal(size=(2, 3 * 44100)).astype(np.float32) * 0.1 + 0.05
    )  # 48000 samples
    before = torch.get_num_threads()
    try:
        out = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out.append(clip_fbank(wave, 44100, target_length=128)[0])
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(out[0], out[1])
