"""Runs of consecutive windows of one clip, for the Perfect Match objective (avkd/losses/embedding.py).

Each sample is ``steps`` consecutive 5-frame windows ``s..s+steps−1`` of one clip: the video windows and the
audio windows at the same positions, in a model's input layout (:mod:`avkd.data.lrs2.layouts`). The loss then
classifies every video step among all audio steps of its run, as joonson/syncnet_trainer does over the time
steps of one clip (docs/reference/avsiam-mfh-syncnet.md §3.6). As in
:class:`avkd.data.lrs2.dataset.SyncDataset`, sample ``i`` of epoch ``e`` is a pure function of (seed, e, i).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from avkd.core.errors import UsageError
from avkd.data.lrs2.layouts import InputLayout
from avkd.data.lrs2.store import FeatureStore

__all__ = ["SyncSequenceDataset"]


class SyncSequenceDataset(Dataset):
    """(video (steps, ...), audio (steps, ...)) runs of consecutive windows; see the module docstring."""

    def __init__(
        self,
        store: FeatureStore,
        split: str,
        layout: InputLayout,
        steps: int = 8,
        samples: int | None = None,
        seed: int = 0,
        pixel_order: str = "rgb",
        pixel_range: str = "unit",
    ) -> None:
        if steps < 2:
            raise UsageError(f"a run needs at least 2 windows to match among, got steps={steps}")
        self.store, self.layout, self.steps = store, layout, steps
        self.pixel_order, self.pixel_range = pixel_order, pixel_range
        self.windows = {k: layout.clip_windows(store.info(k)) for k in store.keys(split)}
        self.keys = [k for k, w in self.windows.items() if w >= steps]
        if not self.keys:
            raise UsageError(f"{store.root}: no {split!r} clip has {steps} windows ({steps + 4} frames)")
        self.samples = samples if samples is not None else len(self.keys)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples

    def draw(self, index: int) -> tuple[str, int]:
        """The clip and first window of sample ``index``."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        key = self.keys[rng.integers(len(self.keys))]
        return key, int(rng.integers(0, self.windows[key] - self.steps + 1))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        key, start = self.draw(index)
        idx = range(self.steps)
        crops = self.store.frames(key, start, start + self.steps + 4)
        pixels = self.layout.clip_pixels(crops, self.pixel_order, self.pixel_range)
        features = torch.from_numpy(self.layout.clip_audio(self.store, key))
        audio = self.layout.audio_batch(features, [start + i for i in idx])
        return self.layout.video_batch(pixels, idx), audio
