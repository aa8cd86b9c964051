"""Input layouts: how a sync model's 5-frame windows are cut from one stored clip, so the evaluator and the
datasets serve VocaLiST and SyncNet from the same ``lrs2-features`` artifact code.

A model names its layout with a class attribute ``input_layout`` (default ``"vocalist"``, :func:`layout_of`):

* ``vocalist`` (docs/reference/vocalist.md §1.3, §4): video window ``i`` = the lower halves of crops ``i..i+4``
  stacked on the channel axis, (15, S/2, S); audio window ``i`` = columns ``[int(3.2·i), int(3.2·i) + 16)`` of
  the stored whole-clip mel (80, M).
* ``syncnet`` (docs/reference/avsiam-mfh-syncnet.md §3.3): video window ``i`` = whole crops ``i..i+4``
  as (3, 5, 224, 224); audio window ``i`` = columns ``[4·i, 4·i + 20)`` of the clip's MFCC (13, M) at 100 Hz,
  computed from the stored 16 kHz audio (:func:`avkd.media.audio.syncnet_mfcc`, ~10 ms per second of audio,
  so it is not stored). The crops must be 224×224: make the features artifact with
  ``avkd preprocess lrs2 ... --set crop_size=224``.

Colour order and value range (``pixel_order`` / ``pixel_range``) are the checkpoint's, as for every model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from avkd.core.errors import UsageError
from avkd.data.lrs2.dataset import to_model_pixels
from avkd.media.audio import mfcc_steps, syncnet_mfcc

__all__ = ["FRAMES", "LAYOUTS", "InputLayout", "layout_of"]

#: Frames per model input window (both layouts).
FRAMES = 5


@dataclass(frozen=True)
class InputLayout:
    """One way of cutting (video, audio) windows from a clip; see the module docstring."""

    name: str
    #: Rows of the clip's audio features and columns per window.
    audio_rows: int
    audio_window: int
    #: The crop side the model needs (None: any).
    crop_size: int | None = None

    # ------------------------------------------------------------------------------------------- audio

    def audio_start(self, i: int) -> int:
        """First audio column of window ``i``: ``int(80·i/25)`` exactly (mel), or ``4·i`` (MFCC at 100 Hz)."""
        return (16 * i) // 5 if self.name == "vocalist" else 4 * i

    def audio_windows(self, columns: int) -> int:
        """Windows ``i`` whose audio slice fits in ``columns`` columns."""
        if columns < self.audio_window:
            return 0
        if self.name == "vocalist":  # largest i with 16·i // 5 <= columns − 16
            return (5 * (columns - self.audio_window) + 4) // 16 + 1
        return (columns - self.audio_window) // 4 + 1

    def clip_audio(self, store: Any, key: str) -> np.ndarray:
        """The whole clip's audio features from a :class:`~avkd.data.lrs2.store.FeatureStore`: the stored mel
        (80, M), or the MFCC (13, M) of the stored audio."""
        if self.name == "vocalist":
            return store.mel(key)
        # int16 is used as is, float [-1, 1] on the int16 scale (syncnet_mfcc); stored audio is 16 kHz.
        return syncnet_mfcc(store.audio(key), int(store.info(key).get("sample_rate", 16000)))

    def record_audio(self, mel: np.ndarray, audio: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
        """The same as :meth:`clip_audio` for a clip in memory (its ``mel`` and 16 kHz ``audio``)."""
        return mel if self.name == "vocalist" else syncnet_mfcc(audio, sample_rate)

    def audio_batch(self, features: Tensor, idx: Sequence[int]) -> Tensor:
        """(rows, M) whole-clip features → (len(idx), 1, rows, audio_window) windows."""
        w = self.audio_window
        return torch.stack(
            [features[:, self.audio_start(j) : self.audio_start(j) + w] for j in idx]
        ).unsqueeze(1)

    # ------------------------------------------------------------------------------------------- video

    def check_crops(self, crops: np.ndarray, where: str = "") -> None:
        if self.crop_size is not None and tuple(crops.shape[1:3]) != (self.crop_size, self.crop_size):
            raise UsageError(
                f"{where + ': ' if where else ''}face crops are {crops.shape[1]}x{crops.shape[2]}; a {self.name} "
                f"model needs {self.crop_size}x{self.crop_size} (avkd preprocess lrs2 --set "
                f"crop_size={self.crop_size})"
            )

    def clip_pixels(self, crops: np.ndarray, order: str = "rgb", scale: str = "unit") -> Tensor:
        """(N, S, S, 3) uint8 RGB crops → the clip's model pixels: (3N, S/2, S) lower halves (vocalist) or
        (3, N, S, S) whole crops (syncnet), in ``order`` and ``scale`` (unit = /255, byte = 0..255)."""
        if self.name == "vocalist":
            return to_model_pixels(crops, order, scale)
        self.check_crops(crops)
        x = crops[..., ::-1] if order == "bgr" else crops
        video = torch.from_numpy(np.ascontiguousarray(x)).permute(3, 0, 1, 2).float()  # (3, N, S, S)
        return video / 255.0 if scale == "unit" else video

    def video_batch(self, pixels: Tensor, idx: Sequence[int]) -> Tensor:
        """Clip pixels → (len(idx), 15, S/2, S) or (len(idx), 3, 5, S, S) windows ``i..i+4``."""
        if self.name == "vocalist":
            c = 3 * FRAMES
            return torch.stack([pixels[3 * i : 3 * i + c] for i in idx])
        return torch.stack([pixels[:, i : i + FRAMES] for i in idx])

    def zero_audio(self, device: torch.device | str = "cpu") -> Tensor:
        """One all-zero audio window (1, 1, rows, audio_window): what the reference's padding feeds a model."""
        return torch.zeros(1, 1, self.audio_rows, self.audio_window, device=device)

    def audio_columns(self, info: dict[str, Any]) -> int:
        """Columns of a stored clip's audio features, from its index entry (``n_mel``, ``n_samples``)."""
        if self.name == "vocalist":
            return int(info["n_mel"])
        return mfcc_steps(int(info["n_samples"]))

    def clip_windows(self, info: dict[str, Any]) -> int:
        """Windows of a stored clip, from its index entry."""
        return self.windows(int(info["n_frames"]), self.audio_columns(info))

    def windows(self, n_frames: int, audio_columns: int) -> int:
        """Windows of a clip of ``n_frames`` frames and ``audio_columns`` feature columns: both must fit."""
        return min(max(0, n_frames - FRAMES + 1), self.audio_windows(audio_columns))


LAYOUTS: dict[str, InputLayout] = {
    "vocalist": InputLayout("vocalist", audio_rows=80, audio_window=16),
    "syncnet": InputLayout("syncnet", audio_rows=13, audio_window=20, crop_size=224),
}


def layout_of(model: Any) -> InputLayout:
    """The layout a model declares with ``input_layout`` (``"vocalist"`` when it declares none)."""
    name = getattr(model, "input_layout", "vocalist")
    try:
        return LAYOUTS[name]
    except KeyError:
        raise UsageError(f"model input layout {name!r}: choose {' or '.join(LAYOUTS)}") from None
