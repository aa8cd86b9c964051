"""Audio helpers (mono, resampling, int16) and the VocaLiST log-mel front-end.

torchaudio is used for transforms only (``resample``, ``melscale_fbanks``), never to decode files: decoding is
:mod:`avkd.media.video`'s job (torchaudio 2.9+ dropped its own I/O).
"""

from __future__ import annotations

import threading

import numpy as np
import torch
import torchaudio.functional as AF

__all__ = [
    "MEL_CONFIG",
    "SAMPLE_RATE",
    "from_int16",
    "mel_steps",
    "resample",
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
