"""What one sync evaluation costs: multiply-adds per window and the evaluation's own throughput.

* **GMACs per window** (:func:`window_gmacs`): ``torch.utils.flop_counter.FlopCounterMode`` around one (video,
  audio) window of a real clip through ``encode_video`` + ``encode_audio`` + ``fuse``, on a copy of the model with
  the explicit math attention (so attention's matmuls are counted), MACs = FLOPs / 2 (the counter counts a
  multiply-add as two FLOPs) — :func:`avkd.models.bench.count_gmacs`, the count ``avkd bench`` reports. The
  31-candidate protocol scores each video window against up to 31 audio windows, but every window is encoded once
  (:func:`avkd.evaluate.sync.score_clip_and_silence`), so its cost per window is ``encode_video`` + ``encode_audio``
  + 31 ``fuse`` calls: :func:`window_gmacs` also returns that (``scored``). The count depends only on the shapes,
  so it is the same on every machine and run. An ONNX Runtime model (an export) has no PyTorch graph to count:
  None.
* **Throughput** (:class:`Throughput`): the scored video windows (and clips) over the evaluation's wall time
  (decoding, audio features, model calls; ``time.perf_counter``). It depends on the machine, the device and the
  threads, so it is recorded as a log of the run, outside the artifact's content id.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from avkd.data.lrs2.layouts import FRAMES, layout_of
from avkd.models.bench import count_gmacs

__all__ = ["Throughput", "window_gmacs"]

#: Audio candidates of one video window (2·15 + 1, docs/reference/vocalist.md §4).
CANDIDATES = 31


def _one_window(
    model: nn.Module, crops: np.ndarray, audio: np.ndarray, pixel_order: str, pixel_range: str
) -> tuple[Tensor, Tensor]:
    """Window 0 of a clip as the evaluator cuts it (the model's input layout): (1, ...) video and audio."""
    layout = layout_of(model)
    pixels = layout.clip_pixels(crops[:FRAMES], pixel_order, pixel_range)
    features = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    return layout.video_batch(pixels, [0]), layout.audio_batch(features, [0])


def window_gmacs(
    model: nn.Module,
    crops: np.ndarray,
    audio: np.ndarray,
    pixel_order: str = "rgb",
    pixel_range: str = "unit",
) -> dict[str, float] | None:
    """``{"pair": ..., "scored": ...}`` GMACs of one window (module docstring) cut from ``crops`` (N, S, S, 3)
    and the clip's audio features ``audio``; None for a model that is not a PyTorch module (an ONNX export)."""
    if not isinstance(model, nn.Module) or getattr(model, "precision", None):
        return None
    video, mel = _one_window(model, crops, audio, pixel_order, pixel_range)
    first = next(iter(model.parameters()), None)
    if first is not None:  # the inputs go where the model is (a CUDA evaluation counts on the GPU)
        video, mel = video.to(first.device), mel.to(first.device)

    def run(n: int) -> Any:
        def call(m: nn.Module) -> Tensor:
            v = m.encode_video(video)
            a = m.encode_audio(mel)
            return torch.stack([m.fuse(v, a) for _ in range(n)])

        return call

    return {"pair": count_gmacs(model, run(1)), "scored": count_gmacs(model, run(CANDIDATES))}


@dataclass(frozen=True)
class Throughput:
    """Scored windows and clips over the evaluation's wall time (machine-dependent)."""

    seconds: float
    windows: int
    clips: int

    @property
    def windows_per_second(self) -> float | None:
        return self.windows / self.seconds if self.seconds > 0 else None

    @property
    def clips_per_second(self) -> float | None:
        return self.clips / self.seconds if self.seconds > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "windows_per_second": self.windows_per_second,
            "clips_per_second": self.clips_per_second,
            "torch_threads": torch.get_num_threads(),
        }
