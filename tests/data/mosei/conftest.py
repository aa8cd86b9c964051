"""The synthetic CMU-MOSEI corpus, built and ingested once for the data tests (tests/data/mosei/corpus.py)."""

from __future__ import annotations

import pytest

from tests.data.mosei.corpus import build_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """{"root", "summary", "csd", "pkl"}: read-only (copy before changing anything)."""
    return build_corpus(tmp_path_factory.mktemp("mosei"))
