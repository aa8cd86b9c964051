"""Synthetic LRS2-style corpus of real mp4 files: speech-like audio and a drawn face whose mouth follows it.

LRS2 is licensed, so tests, the demo and benchmarks run on this corpus instead. It has LRS2's layout and split
files and goes through the same readers and decoders. The audio is syllable-like bursts with random pitch,
formants, durations and pauses. The mouth opening of video frame ``n`` is the mean amplitude envelope of audio
samples ``[640·n, 640·(n+1))``, the VocaLiST convention at 25 fps and 16 kHz. Syllable timing is irregular, so
a sync model can learn the offset between mouth and voice and tell shifts of up to ±15 frames apart.

Geometry (all lengths scale with ``size``; pixels given for 160x160). The face fills the default fixed face box
(x 30..130, y 20..140): head ellipse 92x120 px centred at (80, 78), times a per-speaker scale of 0.95..1.05,
moved by at most ±3 px of slow head motion. Eye centres are at y 64..71 (upper half of the box). The mouth is
centred at (80, 114) for scale 1 and no motion; with its lips it spans at most y 96..134 and x 56..104 over all
scales, openings and motions, so the whole mouth stays inside the lower half of the box (y 80..140).
OpenCV's Haar frontal-face cascade finds the face on about 99.8% of frames (its square boxes are about
(20, 21, 121, 121) as x, y, w, h: wider than the fixed box because they take in the ears).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.signal import lfilter

from avkd import __version__
from avkd.core.artifacts import atomic_write_text
from avkd.core.errors import ConfigError, UsageError
from avkd.data.lrs2.layout import write_corpus_manifest
from avkd.media.encode import write_mp4

SPLITS = ("pretrain", "train", "val", "test")
_SUBSET = {"pretrain": "pretrain", "train": "main", "val": "main", "test": "main"}
_SHIFT = 4  # fractional bits for cv2 drawing: sub-pixel head motion and mouth sizes
_ONE = 1 << _SHIFT


@dataclass
class SynthLRS2Config:
    """What to generate; stored resolved in ``synth.json``."""

    utterances: int = 40
    """Total clips over all splits (>= 4, each split gets at least one)."""
    speakers: int = 6
    """Number of source videos ("speakers"), >= 3; val/test use speakers disjoint from pretrain/train."""
    seed: int = 0
    """Seed of everything: ids, splits, durations, voices, faces, noise."""
    min_seconds: float = 2.0
    """Shortest clip length; each clip's length is uniform in [min_seconds, max_seconds]."""
    max_seconds: float = 4.0
    """Longest clip length."""
    fps: float = 25.0
    """Video frame rate; sample_rate / fps must be an integer (640 samples per frame by default)."""
    size: int = 160
    """Frame width and height in pixels (even, as H.264 yuv420p needs)."""
    sample_rate: int = 16000
    """Audio sample rate (mono AAC)."""
    split_fractions: tuple[float, float, float, float] = (0.5, 0.2, 0.1, 0.2)
    """Share of clips in pretrain, train, val, test."""
    workers: int = 0
    """Processes that render and encode clips; 0 = min(cpu count, 4). Results do not depend on it."""


@dataclass
class SynthSummary:
    """What :func:`synthesize_lrs2` produced."""

    root: Path
    counts: dict[str, int]
    seconds: float
    elapsed: float


