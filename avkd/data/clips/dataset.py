"""Torch dataset over a ``clips-features`` artifact: (fbank, frames, label) per clip, the inputs of AVSiam.

Item ``i`` is

- ``fbank`` (1, B, T) float32, B = 128 mel bins (rows) by T = 1024 frames (columns), normalised as stored: the
  orientation :class:`avkd.models.avsiam.AVSiam` takes (the released loader returns (1024, 128) and its model
  transposes it, docs/reference/avsiam-mfh-syncnet.md §1.7);
- ``frames`` (F, 3, S, S), F = 10 and S = 224 by default, or (3, S, S) with ``frame=k``: ``pixels="imagenet"``
  (default) gives float32 normalised with the ImageNet mean and std that the release applies after its resize
  (timm's ``IMAGENET_DEFAULT_MEAN`` / ``_STD``), ``"unit"`` float32 in [0, 1], ``"uint8"`` the stored bytes (4x
  less to collate; :func:`normalize_frames` then normalises on the device);
- ``label``: the class index as an int64 scalar for a single-label corpus (VGGSound), a float32 multi-hot vector
  over the classes for a multi-label one (AudioSet).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from avkd.core.errors import UsageError
from avkd.data.clips.store import ClipStore

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PIXELS", "ClipDataset", "normalize_frames"]

#: timm's IMAGENET_DEFAULT_MEAN / IMAGENET_DEFAULT_STD, the normalisation of the released loaders (§1.7).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
PIXELS: tuple[str, ...] = ("imagenet", "unit", "uint8")


def normalize_frames(frames: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) uint8 (or float in 0..255) → float32 ``(x / 255 − mean) / std``, on ``frames``' device."""
    mean = torch.tensor(IMAGENET_MEAN, device=frames.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=frames.device).view(3, 1, 1)
    return (frames.float() / 255.0 - mean) / std


class ClipDataset(Dataset):
    """The clips of one split (all clips when ``split`` is None) of a ``clips-features`` artifact."""

    def __init__(
        self,
        store: ClipStore | str | Path,
        split: str | None = None,
        pixels: Literal["imagenet", "unit", "uint8"] = "imagenet",
        frame: int | None = None,
    ) -> None:
        self.store = store if isinstance(store, ClipStore) else ClipStore(store)
        if pixels not in PIXELS:
            raise UsageError(f"pixels {pixels!r}: choose from {', '.join(PIXELS)}")
        self.keys = self.store.keys(split)
        if not self.keys:
            splits = sorted({row["split"] for row in self.store.entries.values()})
            raise UsageError(f"{self.store.root}: no clip in split {split!r} (it has {', '.join(splits)})")
        n_frames = int(self.store.artifact.config.get("frames", 10))
        if frame is not None and not 0 <= frame < n_frames:
            raise UsageError(f"frame {frame}: the artifact stores frames 0..{n_frames - 1} of each clip")
        self.pixels = pixels
        self.frame = frame
        self.num_classes = len(self.store.classes)
        self.multi_label = self.store.multi_label

    def __len__(self) -> int:
        return len(self.keys)

    def label(self, index: int) -> torch.Tensor:
        labels = self.store.labels(self.keys[index])
        if self.multi_label:
            hot = torch.zeros(self.num_classes, dtype=torch.float32)
            hot[labels] = 1.0
            return hot
        return torch.tensor(labels[0], dtype=torch.int64)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = self.keys[index]
        fbank = torch.from_numpy(self.store.fbank(key)).unsqueeze(0)
        if self.frame is None:
            raw = self.store.frames(key)
        else:
            raw = self.store.frames(key, self.frame, self.frame + 1)
        video = torch.from_numpy(np.ascontiguousarray(raw)).permute(0, 3, 1, 2)  # (F, 3, S, S)
        if self.frame is not None:
            video = video[0]
        if self.pixels == "imagenet":
            video = normalize_frames(video)
        elif self.pixels == "unit":
            video = video.float() / 255.0
        return fbank, video, self.label(index)
