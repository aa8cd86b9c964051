"""Audio helpers (mono, resampling, int16), the VocaLiST log-mel front-end and SyncNet's MFCC.

torchaudio is used for transforms only (``resample``, ``melscale_fbanks``), never to decode files: decoding is
:mod:`avkd.media.video`'s job (torchaudio 2.9+ dropped its own I/O).
"""

from __future__ import annotations

import functools
import threading

import numpy as np
import scipy.fft
import torch
import torchaudio.functional as AF

__all__ = [
    "MEL_CONFIG",
    "MFCC_CONFIG",
    "SAMPLE_RATE",
    "from_int16",
    "mel_steps",
    "mfcc_steps",
    "resample",
    "syncnet_mfcc",
    "to_int16",
    "to_mono",
    "vocalist_mel",
    "vocalist_mel_torch",
]

#: LRS2 and every VocaLiST/MTDVocaLiST loader work at 16 kHz (docs/reference/vocalist.md §1.1, §1.4).
SAMPLE_RATE = 16000

#: The VocaLiST mel recipe, from the official ``hparams.py`` (docs/reference/vocalist.md §1.4).
MEL_CONFIG = {
    "sample_rate": 16000,
    "n_fft": 800,
    "hop_length": 200,  # 12.5 ms: 80 mel steps per second, 3.2 per 25 fps video frame
    "win_length": 800,  # 50 ms
    "n_mels": 80,
    "f_min": 55.0,
    "f_max": 7600.0,
    "min_level": 1e-5,  # 10 ** (min_level_db / 20) with min_level_db = -100
    "ref_level_db": 20.0,
    "min_level_db": -100.0,
    "max_abs_value": 4.0,  # symmetric output range [-4, 4]
}


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(channels, samples) or (samples,) -> (samples,) float32, the mean over channels."""
    x = np.asarray(audio)
    if x.ndim == 1:
        return x.astype(np.float32, copy=False)
    if x.ndim != 2:
        raise ValueError(f"audio must be (samples,) or (channels, samples), got shape {x.shape}")
    return x.mean(axis=0, dtype=np.float64).astype(np.float32) if x.shape[0] > 1 else x[0].astype(np.float32)


def resample(wave: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed-sinc ``resample``) of (..., samples) float audio.

    Returns float32; when the rates are equal the input is returned as float32 unchanged.
    """
    x = np.asarray(wave, dtype=np.float32)
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    if orig_sr == target_sr:
        return x
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(x)), orig_sr, target_sr)
    return out.numpy().astype(np.float32, copy=False)


def to_int16(wave: np.ndarray) -> np.ndarray:
    """float audio in [-1, 1] -> int16 (x·32768 rounded, clipped); inverse of :func:`from_int16` on its range."""
    x = np.asarray(wave, dtype=np.float64) * 32768.0
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def from_int16(x: np.ndarray) -> np.ndarray:
    """int16 audio -> float32 x/32768 in [-1, 1)."""
    return (np.asarray(x, dtype=np.int16).astype(np.float32)) / np.float32(32768.0)


def mel_steps(n_samples: int) -> int:
    """Mel frames for ``n_samples`` of audio: centred STFT, hop 200 -> samples // 200 + 1."""
    return int(n_samples) // MEL_CONFIG["hop_length"] + 1


# One (window, filterbank) per (device, dtype). The reference code rebuilt MelScale and the window on every
# call; building the filterbank costs more than the STFT of a 0.2 s training window.
_CACHE: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}
_CACHE_LOCK = threading.Lock()