@dataclass(frozen=True)
class SpeakerStyle:
    """Appearance and voice of one speaker: colours are RGB, lengths are in units of a 160-pixel frame."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    background: tuple[int, int, int]
    shirt: tuple[int, int, int]
    lips: tuple[int, int, int]
    iris: tuple[int, int, int]
    face_scale: float
    """Head size factor, 0.95..1.05."""
    eye_spacing: float
    """Half the distance between the eye centres, 16.5..20 px."""
    head_motion: float
    """Amplitude of the slow head motion, 1..3 px."""
    f0: float
    """Base pitch, 90..250 Hz."""
    formant_scale: float
    """Vocal-tract factor applied to the formants, 0.92..1.12 (higher for higher voices)."""
    rate: float
    """Speaking-rate factor dividing syllable durations, 0.85..1.2."""
    breathiness: float
    """Aspiration noise mixed into the voiced source, 0.02..0.12."""


def speaker_style(seed: int) -> SpeakerStyle:
    """Draw one speaker's appearance and voice, so every clip of a speaker looks and sounds alike."""
    rng = np.random.default_rng([seed, 101])
    t = rng.uniform(0.0, 1.0)
    dark, light = np.array([92, 58, 40]), np.array([238, 198, 168])
    skin = (dark + t * (light - dark)) * rng.uniform(0.95, 1.05, 3)
    skin_lum = float(skin @ [0.299, 0.587, 0.114])
    hair_choices = [(25, 20, 18), (60, 38, 24), (110, 75, 40), (170, 140, 90), (140, 135, 130), (90, 30, 20)]
    hair = np.array(hair_choices[rng.integers(len(hair_choices))]) * rng.uniform(0.9, 1.1, 3)
    if abs(float(hair @ [0.299, 0.587, 0.114]) - skin_lum) < 50:  # hair must not melt into the face
        hair = hair * 0.35 if skin_lum > 110 else np.minimum(hair * 1.9 + 40, 235)
    while True:  # a muted background that differs from the skin in brightness
        background = rng.uniform(30, 220, 3)
        if abs(float(background @ [0.299, 0.587, 0.114]) - skin_lum) > 45:
            break
    f0 = rng.uniform(90.0, 250.0)
    return SpeakerStyle(
        skin=_rgb(skin),
        hair=_rgb(hair),
        background=_rgb(background),
        shirt=_rgb(rng.uniform(20, 230, 3)),
        lips=_rgb(skin * np.array([0.82, 0.55, 0.55]) + np.array([30, 0, 5])),
        iris=_rgb(
            rng.choice([(60, 40, 25), (45, 70, 100), (70, 90, 50), (35, 25, 20)]) * rng.uniform(0.9, 1.1)
        ),
        face_scale=float(rng.uniform(0.95, 1.05)),
        eye_spacing=float(rng.uniform(16.5, 20.0)),
        head_motion=float(rng.uniform(1.0, 3.0)),
        f0=float(f0),
        formant_scale=float(0.92 + 0.2 * (f0 - 90.0) / 160.0 + rng.uniform(-0.03, 0.03)),
        rate=float(rng.uniform(0.85, 1.2)),
        breathiness=float(rng.uniform(0.02, 0.12)),
    )


def _rgb(values) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in np.clip(np.round(values), 0, 255))
    return (r, g, b)


# --------------------------------------------------------------------------------------------------- audio


@dataclass
class _Syllable:
    onset: int  # first sample of the voiced part, on the utterance timeline (may be negative)
    length: int
    amp: float
    formants: tuple[float, ...]
    glide: float
    attack: int
    decay: int
    consonant: str  # "", "plosive" or "fricative"
    consonant_length: int
    consonant_level: float
    consonant_cutoff: float


