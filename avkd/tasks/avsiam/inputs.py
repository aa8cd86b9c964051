"""What AVSiam pre-training reads: one adapter per kind of features artifact, each turning it into the two patch
grids AVSiam takes (issue: "inputs for three kinds of data, each an adapter that turns a features artifact into
patch grids").

An adapter gives the model to build (its registered name and arguments, so that its input grids are the data's)
and, once it is built, the training and held-out datasets. Every item is ``(audio (1, F, T), video (C, H, W),
label)``; sample ``i`` of epoch ``e`` is a pure function of (seed, e, i), as the loop's resume needs.

* ``clips-features`` (VGGSound layout, :mod:`avkd.data.clips`): ``avsiam`` at the features' sizes; one random
  stored frame of each clip per epoch (the released loader, docs/reference/avsiam-mfh-syncnet.md §1.7), its
  128-bin fbank; held out: the middle stored frame.
* ``mosei-features`` (CMU-MOSEI, :mod:`avkd.data.mosei`): ``avsiam_emotion`` with its decoder; COVAREP (T, 74)
  and FACET (T, 35) as 1-channel maps, features as rows and time as columns
  (:meth:`~avkd.models.avsiam_emotion.AVSiamEmotion.audio_map`), the 7-class label. Text is not used.
* ``lrs2-features`` (:mod:`avkd.data.lrs2`): ``avsiam`` on VocaLiST's windows, 5 lower-half lip crops as a
  15-channel (S/2, S) map and the 80 × 16 mel window at the same position (docs/reference/vocalist.md §1.3); one
  random window of each clip per epoch, the middle one held out. The video is each frame's deviation from the
  window's mean (:func:`~avkd.models.avsiam_sync.motion_frames`), the input ``avsiam_sync`` reads by default,
  so that a model pre-trained here initialises it window for window (``avkd train teacher --model avsiam_sync
  --init``). The label is 0 (the corpus has none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from avkd.core.artifacts import CLIPS_FEATURES, LRS2_FEATURES, MOSEI_FEATURES, Artifact
from avkd.core.errors import UsageError
from avkd.data.clips.dataset import ClipDataset, normalize_frames
from avkd.data.clips.store import ClipStore
from avkd.data.lrs2.layouts import FRAMES, LAYOUTS
from avkd.data.lrs2.store import FeatureStore
from avkd.data.mosei.dataset import MoseiDataset
from avkd.data.mosei.labels import label7
from avkd.models.avsiam import SIZES
from avkd.models.avsiam_sync import AUDIO_SIZE, VIDEO_CHANNELS, motion_frames
from avkd.models.io import ModelSpec
from avkd.tasks.avsiam.config import AVSiamPretrainConfig

__all__ = [
    "ADAPTERS",
    "LRS2Windows",
    "MoseiMaps",
    "PretrainClips",
    "PretrainInputs",
    "check_sizes",
    "pretrain_inputs",
]


@dataclass
class PretrainInputs:
    """One adapter's answer: the model to build, then its datasets, and what to close at the end."""

    spec: ModelSpec
    #: The built model → (training dataset with ``set_epoch``, held-out dataset or None).
    datasets: Callable[[nn.Module], tuple[Dataset, Dataset | None]]
    close: Callable[[], None]


def _order(seed: int, epoch: int, n: int) -> tuple[np.random.Generator, np.ndarray]:
    rng = np.random.default_rng([seed, epoch])
    return rng, rng.permutation(n)


# ------------------------------------------------------------------------------------------------- clips


