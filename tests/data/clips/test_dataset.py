"""The clips dataset: shapes and dtypes of (fbank, frames, label), pixel conventions, and the toy AVSiam on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avkd.core.errors import UsageError
from avkd.data.clips.dataset import IMAGENET_MEAN, IMAGENET_STD, ClipDataset, normalize_frames
from avkd.data.clips.store import ClipStore
from avkd.models.avsiam import AVSiam


def test_items(clip_features) -> None:
    data = ClipDataset(clip_features, split="train")
    assert len(data) == 6 and data.num_classes == 3 and not data.multi_label
    fbank, frames, label = data[0]
    assert fbank.shape == (1, 32, 64) and fbank.dtype == torch.float32
    assert frames.shape == (10, 3, 32, 32) and frames.dtype == torch.float32
    assert label.dtype == torch.int64 and label.ndim == 0
    store = ClipStore(clip_features)
    key = data.keys[0]
    raw = torch.from_numpy(store.frames(key)).permute(0, 3, 1, 2)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    assert torch.allclose(frames, (raw / 255.0 - mean) / std, atol=1e-6)
    assert torch.equal(fbank[0], torch.from_numpy(store.fbank(key))) and int(label) == store.labels(key)[0]
    _, as_bytes, _ = ClipDataset(clip_features, "train", pixels="uint8")[0]
    assert as_bytes.dtype == torch.uint8 and torch.equal(as_bytes, raw)
    assert torch.allclose(normalize_frames(as_bytes), frames, atol=1e-6)
    _, unit, _ = ClipDataset(clip_features, "train", pixels="unit")[0]
    assert torch.allclose(unit, raw / 255.0)
    _, one, _ = ClipDataset(clip_features, "train", pixels="uint8", frame=5)[0]
    assert one.shape == (3, 32, 32) and torch.equal(one, raw[5])
    assert {int(ClipDataset(clip_features, "test")[i][2]) for i in range(3)} == {0, 1, 2}


def test_refusals(clip_features) -> None:
    with pytest.raises(UsageError, match="no clip in split 'val'"):
        ClipDataset(clip_features, split="val")
    with pytest.raises(UsageError, match=r"frames 0\.\.9"):
        ClipDataset(clip_features, frame=10)
    with pytest.raises(UsageError, match="pixels"):
        ClipDataset(clip_features, pixels="bgr")


def test_batches_feed_the_toy_avsiam(clip_features) -> None:
    """The stored sizes are the toy AVSiam's (audio (B, 1, 32, 64), video (B, 3, 32, 32)): one frame per clip."""
    loader = DataLoader(ClipDataset(clip_features, frame=5), batch_size=4, shuffle=False)
    fbank, video, label = next(iter(loader))
    assert fbank.shape == (4, 1, 32, 64) and video.shape == (4, 3, 32, 32) and label.shape == (4,)
    torch.manual_seed(0)
    model = AVSiam(size="toy", num_classes=3, decoder=False).eval()
    with torch.no_grad():
        logits = model(fbank, video)
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()
    loss = torch.nn.functional.cross_entropy(model(fbank, video), label)
    loss.backward()
    assert np.isfinite(loss.item()) and model.patch_embed_a.proj.weight.grad is not None
