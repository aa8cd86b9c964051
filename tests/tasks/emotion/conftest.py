"""The synthetic CMU-MOSEI corpus ingested once for the emotion task's tests, at short sequence lengths.

(text, audio, vision) = (4, 40, 40) instead of MulT's (50, 500, 500): every model, loss and stage takes any
length, the EDAM-S proxies need text = vision / 10 and audio = vision (which these keep), and the 500×500
attention maps of the real lengths would make each training step ~100x dearer without checking anything more.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from avkd.data.mosei.ingest import MoseiIngestConfig, ingest_mosei
from avkd.data.mosei.synthetic import synthesize_mosei

SHORT = MoseiIngestConfig(text_len=4, audio_len=40, vision_len=40)


@pytest.fixture(scope="session")
def mosei_features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic corpus (``root/csd``) ingested at :data:`SHORT` lengths (``root/feats``)."""
    root = tmp_path_factory.mktemp("mosei")
    synthesize_mosei(root / "csd")
    return ingest_mosei(SHORT, root / "csd", root / "feats").path