class PretrainClips(Dataset):
    """The clips of one split in a new order each epoch, each with one of its stored frames, both a pure function
    of (seed, epoch, index): the released pre-training feeds one random frame of the 10 (§1.7).

    Items are (fbank (1, F, T) float32, frame (3, S, S) float32 ImageNet-normalised, label)."""

    def __init__(self, clips: ClipDataset, seed: int) -> None:
        self.clips, self.seed = clips, seed
        self.frames = int(clips.store.artifact.config.get("frames", 10))
        self.epoch = 0
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng, self.order = _order(self.seed, epoch, len(self.clips))
        self.epoch = epoch
        self.frame = rng.integers(0, self.frames, len(self.clips))

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i, k = int(self.order[index]), int(self.frame[index])
        store, key = self.clips.store, self.clips.keys[i]
        fbank = torch.from_numpy(store.fbank(key)).unsqueeze(0)
        raw = np.ascontiguousarray(store.frames(key, k, k + 1))
        frame = normalize_frames(torch.from_numpy(raw).permute(0, 3, 1, 2)[0])
        return fbank, frame, self.clips.label(i)


def check_sizes(size: str, artifact: Artifact) -> None:
    """The ``size`` AVSiam's inputs (frame side, fbank bins × frames) must be the features'; a one-line usage
    error naming the artifact otherwise (before any model is built)."""
    if size not in SIZES:
        raise UsageError(f"unknown avsiam size {size!r}; choose one of {', '.join(SIZES)}")
    cfg, feats = SIZES[size], artifact.config
    have = (int(feats.get("size", 0)), int(feats.get("mel_bins", 0)), int(feats.get("mel_frames", 0)))
    want = (cfg.image_size, *cfg.audio_size)
    if have != want:
        raise UsageError(
            f"{artifact.path}: frames {have[0]}² and fbank {have[1]}×{have[2]} do not fit the {size!r} AVSiam "
            f"({want[0]}² frames, {want[1]}×{want[2]} fbank); preprocess with --size {want[0]} --mel-frames "
            f"{want[2]} --set mel_bins={want[1]}, or pick the size that fits"
        )


def _model_kwargs(config: AVSiamPretrainConfig, num_classes: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"size": config.size, "num_classes": config.num_classes or num_classes}
    if config.decoder_depth is not None:
        kwargs["decoder_depth"] = config.decoder_depth
    if config.patch_size is not None:
        kwargs["patch_size"] = config.patch_size
    return kwargs


def clips_inputs(config: AVSiamPretrainConfig, artifact: Artifact) -> PretrainInputs:
    check_sizes(config.size, artifact)
    if config.patch_size not in (None, SIZES[config.size].patch_size):
        raise UsageError(
            f"patch_size {config.patch_size}: clips features take the {config.size!r} size's patches "
            f"({SIZES[config.size].patch_size})"
        )
    store = ClipStore(artifact)
    try:
        train = ClipDataset(store, config.train_split)
        # Held out: the middle stored frame of each clip (fixed, so that epochs compare).
        middle = int(artifact.config.get("frames", 10)) // 2
        val = ClipDataset(store, config.val_split, frame=middle) if config.val_split else None
    except UsageError:
        store.close()
        raise
    spec = ModelSpec("avsiam", _model_kwargs(config, train.num_classes))
    return PretrainInputs(spec, lambda model: (PretrainClips(train, config.loop.seed), val), store.close)


# ------------------------------------------------------------------------------------------------- MOSEI


class MoseiMaps(Dataset):
    """The segments of one MOSEI split as ``model``'s maps (audio map, vision map as "video", 7-class label),
    in a new order each epoch when ``seed`` is given (a pure function of (seed, epoch)), else in split order."""

    def __init__(self, segments: MoseiDataset, model: nn.Module, seed: int | None) -> None:
        self.segments, self.model, self.seed = segments, model, seed
        self.epoch = 0
        self.order = np.arange(len(segments))
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.seed is not None:
            self.order = _order(self.seed, epoch, len(self.segments))[1]

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        _text, audio, vision, label, _index = self.segments[int(self.order[index])]
        with torch.no_grad():
            a = self.model.audio_map(audio.unsqueeze(0))[0]  # type: ignore[operator]
            v = self.model.vision_map(vision.unsqueeze(0))[0]  # type: ignore[operator]
        return a, v, label7(torch.as_tensor(label))


