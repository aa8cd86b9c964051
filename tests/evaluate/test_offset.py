"""Single-video offset estimation (``avkd sync``) with an oracle model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from avkd.core.errors import AvkdError
from avkd.evaluate.offset import estimate_offset
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
