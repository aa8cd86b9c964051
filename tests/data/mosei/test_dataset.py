"""``MoseiDataset`` (``avkd.data.mosei.dataset``): the stored tensors, batching, pickling for workers."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avkd.data.mosei.dataset import MoseiDataset
from avkd.data.mosei.format import FEATURES


def test_dataset_returns_the_stored_tensors(corpus: dict) -> None:
    ds = MoseiDataset(corpus["csd"].path, "test")
    assert len(ds) == corpus["csd"].metrics["per_split"]["test"]
    text, audio, vision, label, index = ds[2]
    assert text.shape == (8, 300) and audio.shape == (120, 74) and vision.shape == (40, 35)
    assert text.dtype == audio.dtype == vision.dtype == label.dtype == torch.float32
    assert index == 2 and label.ndim == 0
    with h5py.File(corpus["csd"].path / FEATURES, "r") as h5:
        np.testing.assert_array_equal(audio.numpy(), h5["test"]["audio"][2])
        np.testing.assert_array_equal(text.numpy(), h5["test"]["text"][2])
        assert label.item() == pytest.approx(float(h5["test"]["label"][2]))
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch[1].shape == (4, 120, 74) and batch[4].tolist() == [0, 1, 2, 3]
    ds2 = pickle.loads(pickle.dumps(ds))  # what DataLoader workers receive: no open handle crosses
    torch.testing.assert_close(ds2[2][2], vision)
    with pytest.raises(IndexError):
        ds[len(ds)]
    ds.close()