def mosei_inputs(config: AVSiamPretrainConfig, artifact: Artifact) -> PretrainInputs:
    lengths = artifact.config
    kwargs = _model_kwargs(config, 7)
    kwargs.update(
        decoder=True,
        audio_len=int(lengths.get("audio_len", 500)),
        vision_len=int(lengths.get("vision_len", 500)),
    )
    train = MoseiDataset(artifact, config.train_split)
    val = MoseiDataset(artifact, config.val_split) if config.val_split else None

    def datasets(model: nn.Module) -> tuple[Dataset, Dataset | None]:
        held_out = MoseiMaps(val, model, None) if val is not None else None
        return MoseiMaps(train, model, config.loop.seed), held_out

    return PretrainInputs(ModelSpec("avsiam_emotion", kwargs), datasets, lambda: None)


# ------------------------------------------------------------------------------------------------- LRS2


class LRS2Windows(Dataset):
    """One aligned window of each clip of a split: video (15, S/2, S) as motion frames, audio (1, 80, 16).

    With ``seed``, clip order and window are drawn per epoch (a pure function of (seed, epoch)); without, the
    clips in split order at their middle window (the held-out set)."""

    def __init__(self, store: FeatureStore, split: str, seed: int | None) -> None:
        self.store, self.seed = store, seed
        self.layout = LAYOUTS["vocalist"]
        windows = {k: self.layout.clip_windows(store.info(k)) for k in store.keys(split)}
        self.keys = [k for k, w in windows.items() if w > 0]
        if not self.keys:
            raise UsageError(f"{store.root}: no {split!r} clip has a {FRAMES}-frame window")
        self.windows = np.array([windows[k] for k in self.keys])
        self.epoch = 0
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.seed is None:
            self.order, self.start = np.arange(len(self.keys)), (self.windows - 1) // 2
            return
        rng, self.order = _order(self.seed, epoch, len(self.keys))
        self.start = (rng.random(len(self.keys)) * self.windows).astype(np.int64)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i = int(self.order[index])
        key, w = self.keys[i], int(self.start[i])
        pixels = self.layout.clip_pixels(self.store.frames(key, w, w + FRAMES))
        video = motion_frames(self.layout.video_batch(pixels, [0]))[0]
        mel = torch.from_numpy(self.layout.clip_audio(self.store, key))
        audio = self.layout.audio_batch(mel, [w])[0]
        return audio, video, torch.tensor(0)


def lrs2_inputs(config: AVSiamPretrainConfig, artifact: Artifact) -> PretrainInputs:
    side = int(artifact.config.get("crop_size", 96))
    kwargs = _model_kwargs(config, 1)
    kwargs.update(audio_size=list(AUDIO_SIZE), video_size=[side // 2, side], video_channels=VIDEO_CHANNELS)
    store = FeatureStore(artifact)
    try:
        train = LRS2Windows(store, config.train_split, config.loop.seed)
        val = LRS2Windows(store, config.val_split, None) if config.val_split else None
    except UsageError:
        store.close()
        raise
    return PretrainInputs(ModelSpec("avsiam", kwargs), lambda model: (train, val), store.close)


#: features kind → its adapter.
ADAPTERS: dict[str, Callable[[AVSiamPretrainConfig, Artifact], PretrainInputs]] = {
    CLIPS_FEATURES: clips_inputs,
    MOSEI_FEATURES: mosei_inputs,
    LRS2_FEATURES: lrs2_inputs,
}


def pretrain_inputs(config: AVSiamPretrainConfig, artifact: Artifact) -> PretrainInputs:
    """The adapter of ``artifact``'s kind; a one-line usage error naming the artifact for another kind."""
    adapter = ADAPTERS.get(artifact.kind)
    if adapter is None:
        raise UsageError(
            f"{artifact.path}: a {artifact.kind} artifact; AVSiam pre-trains on {', '.join(ADAPTERS)}"
        )
    return adapter(config, artifact)
