"""Small sync models and clips shared by the evaluator's tests: a tiny VocaLiST, random clips, an oracle model
that scores by pattern match, clips with a known lag, and an in-memory feature store."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from avkd.models.vocalist import SyncTransformer

__all__ = ["FakeStore", "Oracle", "pattern_clip", "random_clip", "tiny_model"]


def tiny_model(seed: int = 0, video_frontend: str = "vocalist") -> SyncTransformer:
    """VocaLiST at width 16; ``video_frontend="lite"`` pools the crops first (~60x cheaper video encoding)."""
    torch.manual_seed(seed)
    model = SyncTransformer(width=16, channels=(4, 4, 8, 8, 16), video_frontend=video_frontend)
    for mod in model.modules():  # non-trivial frozen BN statistics, so eval mode matters
        if isinstance(mod, nn.BatchNorm2d | nn.BatchNorm3d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    return model


def random_clip(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    crops = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
    mel = rng.uniform(-4, 4, (80, 640 * n // 200 + 1)).astype(np.float32)
    return crops, mel


# ------------------------------------------------------------------------------------ oracle model and clips

#: Column of a 16-step audio window that lies inside frame t of the window, whatever int(3.2·i) rounded away.
ORACLE_COLUMNS = [int(3.2 * t + 2) for t in range(5)]  # [2, 5, 8, 11, 14]


class Oracle(nn.Module):
    """Score = −mean_t (brightness of video frame t − mel value inside audio frame t)²; 0 iff they match."""

    def encode_video(self, video: Tensor) -> Tensor:
        b = video.size(0)
        return video.view(b, 5, 3, 48, 96).mean(dim=(2, 3, 4)).T.unsqueeze(-1)  # (5, B, 1)

    def encode_audio(self, mel: Tensor) -> Tensor:
        return mel.mean(dim=(1, 2)).T.unsqueeze(-1)  # (16, B, 1)

    def fuse(self, v: Tensor, a: Tensor) -> Tensor:
        return -((v[:, :, 0] - a[ORACLE_COLUMNS, :, 0]) ** 2).mean(dim=0)

    def forward(self, video: Tensor, mel: Tensor) -> Tensor:
        return self.fuse(self.encode_video(video), self.encode_audio(mel))


def pattern_clip(values: np.ndarray, n: int, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame n shows brightness values[n + 20]; audio frame n carries values[n + 20 − lag] (audio lags by ``lag``)."""
    crops = np.broadcast_to(values[20 : 20 + n, None, None, None], (n, 96, 96, 3)).astype(np.uint8)
    cols = np.arange(640 * n // 200 + 1)
    audio_frame = (5 * cols) // 16  # floor(c / 3.2)
    mel = np.broadcast_to(values[audio_frame + 20 - lag][None, :] / 255.0, (80, cols.size)).astype(np.float32)
    return crops, mel


class FakeStore:
    """Duck-typed FeatureStore over in-memory clips."""

    def __init__(self, clips: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        self.clips = clips

    def keys(self, split: str | None = None) -> list[str]:
        return list(self.clips)

    def info(self, key: str) -> dict:
        return {"n_frames": self.clips[key][0].shape[0]}

    def frames(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        return self.clips[key][0][start:stop]

    def mel(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        return self.clips[key][1][:, start:stop]
