"""Single-video offset estimation (``avkd sync``) with an oracle model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from avkd.core.errors import AvkdError
from avkd.evaluate.offset import audio_level_dbfs, estimate_offset
from tests.evaluate.sync_helpers import Oracle, pattern_clip, random_clip


@pytest.mark.parametrize("lag", [0, 5, -7, 3])
def test_estimate_offset_recovers_known_lag(lag: int) -> None:
    values = np.random.default_rng(11).integers(0, 256, 80).astype(np.float64)
    crops, mel = pattern_clip(values, 40, lag)
    est = estimate_offset(Oracle(), crops, mel)
    assert est.offset_frames == lag  # the oracle aligns exactly
    assert est.offset_ms == pytest.approx(40.0 * lag)
    assert est.confidence > 0 and len(est.curve) == 31 and est.windows == 36
    json.dumps(est.to_json())


def test_estimate_offset_short_clip() -> None:
    crops, mel = random_clip(3)
    with pytest.raises(AvkdError, match="too short"):
        estimate_offset(Oracle(), crops, mel)
    crops, mel = random_clip(6)  # W = 2: offsets |d| >= 2 have no window
    est = estimate_offset(Oracle(), crops, mel)
    assert sum(math.isnan(v) for v in est.curve) == 31 - 3
    assert est.to_json()["curve"][0] is None


def _fake_scores(monkeypatch: pytest.MonkeyPatch, scores: np.ndarray) -> None:
    import avkd.evaluate.offset as offset

    monkeypatch.setattr(offset, "score_clip", lambda *args, **kwargs: scores)


def test_the_offset_needs_enough_windows_behind_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A 20-frame clip (16 windows) truly at +6, with three edge windows that happen to score +13 highest: the
    # mean of those three must not win (it did: +13 at confidence 4.5 on such a clip).
    w = 16
    scores = _matrix(w, {6: 1.0})
    scores[: w - 13, 13 + 15] = 5.0
    _fake_scores(monkeypatch, scores)
    est = estimate_offset(Oracle(), *random_clip(w + 4))
    assert est.offset_frames == 6
    assert est.support[13 + 15] == 3 and est.support[6 + 15] == 10
    assert est.candidates == int((~np.isnan(scores)).sum()) and est.windows == w
    assert est.flags() == ["short_clip"]  # 16 windows < 20, but +6 rests on 10 windows and is well inside
    assert est.low_confidence


def _matrix(w: int, value: dict[int, float]) -> np.ndarray:
    """Scores of a clip of ``w`` windows: 0 for every valid candidate, ``value[d]`` for offset d."""
    scores = np.full((w, 31), np.nan)
    for i in range(w):
        for d in range(-15, 16):
            if 0 <= i + d < w:
                scores[i, d + 15] = value.get(d, 0.0)
    return scores


def test_flags_of_an_honest_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    crops, mel = random_clip(60)
    _fake_scores(monkeypatch, _matrix(56, {3: 3.0}))  # a clear peak of 3 logits at +3, 56 windows
    clear = estimate_offset(Oracle(), crops, mel, audio_dbfs=-20.0)
    assert clear.offset_frames == 3 and clear.confidence == pytest.approx(3.0)
    assert clear.flags() == [] and not clear.low_confidence
    assert estimate_offset(Oracle(), crops, mel, audio_dbfs=-80.0).flags() == ["silent_audio"]
    blob = clear.to_json()
    assert blob["low_confidence"] is False and blob["flags"] == [] and blob["windows"] == 56
    assert blob["candidates"] == sum(blob["support"]) and blob["offsets_scored"] == 31
    # Almost flat, with its maximum at the edge of the search.
    _fake_scores(monkeypatch, _matrix(56, {-15: 0.1}))
    est = estimate_offset(Oracle(), crops, mel)
    assert est.offset_frames == -15 and est.flags() == ["edge_of_search", "weak_peak"]


def test_audio_level() -> None:
    assert audio_level_dbfs(np.zeros(100)) == -math.inf
    assert audio_level_dbfs(np.full(100, 0.5)) == pytest.approx(20 * math.log10(0.5))
