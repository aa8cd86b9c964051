"""Torch datasets over feature artifacts.

:class:`SyncDataset` draws VocaLiST training samples (docs/reference/vocalist.md §3.1): a window of T consecutive lower-half face
crops and a mel window that is either aligned with it (label 1) or taken at another offset of the same clip
(label 0), 50/50.

Choices where the reference is loose, and why:
- Sample ``i`` of epoch ``e`` is a pure function of (seed, e, i). The reference ignores the index and draws from
  the global RNG, so its validation set changes every epoch (pain point §7.6); here ``epoch=0`` of a validation
  dataset is a fixed sample set, comparable across epochs, and training is reproducible from the seed.
- Negative offsets are limited to ``min_offset..max_offset`` frames either side (default 1..15). The reference
  allows any offset within the clip, including ±1 frame, which the test protocol counts as in sync; set
  ``min_offset=2`` to keep negatives outside that tolerance.
- The mel window is a slice of the stored whole-clip mel, ``[int(3.2·s), int(3.2·s)+16)`` — the evaluation-time
  framing of docs/reference/vocalist.md §4. ``mel_source="window"`` recomputes it from the 3,200 raw samples at ``640·s`` and
  drops the last step, the training-time framing of §1.4; the two differ only slightly (§1.4).
- Silence rule of §3.1: when the positive window's RMS is at most 0.01, the negative is redrawn (up to 10 times)
  until its audio is not silent.
- ``layout`` (an :class:`avkd.data.lrs2.layouts.InputLayout`; None = VocaLiST's, as above) cuts the windows for
  another model family: SyncNet's layout gives (3, 5, 224, 224) crops and (1, 13, 20) MFCC windows, and only
  windows whose audio fits in the clip's MFCC are drawn.
- ``pairing="same_window"`` (not in the reference, which draws every sample on its own): samples ``2k`` and
  ``2k+1`` share a clip and a video window, the first with its own audio (label 1), the second with audio at
  another offset (label 0). Every negative then differs from a positive of the same batch only in the audio's
  offset, which is what the retrieval protocol asks the model to tell apart. On the demo's corpus it raised a
  10-epoch teacher's K5 from 37.8 to 46.0 (K15 unchanged; README "What holds the demo's teacher back").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from avkd.core.errors import UsageError
from avkd.data.lrs2.store import FeatureStore
from avkd.media.audio import from_int16, vocalist_mel

MEL_STEPS_PER_FRAME = (
    3.2  # 80 mel steps/s over 25 frames/s (hop 200 at 16 kHz; docs/reference/vocalist.md §1.4)
)
SAMPLES_PER_FRAME = 640  # 16000 / 25


@dataclass
class SyncSamplingConfig:
    """How sync training samples are drawn and laid out."""

    frames: int = 5
    min_offset: int = 1
    max_offset: int = 15
    positive_fraction: float = 0.5
    #: Pixel convention of the model's input: the official VocaLiST checkpoint expects BGR in [0, 1]; the
    #: MTDVocaLiST release expects RGB in [0, 255] (docs/reference/vocalist.md §1.3).
    pixel_order: Literal["rgb", "bgr"] = "rgb"
    pixel_range: Literal["unit", "byte"] = "unit"
    mel_source: Literal["slice", "window"] = "slice"
    silence_rms: float = 0.01
    #: Clips shorter than this are not sampled (the reference skips clips of <= 25 frames).
    min_clip_frames: int = 26
    #: "independent" (the reference: each sample its own window, positive with ``positive_fraction``) or
    #: "same_window" (module docstring: pairs of samples share a video window, one positive, one negative;
    #: ``positive_fraction`` is then 1/2 by construction).
    pairing: Literal["independent", "same_window"] = "independent"


def mel_window_steps(frames: int) -> int:
    """Mel steps in a window of ``frames`` video frames: 16 for 5 (docs/reference/vocalist.md §1.4)."""
    return round(MEL_STEPS_PER_FRAME * frames)


def to_model_pixels(crops: np.ndarray, order: str = "rgb", scale: str = "unit") -> torch.Tensor:
    """(T, S, S, 3) uint8 RGB crops -> (3·T, S/2, S) float: lower half, channels [f0c0, f0c1, f0c2, f1c0, ...]."""
    lower = crops[:, crops.shape[1] // 2 :]
    if order == "bgr":
        lower = lower[..., ::-1]
    video = torch.from_numpy(np.ascontiguousarray(lower)).permute(0, 3, 1, 2)  # (T, 3, H, W)
    video = video.reshape(-1, *video.shape[2:]).float()
    return video / 255.0 if scale == "unit" else video


@dataclass(frozen=True)
class SamplePlan:
    key: str
    start: int  # first video frame
    audio_start: int  # frame whose audio is paired with it (== start for a positive)
    positive: bool


class SyncDataset(Dataset):
    """Balanced positive / negative (video window, mel window) pairs from an ``lrs2-features`` artifact."""

    def __init__(
        self,
        store: FeatureStore,
        split: str,
        config: SyncSamplingConfig | None = None,
        samples: int | None = None,
        seed: int = 0,
        layout: Any = None,
    ) -> None:
        self.store = store
        self.config = config or SyncSamplingConfig()
        self.layout = layout
        c = self.config
        if not 1 <= c.min_offset <= c.max_offset:
            raise UsageError(f"need 1 <= min_offset <= max_offset, got {c.min_offset}..{c.max_offset}")
        self.keys = [
            k
            for k in store.keys(split)
            if store.info(k)["n_frames"] >= max(c.min_clip_frames, c.frames + c.min_offset)
        ]
        if not self.keys:
            raise UsageError(f"{store.root}: no {split!r} clip has at least {c.min_clip_frames} frames")
        self.samples = samples if samples is not None else len(self.keys)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw a different (but reproducible) sample set for each training epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples

    def draw(self, index: int) -> SamplePlan:
        """Which clip, video window and audio window sample ``index`` uses (a pure function of seed/epoch/index)."""
        c = self.config
        paired = c.pairing == "same_window"
        # A pair's two samples draw the same clip and window from the same stream; the odd one goes on to
        # draw its offset.
        rng = np.random.default_rng([self.seed, self.epoch, index // 2 if paired else index])
        key = self.keys[rng.integers(len(self.keys))]
        n = self._frames(key)
        start = int(rng.integers(0, n - c.frames + 1))
        positive = index % 2 == 0 if paired else bool(rng.random() < c.positive_fraction)
        audio_start = start if positive else self._negative_start(rng, key, start, n)
        return SamplePlan(key, start, audio_start, positive)

    def _frames(self, key: str) -> int:
        """Frames a window may start in, plus ``frames − 1``: all of them, or (another layout) as many as the
        clip's audio features serve."""
        info = self.store.info(key)
        if self.layout is None:
            return int(info["n_frames"])
        return self.layout.clip_windows(info) + self.config.frames - 1

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.config
        plan = self.draw(index)
        crops = self.store.frames(plan.key, plan.start, plan.start + c.frames)
        label = torch.tensor(1.0 if plan.positive else 0.0)
        if self.layout is not None:
            video = self.layout.video_batch(self.layout.clip_pixels(crops, c.pixel_order, c.pixel_range), [0])
            features = torch.from_numpy(self.layout.clip_audio(self.store, plan.key))
            return video[0], self.layout.audio_batch(features, [plan.audio_start])[0], label
        video = to_model_pixels(crops, c.pixel_order, c.pixel_range)
        mel = torch.from_numpy(np.ascontiguousarray(self._mel(plan.key, plan.audio_start))).unsqueeze(0)
        return video, mel, label

    def _negative_start(self, rng: np.random.Generator, key: str, start: int, n: int) -> int:
        c = self.config
        offsets = np.concatenate(
            [np.arange(-c.max_offset, -c.min_offset + 1), np.arange(c.min_offset, c.max_offset + 1)]
        )
        offsets = offsets[(start + offsets >= 0) & (start + offsets <= n - c.frames)]
        choice = int(start + rng.choice(offsets))
        if self._rms(key, start) <= c.silence_rms:
            for _ in range(10):
                if self._rms(key, choice) > c.silence_rms:
                    break
                choice = int(start + rng.choice(offsets))
        return choice

    def _rms(self, key: str, start: int) -> float:
        lo = start * SAMPLES_PER_FRAME
        wave = self._wave(key, lo, lo + self.config.frames * SAMPLES_PER_FRAME)
        return float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0

    def _mel(self, key: str, start: int) -> np.ndarray:
        steps = mel_window_steps(self.config.frames)
        if self.config.mel_source == "slice":
            lo = int(MEL_STEPS_PER_FRAME * start)
            return self.store.mel(key, lo, lo + steps)
        lo = start * SAMPLES_PER_FRAME
        wave = self._wave(key, lo, lo + self.config.frames * SAMPLES_PER_FRAME)
        return vocalist_mel(wave)[:, :steps]

    def _wave(self, key: str, lo: int, hi: int) -> np.ndarray:
        audio = self.store.audio(key, lo, hi)
        return from_int16(audio) if audio.dtype == np.int16 else audio.astype(np.float32)
