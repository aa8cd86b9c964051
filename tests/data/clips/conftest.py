"""A tiny synthetic clip corpus and its features, built once per session (read-only: copy before changing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avkd.data.clips.preprocess import ClipsPreprocessConfig, preprocess_clips
from avkd.data.clips.synthetic import SynthClipsConfig, synthesize_clips

#: 3 classes x 3 clips of 1.2 s at 64x48 (train 2, test 1 per class).
TINY = SynthClipsConfig(classes=3, clips_per_class=3, seconds=1.2, width=64, height=48, seed=3, workers=1)
#: The toy AVSiam's inputs (avkd/models/avsiam.py SIZES["toy"]): 32x32 frames, a 32 x 64 fbank; 4 clips a part.
SMALL = ClipsPreprocessConfig(size=32, mel_bins=32, mel_frames=64, part_size=4)


@pytest.fixture(scope="session")
def clip_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clips") / "vgg"
    synthesize_clips(root, TINY)
    return root


@pytest.fixture(scope="session")
def clip_features(clip_corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("clip-features") / "feats"
    return preprocess_clips(
        SMALL, clip_corpus, clip_corpus / "vggsound.csv", out, show_progress=False
    ).artifact
