"""The synthetic CMU-MOSEI corpus the data tests share (built once per session by ``conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avkd.core.artifacts import load_artifact
from avkd.core.errors import ArtifactError
from avkd.data.mosei.ingest import MoseiIngestConfig, ingest_mosei
from avkd.data.mosei.synthetic import SynthMoseiConfig, synthesize_mosei

# Short sequences so that truncation happens (segments hold up to ~10 words, 300 audio and 90 video frames).
LENGTHS = {"text_len": 8, "audio_len": 120, "vision_len": 40}
SYNTH = SynthMoseiConfig(seed=3, **LENGTHS)
INGEST = MoseiIngestConfig(**LENGTHS)
COVAREP = "acoustic/CMU_MOSEI_COVAREP.csd"
FACET = "visual/CMU_MOSEI_VisualFacet42.csd"
WORDS = "language/CMU_MOSEI_TimestampedWordVectors.csd"
PICKLE = "mosei_senti_data_noalign.pkl"


def build_corpus(root: Path) -> dict:
    """``root/csd`` (SDK layout) and ``root/PICKLE`` (MulT's file) from :data:`SYNTH`, both ingested."""
    summary = synthesize_mosei(root / "csd", SYNTH, pickle_path=root / PICKLE)
    from_csd = ingest_mosei(INGEST, root / "csd", root / "from_csd")
    from_pkl = ingest_mosei(INGEST, root / PICKLE, root / "from_pkl")
    return {"root": root, "summary": summary, "csd": from_csd, "pkl": from_pkl}


def assert_nothing_complete(out: Path) -> None:
    assert not out.exists()
    with pytest.raises(ArtifactError):
        load_artifact(out)
