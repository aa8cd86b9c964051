"""Test-wide settings (one torch thread, seeded RNGs) and small synthetic corpora built once per session."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from avkd.data.lrs2.preprocess import LRS2PreprocessConfig, preprocess_lrs2
from avkd.data.lrs2.synthetic import SynthLRS2Config, synthesize_lrs2

torch.set_num_threads(1)

SMALL = SynthLRS2Config(utterances=10, speakers=3, seed=7, min_seconds=1.2, max_seconds=1.8, workers=1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 clips of 1.2-1.8 s: pretrain 4-5, train 2, val 1-2, test 2 (read-only: copy before changing it)."""
    root = tmp_path_factory.mktemp("corpus") / "lrs2"
    synthesize_lrs2(root, SMALL)
    return root


@pytest.fixture(scope="session")
def features(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    """The corpus preprocessed with default settings (parts of 4 utterances)."""
    out = tmp_path_factory.mktemp("features") / "feats"
    return preprocess_lrs2(LRS2PreprocessConfig(part_size=4), synth_corpus, out, show_progress=False).artifact
