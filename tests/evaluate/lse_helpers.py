"""Helpers of the LSE tests: a sync model with SyncNet's inputs whose embeddings are sync-sensitive by design, and
real-format talking-head mp4 files (any frame rate, 44.1 kHz stereo AAC, the face off-centre).

``test_lse_oracle`` has no parameters to train, so the offset tests do not depend on a training run. Each
5-frame window is embedded as a 5-vector, z-scored: the video one holds, per frame, the spread of grey levels
in the mouth area of the 224x224 SyncNet crop (an open mouth of the synthetic face is dark inside, with lips
and teeth); the audio one holds, per frame, its loudness from MFCC c0 (the log frame energy).
The Euclidean distance of two z-scored 5-vectors is ``sqrt(10·(1 − r))`` for their correlation ``r``, so it is
smallest where mouth and voice move together, i.e. at the true offset (windows that hardly change are damped,
see :func:`_zscore`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from avkd.data.lrs2.synthetic import render_utterance, speaker_style
from avkd.media.audio import resample
from avkd.media.encode import write_mp4
from avkd.models.io import ModelSpec, save_weights
from avkd.models.registry import build_model, is_model, register_model

#: Rows and columns of the 224x224 crop that hold the synthetic mouth, for the Haar crop of a face drawn at
#: 160 px (mouth at about rows 90..136, columns 82..140) and for the fixed-box crop of a 160x160 frame (rows
#: 101..152, columns 80..144), with a margin.
MOUTH_ROWS = slice(85, 158)
MOUTH_COLS = slice(72, 152)


def _zscore(x: Tensor) -> Tensor:
    """Centred and scaled to unit spread; a window that hardly changes (silence, a still mouth) is scaled less
    (5% of its mean is added to the spread), so that its noise does not weigh as much as a moving mouth."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) / (x.std(dim=1, unbiased=False, keepdim=True) + 0.05 * mean.abs() + 1e-3)


class LseOracle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("dummy", torch.zeros(1))  # load_state_dict(strict=True) needs a state dict

    def encode_video(self, frames: Tensor) -> Tensor:  # (B, 3, 5, 224, 224), RGB 0..255
        mouth = frames[:, :, :, MOUTH_ROWS, MOUTH_COLS].mean(dim=1)  # (B, 5, h, w) grey
        return _zscore(mouth.flatten(2).std(dim=2)).unsqueeze(0)  # (1, B, 5): SyncNet's token layout

    def encode_audio(self, mfcc: Tensor) -> Tensor:  # (B, 1, 13, 20)
        # Loudness per video frame: exp(c0 / 2) is the frame's RMS amplitude (c0 = log of its energy), as the
        # mouth follows the amplitude envelope; of a frame's 4 MFCC steps the first 3, whose 25 ms frames lie
        # mostly inside its 40 ms (the 4th reaches 15 ms into the next frame).
        loudness = torch.exp(mfcc[:, 0, 0] / 2).reshape(mfcc.shape[0], 5, 4)[:, :, :3].mean(dim=2)  # (B, 5)
        return _zscore(loudness).unsqueeze(0)

    def forward(self, video: Tensor, mfcc: Tensor) -> Tensor:
        return -torch.nn.functional.pairwise_distance(self.encode_video(video)[0], self.encode_audio(mfcc)[0])


if not is_model("test_lse_oracle"):

    @register_model(name="test_lse_oracle")
    def test_lse_oracle() -> LseOracle:
        return LseOracle()


def lse_oracle_model(path: Path) -> Path:
    """The oracle as a bare ``model.pt`` (what ``--model`` takes besides an artifact), at ``path``."""
    save_weights(path, build_model("test_lse_oracle"), ModelSpec("test_lse_oracle", {}, "rgb", "byte"))
    return path


def talking_head(
    path: Path,
    *,
    fps: float = 25.0,
    sample_rate: int = 44100,
    shift: int = 0,
    seconds: float = 2.4,
    seed: int = 3,
    canvas: tuple[int, int] | None = (320, 240),
    at: tuple[int, int] = (130, 50),
    stereo: bool = True,
    face: bool = True,
) -> Path:
    """A synthetic talking face as a real-format mp4: ``fps`` video, ``sample_rate`` AAC (stereo: the two
    channels differ slightly), the 160x160 face pasted at ``at`` (x, y) into a ``canvas`` (width, height) of
    background colour, or the bare 160x160 frames (``canvas=None``). ``shift`` delays the voice by that many
    frames of ``fps`` (negative: advances it). ``face=False`` paints the face region over (no face to find)."""
    # The renderer needs whole samples per frame (22 fps at 44.1 kHz has none): render at the nearest rate that
    # has them and resample, as a camera's audio would be at its own rate.
    render_rate = round(sample_rate / fps) * round(fps)
    frames, audio = render_utterance(seed, seconds, speaker_style(seed), fps, 160, render_rate, shift)
    audio = resample(audio, render_rate, sample_rate)
    if canvas is not None:
        width, height = canvas
        big = np.empty((frames.shape[0], height, width, 3), np.uint8)
        big[:] = frames[:, :1, :1]  # the corner pixel: the background of the drawn frame
        x, y = at
        big[:, y : y + 160, x : x + 160] = frames
        frames = big
    if not face:
        frames[:] = frames[:, :1, :1]
    wave = np.stack([audio, 0.9 * audio]) if stereo else audio
    write_mp4(path, frames, fps, wave, sample_rate=sample_rate)
    return path
