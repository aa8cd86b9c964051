"""The AVSiam / CAV-MAE audio input: a Kaldi-compatible log-mel filterbank, padded or cut to a fixed length and
normalised with the dataset statistics.

Recipe (docs/reference/avsiam-mfh-syncnet.md §1.7; read in the released loaders ``src/dataloader.py``
and ``src/dataloader_ft.py`` of GenjiB/AVSiam @f700326, ``_wav2fbank`` and ``__getitem__``):

1. the decoded audio is resampled to 16 kHz (``torchaudio.functional.resample``, which
   :func:`avkd.media.audio.resample` calls) and averaged over channels;
2. its mean is subtracted (the whole clip's DC offset);
3. ``torchaudio.compliance.kaldi.fbank(wave, htk_compat=True, sample_frequency=16000, use_energy=False,
   window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)``; Kaldi's other defaults apply: 25 ms
   frames (400 samples) every 10 ms (160), ``snip_edges`` (so ``1 + (n − 400) // 160`` frames), a 512-point FFT,
   per-frame DC removal, pre-emphasis 0.97, power spectrum, mel filters from 20 Hz to 8 kHz, natural log;
4. the (frames, 128) result is zero-padded at the end, or cut, to ``target_length`` = 1024 frames (10.24 s; a
   10 s clip gives 998 frames and 26 of padding). The zeros are log-mel values, padded before normalising;
5. ``(fbank − mean) / std`` with the released AudioSet statistics mean −5.081, std 4.4849 (the VGGSound fine-tuning
   script passes the same two numbers).

One difference from the release, on purpose: its fine-tuning loader resamples to 16 kHz but then passes the
file's *original* rate as ``sample_frequency``, so for a 44.1 or 48 kHz file its windows and shift are 2.8-3x too
long. Here the rate given is the rate of the wave, 16 kHz. (The pre-training loader reads 16 kHz wav files, where
the two agree.)

The model takes the fbank transposed, frequency rows and time columns, (1, 128, 1024) (:mod:`avkd.models.avsiam`);
:func:`clip_fbank` returns it in that orientation.
"""

from __future__ import annotations

import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi

from avkd.media.audio import resample, to_mono

__all__ = [
    "FBANK_CONFIG",
    "FBANK_MEAN",
    "FBANK_SAMPLE_RATE",
    "FBANK_STD",
    "clip_fbank",
    "fbank_frames",
    "kaldi_fbank",
    "pad_or_cut",
]

#: The released loaders' fbank arguments (§1.7).
FBANK_SAMPLE_RATE = 16000
FBANK_CONFIG = {
    "htk_compat": True,
    "use_energy": False,
    "window_type": "hanning",
    "dither": 0.0,
    "frame_length": 25.0,  # ms (Kaldi's default, not passed by the release)
    "frame_shift": 10.0,  # ms
}
#: The released normalisation statistics (AudioSet; used for VGGSound too, §1.7).
FBANK_MEAN = -5.081
FBANK_STD = 4.4849


def fbank_frames(n_samples: int, frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0) -> int:
    """Frames Kaldi gives for ``n_samples`` at 16 kHz with ``snip_edges``: ``1 + (n − L) // S`` (0 if n < L)."""
    length = int(FBANK_SAMPLE_RATE * frame_length_ms / 1000)
    shift = int(FBANK_SAMPLE_RATE * frame_shift_ms / 1000)
    return 0 if n_samples < length else 1 + (int(n_samples) - length) // shift


def kaldi_fbank(
    wave_16k: np.ndarray,
    num_mel_bins: int = 128,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
) -> np.ndarray:
    """(samples,) float audio at 16 kHz → (frames, num_mel_bins) float32 log-mel, after subtracting the mean
    (steps 2-3 of the module docstring)."""
    wave = np.ascontiguousarray(np.asarray(wave_16k, dtype=np.float32))
    # The mean in float64 NumPy: torch's parallel sum depends on the thread count (1e-4 apart here between 1
    # and 2 threads), and the stored fbank must not depend on how many workers made it.
    x = torch.from_numpy(wave - np.float32(np.mean(wave, dtype=np.float64))).reshape(1, -1)
    options = {**FBANK_CONFIG, "frame_length": float(frame_length_ms), "frame_shift": float(frame_shift_ms)}
    with torch.no_grad():
        out = kaldi.fbank(x, sample_frequency=FBANK_SAMPLE_RATE, num_mel_bins=int(num_mel_bins), **options)
    return out.numpy().astype(np.float32, copy=False)


def pad_or_cut(fbank: np.ndarray, target_length: int) -> np.ndarray:
    """(frames, bins) → (target_length, bins): zero rows appended at the end, or the end cut (step 4)."""
    n = fbank.shape[0]
    if n >= target_length:
        return np.ascontiguousarray(fbank[:target_length])
    return np.concatenate([fbank, np.zeros((target_length - n, fbank.shape[1]), fbank.dtype)])


def clip_fbank(
    audio: np.ndarray,
    sample_rate: int,
    num_mel_bins: int = 128,
    target_length: int = 1024,
    mean: float = FBANK_MEAN,
    std: float = FBANK_STD,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
) -> tuple[np.ndarray, int]:
    """Decoded audio ((channels, samples) or (samples,), any rate) → the model's (num_mel_bins, target_length)
    float32 input and the number of frames that are audio rather than padding (steps 1-5)."""
    wave = to_mono(audio)
    if int(sample_rate) != FBANK_SAMPLE_RATE:
        wave = resample(wave, sample_rate, FBANK_SAMPLE_RATE)
    fbank = kaldi_fbank(wave, num_mel_bins, frame_length_ms, frame_shift_ms)
    valid = min(fbank.shape[0], target_length)
    fixed = (pad_or_cut(fbank, target_length) - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(fixed.T, dtype=np.float32), valid