def _window_and_fbank(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    key = (device, dtype)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is None:
            c = MEL_CONFIG
            window = torch.hann_window(c["win_length"], periodic=True, dtype=torch.float64)
            fbank = AF.melscale_fbanks(
                n_freqs=c["n_fft"] // 2 + 1,
                f_min=c["f_min"],
                f_max=c["f_max"],
                n_mels=c["n_mels"],
                sample_rate=c["sample_rate"],
                norm="slaney",
                mel_scale="slaney",
            )  # (401, 80)
            hit = (
                window.to(device=device, dtype=dtype),
                fbank.T.contiguous().to(device=device, dtype=dtype),  # (80, 401)
            )
            _CACHE[key] = hit
    return hit


def vocalist_mel_torch(wave: torch.Tensor) -> torch.Tensor:
    """VocaLiST's normalised log-mel of 16 kHz audio: (..., samples) -> (..., 80, samples // 200 + 1).

    Batched; runs on ``wave``'s device (GPU if given). float64 input is computed in float64, every other
    dtype in float32. Recipe (docs/reference/vocalist.md §1.4, from the official ``hparams.py`` and the
    train/test loaders):

    - ``torch.stft`` n_fft 800, hop 200, win 800, periodic ``torch.hann_window(800)``, center=True with reflect
      padding, onesided (401 bins), magnitude ``|STFT|`` (power 1, not squared);
    - slaney-scale, slaney-normalised mel filterbank, 80 mels, 55..7600 Hz (torchaudio ``melscale_fbanks``,
      equal to ``librosa.filters.mel(..., htk=False, norm="slaney")``);
    - ``dB = 20·log10(max(mel, 1e-5)) − 20``; ``out = clip(8·(dB + 100)/100 − 4, −4, 4)``;
    - no pre-emphasis (hparams sets it but nothing reads it), no rescaling.

    Reflect padding needs more than 400 samples (n_fft // 2) of audio.
    """
    if not isinstance(wave, torch.Tensor):
        raise TypeError(f"wave must be a torch.Tensor, got {type(wave).__name__}")
    dtype = torch.float64 if wave.dtype == torch.float64 else torch.float32
    x = wave.to(dtype)
    c = MEL_CONFIG
    if x.shape[-1] <= c["n_fft"] // 2:
        raise ValueError(f"need more than {c['n_fft'] // 2} samples for the centred STFT, got {x.shape[-1]}")
    window, fbank = _window_and_fbank(x.device, dtype)
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    spec = torch.stft(
        flat,
        n_fft=c["n_fft"],
        hop_length=c["hop_length"],
        win_length=c["win_length"],
        window=window,
        center=True,
        pad_mode="reflect",
        onesided=True,
        return_complex=True,
    ).abs()  # (B, 401, steps)
    mel = torch.matmul(fbank, spec)  # (B, 80, steps)
    db = 20.0 * torch.log10(torch.clamp(mel, min=c["min_level"])) - c["ref_level_db"]
    m = c["max_abs_value"]
    out = torch.clamp(2 * m * (db - c["min_level_db"]) / (-c["min_level_db"]) - m, -m, m)
    return out.reshape(*lead, c["n_mels"], out.shape[-1])


def vocalist_mel(wave_16k: np.ndarray) -> np.ndarray:
    """NumPy wrapper of :func:`vocalist_mel_torch` on the CPU in float32: (..., samples) -> (..., 80, steps)."""
    x = torch.from_numpy(np.ascontiguousarray(np.asarray(wave_16k, dtype=np.float32)))
    with torch.no_grad():
        return vocalist_mel_torch(x).numpy()


# ------------------------------------------------------------------------------------------ SyncNet MFCC

#: ``python_speech_features.mfcc`` defaults, which SyncNet's ``SyncNetInstance.evaluate`` calls at 16 kHz
#: (docs/reference/avsiam-mfh-syncnet.md §3.3): 25 ms frames every 10 ms (100 per second, 4 per 25 fps
#: video frame), 26 triangular mel filters over a 512-point power spectrum, 13 cepstra, no window function.
MFCC_CONFIG = {
    "sample_rate": 16000,
    "frame_length": 400,  # 25 ms
    "hop_length": 160,  # 10 ms
    "n_fft": 512,
    "n_filters": 26,
    "n_ceps": 13,
    "preemphasis": 0.97,
    "ceplifter": 22,
}


def mfcc_steps(n_samples: int) -> int:
    """MFCC frames of ``n_samples`` at 16 kHz: 1 up to one frame, else ``1 + ceil((n − 400) / 160)``
    (the last frame zero-padded, as ``python_speech_features.sigproc.framesig``)."""
    c = MFCC_CONFIG
    n = int(n_samples)
    return 1 if n <= c["frame_length"] else 1 + -(-(n - c["frame_length"]) // c["hop_length"])


@functools.cache
def _mfcc_filterbank() -> np.ndarray:
    """(26, 257) triangular filters between FFT bins ``floor(513·f/16000)`` of 28 points evenly spaced in mel
    (HTK mel, ``2595·log10(1 + f/700)``) from 0 Hz to 8 kHz, peaks of height 1, unnormalised — the
    ``get_filterbanks`` recipe."""
    c = MFCC_CONFIG
    sr, n_fft, n_filt = c["sample_rate"], c["n_fft"], c["n_filters"]
    mel = np.linspace(0.0, 2595.0 * np.log10(1.0 + (sr / 2) / 700.0), n_filt + 2)
    edges = np.floor((n_fft + 1) * (700.0 * (10.0 ** (mel / 2595.0) - 1.0)) / sr)
    bins = np.arange(n_fft // 2 + 1, dtype=np.float64)
    fbank = np.zeros((n_filt, n_fft // 2 + 1))
    for j in range(n_filt):
        lo, mid, hi = edges[j], edges[j + 1], edges[j + 2]
        rising = (bins >= lo) & (bins < mid)
        falling = (bins >= mid) & (bins < hi)
        fbank[j, rising] = (bins[rising] - lo) / (mid - lo)
        fbank[j, falling] = (hi - bins[falling]) / (hi - mid)
    fbank.setflags(write=False)
    return fbank


def syncnet_mfcc(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """SyncNet's audio features: (samples,) mono audio → (13, :func:`mfcc_steps`) float32 MFCC at 100 Hz.

    The same numbers as ``python_speech_features.mfcc(wave, 16000)`` (its defaults, :data:`MFCC_CONFIG`), the
    call of the official evaluation (§3.3), which reads 16-bit PCM with ``scipy.io.wavfile`` and so feeds int16
    sample values. Therefore integer input is used as is, and float input (avkd's [-1, 1] convention) is scaled
    by 32768 first: the coefficients are logs, and the input's scale shifts c0, the log frame energy. Audio at
    another ``sample_rate`` is resampled to 16 kHz first (the official pipeline resamples with ffmpeg).

    Steps: pre-emphasis ``y[n] = x[n] − 0.97·x[n−1]`` (``y[0] = x[0]``); 400-sample frames every 160 samples,
    the last zero-padded; power spectrum ``|rfft_512|² / 512``; 26 mel filter energies (0 → float eps);
    natural log; orthonormal DCT-II, first 13; lifter ``1 + 11·sin(π·n/22)``; c0 replaced by the log of the
    frame's total power (0 → eps). Computed in float64.
    """
    x = np.asarray(wave)
    if x.ndim != 1:
        raise ValueError(f"wave must be mono (samples,), got shape {x.shape}")
    if x.size == 0:
        raise ValueError("wave is empty")
    c = MFCC_CONFIG
    x = x.astype(np.float64) if np.issubdtype(x.dtype, np.integer) else x.astype(np.float64) * 32768.0
    if int(sample_rate) != c["sample_rate"]:
        x = resample(x, sample_rate, c["sample_rate"]).astype(np.float64)  # linear: the scale is kept
    y = np.empty_like(x)
    y[0] = x[0]
    y[1:] = x[1:] - c["preemphasis"] * x[:-1]
    steps, flen, hop = mfcc_steps(y.size), c["frame_length"], c["hop_length"]
    padded = np.zeros((steps - 1) * hop + flen)
    padded[: y.size] = y
    frames = np.lib.stride_tricks.sliding_window_view(padded, flen)[::hop]  # (steps, 400)
    power = np.abs(np.fft.rfft(frames, c["n_fft"])) ** 2 / c["n_fft"]  # (steps, 257)
    eps = np.finfo(np.float64).eps
    energy = power.sum(axis=1)
    energy = np.where(energy == 0, eps, energy)
    feat = power @ _mfcc_filterbank().T
    feat = np.where(feat == 0, eps, feat)
    ceps = scipy.fft.dct(np.log(feat), type=2, axis=1, norm="ortho")[:, : c["n_ceps"]]
    n = np.arange(c["n_ceps"])
    ceps *= 1.0 + (c["ceplifter"] / 2.0) * np.sin(np.pi * n / c["ceplifter"])
    ceps[:, 0] = np.log(energy)
    return np.ascontiguousarray(ceps.T, dtype=np.float32)