def _draw_syllable(rng: np.random.Generator, style: SpeakerStyle, sr: int) -> _Syllable:
    length = int(sr * np.clip(rng.uniform(0.08, 0.35) / style.rate, 0.08, 0.35))
    f1 = rng.uniform(300.0, 900.0)
    f2 = max(rng.uniform(900.0, 2500.0), f1 + 250.0)
    formants = [f1, f2] + ([rng.uniform(max(2300.0, f2 + 300.0), 3300.0)] if rng.random() < 0.7 else [])
    kind = rng.choice(["", "plosive", "fricative"], p=[0.4, 0.3, 0.3])
    return _Syllable(
        onset=0,
        length=length,
        amp=float(rng.uniform(0.45, 1.0)),
        formants=tuple(float(f * style.formant_scale) for f in formants),
        glide=float(np.exp(rng.uniform(-0.15, 0.1))),
        attack=int(min(sr * rng.uniform(0.01, 0.04), length // 2)),
        decay=int(min(sr * rng.uniform(0.03, 0.09), length // 2)),
        consonant=str(kind),
        consonant_length=int(
            sr * (rng.uniform(0.008, 0.025) if kind == "plosive" else rng.uniform(0.04, 0.12))
        ),
        consonant_level=float(rng.uniform(0.15, 0.35)),
        consonant_cutoff=float(rng.uniform(2500.0, 5000.0)),
    )


def _draw_pause(rng: np.random.Generator, sr: int) -> int:
    u = rng.random()
    if u < 0.75:
        seconds = rng.uniform(0.04, 0.2)
    elif u < 0.92:
        seconds = rng.uniform(0.2, 0.5)
    else:
        seconds = rng.uniform(0.5, 1.0)
    return int(sr * seconds)


def _syllables(seed: int, style: SpeakerStyle, start: int, stop: int, sr: int) -> list[tuple[int, _Syllable]]:
    """Syllables covering ``[start, stop)``: drawn forwards from 0 and backwards from 0 with separate streams,
    so the content of ``[0, n)`` does not depend on how far the timeline extends (audio shifts keep it).
    Each syllable comes with a key (direction, index) that seeds its waveform's own stream."""
    out = []
    fwd = np.random.default_rng([seed, 1])
    t = -int(sr * fwd.uniform(0.0, 0.25))  # clips often start mid-syllable
    first = t
    while t < stop:
        syl = _draw_syllable(fwd, style, sr)
        lead = syl.consonant_length if syl.consonant == "fricative" else 0
        syl.onset = t + lead
        out.append(((0, len(out)), syl))
        t = syl.onset + syl.length + _draw_pause(fwd, sr)
    bwd = np.random.default_rng([seed, 2])
    t, count = first, 0
    while t > start:
        syl = _draw_syllable(bwd, style, sr)
        syl.onset = t - _draw_pause(bwd, sr) - syl.length
        out.append(((1, count), syl))
        count += 1
        t = syl.onset - (syl.consonant_length if syl.consonant == "fricative" else 0)
    return out


def _resonate(x: np.ndarray, freq: float, bandwidth: float, sr: int) -> np.ndarray:
    """Two-pole resonator with unity gain at DC (a formant of a cascade formant synthesiser)."""
    r = math.exp(-math.pi * bandwidth / sr)
    c = 2.0 * r * math.cos(2.0 * math.pi * freq / sr)
    return lfilter([1.0 - c + r * r], [1.0, -c, r * r], x)


def _voiced(
    syl: _Syllable, f0_at: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator, style, sr: int
) -> np.ndarray:
    """One syllable's vowel: band-limited pulse train, spectral tilt, formant cascade, unit RMS."""
    n = syl.length
    f0 = f0_at((syl.onset + np.arange(n)) / sr) * np.exp(np.linspace(0.0, math.log(syl.glide), n))
    phase = 2.0 * np.pi * np.cumsum(f0) / sr + rng.uniform(0.0, 2.0 * np.pi)
    harmonics = max(1, int(min(5000.0, 0.45 * sr) / f0.max()))
    half = np.sin(0.5 * phase)
    safe = np.where(np.abs(half) < 1e-6, 1.0, half)
    pulses = np.where(np.abs(half) < 1e-6, harmonics, np.sin((harmonics + 0.5) * phase) / (2.0 * safe) - 0.5)
    source = pulses / harmonics + style.breathiness * rng.standard_normal(n)
    y = lfilter([0.1], [1.0, -0.9], source)  # glottal roll-off, about -6 dB/octave above 250 Hz
    for i, freq in enumerate(syl.formants):
        y = _resonate(y, freq, (60.0, 90.0, 140.0)[i] * rng.uniform(0.8, 1.3), sr)
    return y / (np.sqrt(np.mean(y * y)) + 1e-9)


def _envelope(syl: _Syllable) -> np.ndarray:
    env = np.ones(syl.length)
    env[: syl.attack] = np.linspace(0.0, 1.0, syl.attack, endpoint=False) ** 1.5
    if syl.decay:
        env[-syl.decay :] = np.linspace(1.0, 0.0, syl.decay) ** 2
    return syl.amp * env


def _consonant(syl: _Syllable, rng: np.random.Generator, sr: int) -> tuple[int, np.ndarray]:
    """Noise before the vowel: a short plosive burst or a high-passed fricative. Returns (first sample, wave)."""
    n = syl.consonant_length
    noise = rng.standard_normal(n)
    if syl.consonant == "plosive":
        wave = lfilter([1.0, -0.5], [1.0], noise) * np.exp(-np.arange(n) / (0.3 * n))
        return syl.onset - n // 3, syl.amp * syl.consonant_level * 1.5 * wave
    a = math.exp(-2.0 * math.pi * syl.consonant_cutoff / sr)
    wave = lfilter([1.0, -1.0], [1.0, -a], noise)  # first-order high-pass
    shape = np.sin(np.linspace(0.0, np.pi, n)) ** 0.7
    return syl.onset - n, syl.amp * syl.consonant_level * wave * shape / (np.std(wave) + 1e-9)


def _add(buffer: np.ndarray, start: int, wave: np.ndarray, origin: int) -> None:
    """Add ``wave`` (starting at timeline sample ``start``) to ``buffer`` (starting at ``origin``), clipped."""
    lo, hi = start - origin, start - origin + len(wave)
    a, b = max(lo, 0), min(hi, len(buffer))
    if a < b:
        buffer[a:b] += wave[a - lo : b - lo]


def _speech(seed: int, style: SpeakerStyle, start: int, stop: int, sr: int):
    """Voice, vowel envelope (0..1) and envelope-weighted F2 position (-1..1) on timeline ``[start, stop)``."""
    misc = np.random.default_rng([seed, 3])
    periods = misc.uniform([1.5, 0.4], [3.0, 0.9])
    phases = misc.uniform(0.0, 2.0 * np.pi, 2)

    def f0_at(t: np.ndarray) -> np.ndarray:  # intonation drift, defined for any time
        drift = 0.1 * np.sin(2 * np.pi * t / periods[0] + phases[0])
        drift += 0.05 * np.sin(2 * np.pi * t / periods[1] + phases[1])
        return style.f0 * np.exp(drift)

    n = stop - start
    voice, env, f2w = np.zeros(n), np.zeros(n), np.zeros(n)
    for key, syl in _syllables(seed, style, start, stop, sr):
        rng = np.random.default_rng([seed, 4, *key])
        e = _envelope(syl)
        _add(voice, syl.onset, e * _voiced(syl, f0_at, rng, style, sr), start)
        _add(env, syl.onset, e, start)
        f2 = syl.formants[1] / style.formant_scale
        _add(f2w, syl.onset, e * np.clip((f2 - 1700.0) / 800.0, -1.0, 1.0), start)
        if syl.consonant:
            first, wave = _consonant(syl, rng, sr)
            _add(voice, first, wave, start)
    return voice, env, f2w


# --------------------------------------------------------------------------------------------------- video


def _pt(x: float, y: float) -> tuple[int, int]:
    return (round(x * _ONE), round(y * _ONE))


def _ellipse(img, center, axes, color, thickness=-1, start=0, end=360) -> None:
    axes = (max(round(axes[0] * _ONE), 1), max(round(axes[1] * _ONE), 1))
    cv2.ellipse(img, _pt(*center), axes, 0, start, end, color, thickness, cv2.LINE_AA, _SHIFT)


def _shade(color, factor: float, add: float = 0.0) -> tuple[int, int, int]:
    return _rgb(np.asarray(color, dtype=float) * factor + add)


class _Painter:
    """Draws the face of one speaker; every length is scaled by ``size / 160`` and the face scale."""

    def __init__(self, style: SpeakerStyle, size: int) -> None:
        self.style = style
        self.size = size
        self.u = size / 160.0
        self.background = np.empty((size, size, 3), np.uint8)
        self.background[:] = style.background
        s = style
        # Shading in absolute steps of at least a mid-tone skin's, so dark faces keep the contrast a face
        # detector looks for: eye sockets and brows darker than cheeks, a lighter nose bridge.
        d = max(float(np.dot(s.skin, [0.299, 0.587, 0.114])), 140.0)
        self.colors = {
            "skin": s.skin,
            "ear": _shade(s.skin, 1.0, -0.1 * d),
            "neck": _shade(s.skin, 1.0, -0.2 * d),
            "socket": _shade(s.skin, 1.0, -0.4 * d),
            "cheek": _shade(s.skin, 1.0, 0.1 * d),
            "bridge": _shade(s.skin, 1.0, 0.2 * d),
            "nose_side": _shade(s.skin, 1.0, -0.18 * d),
            "nostril": _shade(s.skin, 0.35),
            "brow": _rgb(np.minimum(np.asarray(s.hair) * 0.6, np.asarray(s.skin) * 0.45)),
            "sclera": (170, 165, 160),  # greyish: a bright sclera breaks the dark eye band
            "lid": _shade(s.skin, 0.4),
            "chin": _shade(s.skin, 1.0, -0.1 * d),
        }

    def frame(self, dx: float, dy: float, opening: float, spread: float, blink: bool) -> np.ndarray:
        """Draw one frame: head offset (dx, dy) px, mouth opening 0..1, lip spread -1..1, eyes closed if blink."""
        s, c, u = self.style, self.colors, self.u
        k = u * s.face_scale
        cx, cy = self.size / 2 + dx * u, self.size / 2 + dy * u
        img = self.background.copy()

        def P(x: float, y: float) -> tuple[float, float]:
            return (cx + x * k, cy + y * k)

        def A(a: float, b: float) -> tuple[float, float]:
            return (a * k, b * k)

        _ellipse(img, (cx, cy + 100 * k), A(72, 38), s.shirt)  # shoulders
        cv2.rectangle(img, _pt(*P(-19, 30)), _pt(*P(19, 85)), c["neck"], -1, cv2.LINE_AA, _SHIFT)
        _ellipse(img, P(0, -12), A(53, 58), s.hair)  # hair behind the head
        for side in (-1, 1):
            _ellipse(img, P(side * 46, -4), A(6, 11), c["ear"])
        _ellipse(img, P(0, -2), A(46, 60), c["skin"])
        _ellipse(img, P(0, 52), A(24, 9), c["chin"])  # under-chin shading
        _ellipse(img, P(0, 50), A(20, 8), c["skin"])
        _ellipse(img, P(0, -36), A(48, 30), s.hair, start=180, end=360)  # fringe over the forehead
        es = s.eye_spacing
        for side in (-1, 1):
            ex = side * es
            _ellipse(img, P(side * 23, 12), A(12, 9), c["cheek"])
            _ellipse(img, P(ex, -12), A(13, 8), c["socket"])
            _ellipse(img, P(ex, -24), A(10, 4), c["brow"], thickness=max(1, round(3 * k)), start=190, end=350)
            if blink:
                _ellipse(img, P(ex, -12), A(8, 1.2), c["lid"])
            else:
                _ellipse(img, P(ex, -12), A(7, 4.5), c["sclera"])
                _ellipse(img, P(ex, -12), A(3.8, 3.8), s.iris)
                _ellipse(img, P(ex, -12), A(1.8, 1.8), (12, 10, 10))
                _ellipse(img, P(ex, -13), A(8.5, 5), c["lid"], thickness=1, start=190, end=350)
        _ellipse(img, P(0, 2), A(4.5, 14), c["bridge"])  # lighter nose bridge between the darker eyes
        for side in (-1, 1):
            _ellipse(img, P(side * 6, 10), A(2, 7), c["nose_side"])
            _ellipse(img, P(side * 4.5, 16), A(2.8, 1.8), c["nostril"])
        self._mouth(img, P(0, 34), k, opening, spread)
        return cv2.GaussianBlur(img, (3, 3), 0.8)

    def _mouth(self, img, center, k: float, opening: float, spread: float) -> None:
        x, y = center
        half_w = (15.0 + 1.8 * spread - 1.5 * opening) * k
        half_h = (1.0 + 9.0 * opening) * k
        _ellipse(img, (x, y), (half_w + 2.5 * k, half_h + 3.0 * k), self.style.lips)
        _ellipse(img, (x, y), (half_w, half_h), (45, 14, 20))
        if half_h > 3.0 * k:  # upper teeth show once the mouth is open
            _ellipse(img, (x, y - half_h + 1.2 * k), (0.65 * half_w, 1.8 * k), (228, 222, 212))


def _pixel_noise_table(sigma: float) -> np.ndarray:
    """Byte → integer lookup approximating N(0, sigma²): gaussian noise from random bytes, cheaply."""
    from statistics import NormalDist

    nd = NormalDist(0.0, sigma)
    return np.array([round(nd.inv_cdf((i + 0.5) / 256)) for i in range(256)], dtype=np.int16)


_NOISE = _pixel_noise_table(1.8)


# --------------------------------------------------------------------------------------------------- render


def _n_frames(seconds: float, fps: float) -> int:
    return max(1, round(seconds * fps))


def _samples_per_frame(fps: float, sample_rate: int) -> int:
    spf = sample_rate / fps
    if abs(spf - round(spf)) > 1e-9:
        raise ConfigError(f"sample_rate / fps must be an integer, got {sample_rate} / {fps}")
    return round(spf)


def render_utterance(
    seed: int,
    seconds: float,
    style: SpeakerStyle,
    fps: float = 25.0,
    size: int = 160,
    sample_rate: int = 16000,
    audio_shift_frames: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one clip: frames (N, size, size, 3) uint8 RGB and audio (N·sample_rate/fps,) float32.

    N = round(seconds·fps). ``audio_shift_frames=k`` delays the voice by k frames (negative: advances it); the
    frames are the same for every k, so shifted clips are exact negatives for sync models.
    """
    spf = _samples_per_frame(fps, sample_rate)
    n = _n_frames(seconds, fps)
    length = n * spf
    lag = audio_shift_frames * spf
    start, stop = min(0, -lag), max(length, length - lag)
    voice, env, f2w = _speech(seed, style, start, stop, sample_rate)

    misc = np.random.default_rng([seed, 5])
    peak = misc.uniform(0.5, 0.8)
    gain = peak / (np.abs(voice[-start : -start + length]).max() + 1e-9)
    audio = gain * voice[-start - lag : -start - lag + length]
    hiss = lfilter([1.0], [1.0, -0.6], misc.standard_normal(length))
    audio = audio + misc.uniform(0.002, 0.005) * hiss / hiss.std()
    audio = np.clip(audio, -0.99, 0.99).astype(np.float32)

    # Mouth of frame i: mean envelope over audio samples [spf·i, spf·(i+1)) of the unshifted voice.
    env_frames = env[-start : -start + length].reshape(n, spf).mean(axis=1)
    spread = f2w[-start : -start + length].reshape(n, spf).mean(axis=1) / (env_frames + 1e-3)
    opening = np.clip(env_frames, 0.0, 1.0)

    vid = np.random.default_rng([seed, 6])
    t = np.arange(n) / fps
    motion = []
    for _ in range(2):
        freqs = vid.uniform([0.08, 0.25], [0.25, 0.6])
        ph = vid.uniform(0.0, 2.0 * np.pi, 2)
        wave = np.sin(2 * np.pi * freqs[0] * t + ph[0]) + 0.4 * np.sin(2 * np.pi * freqs[1] * t + ph[1])
        motion.append(style.head_motion * wave / 1.4)
    blink = np.zeros(n, bool)
    at = vid.uniform(0.0, 3.0)
    while at < t[-1] + 1:
        i = int(at * fps)
        blink[i : i + 3] = True
        at += vid.uniform(2.0, 5.0)

    painter = _Painter(style, size)
    frames = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        frames[i] = painter.frame(motion[0][i], motion[1][i], opening[i], spread[i], bool(blink[i]))
    noise = _NOISE[np.frombuffer(vid.bytes(frames.size), np.uint8)].reshape(frames.shape)
    frames = np.clip(frames + noise, 0, 255).astype(np.uint8)
    return frames, audio


def write_utterance(
    path: str | os.PathLike,
    seed: int,
    seconds: float,
    style: SpeakerStyle,
    audio_shift_frames: int = 0,
    *,
    fps: float = 25.0,
    size: int = 160,
    sample_rate: int = 16000,
    crf: int = 18,
) -> None:
    """Render one clip and write it as an H.264/AAC mp4 (atomically, via :func:`write_mp4`)."""
    frames, audio = render_utterance(seed, seconds, style, fps, size, sample_rate, audio_shift_frames)
    write_mp4(path, frames, fps, audio, sample_rate=sample_rate, crf=crf)


# --------------------------------------------------------------------------------------------------- corpus


@dataclass
class _Planned:
    split: str
    speaker: str
    utt: str
    seed: int
    seconds: float
    style_seed: int
    tag: str  # test.txt's second field

    @property
    def rel(self) -> str:
        return f"{_SUBSET[self.split]}/{self.speaker}/{self.utt}.mp4"


def _check(config: SynthLRS2Config) -> None:
    c = config
    if c.speakers < 3:
        raise ConfigError(f"speakers must be >= 3, got {c.speakers}")
    if c.utterances < len(SPLITS):
        raise ConfigError(f"utterances must be >= {len(SPLITS)} (one per split), got {c.utterances}")
    if not 0 < c.min_seconds <= c.max_seconds:
        raise ConfigError(f"need 0 < min_seconds <= max_seconds, got {c.min_seconds}, {c.max_seconds}")
    if len(c.split_fractions) != 4 or min(c.split_fractions) < 0 or sum(c.split_fractions) <= 0:
        raise ConfigError(f"split_fractions must be 4 non-negative numbers, got {c.split_fractions}")
    if c.size < 64 or c.size % 2:
        raise ConfigError(f"size must be even and >= 64, got {c.size}")
    if c.seed < 0 or c.workers < 0:
        raise ConfigError("seed and workers must be >= 0")
    _samples_per_frame(c.fps, c.sample_rate)


def _split_counts(total: int, fractions) -> dict[str, int]:
    """Largest-remainder rounding with at least one clip per split."""
    weights = np.asarray(fractions, float) / sum(fractions)
    counts = np.ones(4, int)
    share = weights * (total - 4)
    counts += np.floor(share).astype(int)
    for i in np.argsort(-(share - np.floor(share)), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return dict(zip(SPLITS, (int(x) for x in counts), strict=True))


def _plan(config: SynthLRS2Config) -> list[_Planned]:
    rng = np.random.default_rng([config.seed, 0])
    ids: list[str] = []
    while len(ids) < config.speakers:  # 19-digit ids in the range of LRS2's
        sid = str(int(rng.integers(5_500_000_000_000_000_000, 6_400_000_000_000_000_000)))
        if sid not in ids:
            ids.append(sid)
    counts = _split_counts(config.utterances, config.split_fractions)
    f = config.split_fractions
    held_out = min(max(1, round(config.speakers * (f[2] + f[3]) / sum(f))), config.speakers - 1)
    groups = {"seen": ids[: config.speakers - held_out], "held": ids[config.speakers - held_out :]}
    next_utt: dict[tuple[str, str], int] = {}
    plan = []
    for split in SPLITS:
        group = groups["held" if split in ("val", "test") else "seen"]
        speakers = [group[i % len(group)] for i in rng.permutation(counts[split])]
        for speaker in sorted(speakers):
            key = (_SUBSET[split], speaker)
            next_utt[key] = next_utt.get(key, 0) + 1
            index = len(plan)
            plan.append(
                _Planned(
                    split=split,
                    speaker=speaker,
                    utt=f"{next_utt[key]:05d}",
                    seed=int(np.random.SeedSequence([config.seed, 1, index]).generate_state(1)[0]),
                    seconds=float(rng.uniform(config.min_seconds, config.max_seconds)),
                    style_seed=int(
                        np.random.SeedSequence([config.seed, 2, ids.index(speaker)]).generate_state(1)[0]
                    ),
                    tag=("NF" if rng.random() < 0.8 else "MV") if split == "test" else "",
                )
            )
    return plan


def _render_job(path: str, item: _Planned, config: SynthLRS2Config) -> None:
    cv2.setNumThreads(1)
    write_utterance(
        path,
        item.seed,
        item.seconds,
        speaker_style(item.style_seed),
        fps=config.fps,
        size=config.size,
        sample_rate=config.sample_rate,
    )


def synthesize_lrs2(
    out: str | Path,
    config: SynthLRS2Config | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SynthSummary:
    """Generate an LRS2-layout corpus of mp4 clips under ``out`` (which must be absent or empty).

    Clips are rendered in a process pool (spawned, so a parent holding torch or OpenCV threads cannot deadlock
    it); each clip's content depends only on (seed, clip index), never on the number of workers. Split files,
    the corpus manifest ``lrs2.yaml`` (for ``avkd data check``) and ``synth.json`` are written last, so their
    presence marks a complete corpus.
    """
    config = config or SynthLRS2Config()
    _check(config)
    root = Path(out)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UsageError(f"{out}: exists and is not empty")
    began = time.perf_counter()
    plan = _plan(config)
    for item in plan:
        (root / item.rel).parent.mkdir(parents=True, exist_ok=True)
    workers = config.workers or min(os.cpu_count() or 1, 4)
    done = 0
    if workers == 1:
        for item in plan:
            _render_job(str(root / item.rel), item, config)
            done += 1
            if progress:
                progress(done, len(plan))
    else:
        context = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=min(workers, len(plan)), mp_context=context) as pool:
            futures = [pool.submit(_render_job, str(root / item.rel), item, config) for item in plan]
            for future in cf.as_completed(futures):
                future.result()
                done += 1
                if progress:
                    progress(done, len(plan))

    for split in SPLITS:
        lines = [f"{p.speaker}/{p.utt}" + (f" {p.tag}" if p.tag else "") for p in plan if p.split == split]
        atomic_write_text(root / f"{split}.txt", "".join(line + "\n" for line in lines))
    write_corpus_manifest(root, fps=config.fps, sample_rate=config.sample_rate, size=config.size)
    resolved = asdict(config)
    resolved["split_fractions"] = list(config.split_fractions)
    resolved["workers"] = workers
    utterances = [
        {
            "path": p.rel,
            "split": p.split,
            "speaker": p.speaker,
            "utt": p.utt,
            "seed": p.seed,
            "n_frames": _n_frames(p.seconds, config.fps),
            "seconds": _n_frames(p.seconds, config.fps) / config.fps,
            "audio_shift_frames": 0,
        }
        for p in plan
    ]
    meta = {"config": resolved, "avkd_version": __version__, "utterances": utterances}
    atomic_write_text(root / "synth.json", json.dumps(meta, indent=1) + "\n")
    counts = {split: sum(p.split == split for p in plan) for split in SPLITS}
    return SynthSummary(
        root=root,
        counts=counts,
        seconds=sum(u["seconds"] for u in utterances),
        elapsed=time.perf_counter() - began,
    )
