"""A hand-built sync "model" for tests: scores a window pair by how well mouth darkness follows audio energy.

It has the interface of the sync models (``encode_video``, ``encode_audio``, ``fuse``) and no parameters to
train, so tests of the offset machinery and the CLI do not depend on a training run.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from avkd.models.io import ModelSpec, save_weights
from avkd.models.registry import build_model, is_model, register_model


class EnvelopeOracle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("dummy", torch.zeros(1))  # load_state_dict(strict=True) needs a state dict

    def encode_video(self, video: Tensor) -> Tensor:
        b = video.shape[0]
        frames = video.view(b, -1, 3, 48, 96)
        # Mouth area of the lower half of a fixed-box crop of a synthetic face: an open mouth (dark inside, lips,
        # teeth) spreads the grey levels, a closed one is mostly skin.
        spread = frames[:, :, :, 10:45, 25:71].mean(dim=2).flatten(2).std(dim=2)  # (B, T)
        return spread.t().unsqueeze(-1)  # (T, B, 1)

    def encode_audio(self, mel: Tensor) -> Tensor:
        return mel[:, 0].mean(dim=1).t().unsqueeze(-1)  # (T_a, B, 1): loudness per mel step

    def fuse(self, v: Tensor, a: Tensor) -> Tensor:
        video = v[..., 0].t()  # (B, 5)
        audio = nn.functional.adaptive_avg_pool1d(a[..., 0].t().unsqueeze(1), video.shape[1])[:, 0]  # (B, 5)
        video = (video - video.mean(1, keepdim=True)) / (video.std(1, keepdim=True) + 1e-6)
        audio = (audio - audio.mean(1, keepdim=True)) / (audio.std(1, keepdim=True) + 1e-6)
        return (video * audio).mean(1)

    def forward(self, video: Tensor, mel: Tensor) -> Tensor:
        return self.fuse(self.encode_video(video), self.encode_audio(mel))


if not is_model("test_envelope_oracle"):

    @register_model(name="test_envelope_oracle")
    def test_envelope_oracle() -> EnvelopeOracle:
        return EnvelopeOracle()


def oracle_model(path: Path) -> Path:
    """The oracle saved as a model artifact's weights file (what ``--model`` takes), at ``path``."""
    spec = ModelSpec("test_envelope_oracle", {}, "rgb", "unit")
    save_weights(path, build_model("test_envelope_oracle"), spec)
    return path
