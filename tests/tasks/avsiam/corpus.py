"""The pre-training tests' corpus: tiny synthetic clips at the toy AVSiam's input sizes, built once per session
(whichever test module asks first) and shared through the session's base temp folder (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avkd.core.artifacts import is_complete
from avkd.data.clips.preprocess import ClipsPreprocessConfig, preprocess_clips
from avkd.data.clips.synthetic import SynthClipsConfig, synthesize_clips

#: 3 classes x 4 clips of 1.2 s at 64x48: 9 train clips, 3 test clips.
CORPUS = SynthClipsConfig(classes=3, clips_per_class=4, seconds=1.2, width=64, height=48, seed=3, workers=1)
#: The toy AVSiam's inputs (SIZES["toy"]): 32x32 frames, a 32 x 64 fbank.
TOY = ClipsPreprocessConfig(size=32, mel_bins=32, mel_frames=64, part_size=4)


def pretrain_features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp() / "avsiam-pretrain"
    feats = base / "feats"
    if not is_complete(feats):
        synthesize_clips(base / "root", CORPUS)
        preprocess_clips(TOY, base / "root", base / "root" / "vggsound.csv", feats, show_progress=False)
    return feats
