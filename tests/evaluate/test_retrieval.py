"""The evaluation over a feature store: clips skipped, the unweighted mean over clips, kept score matrices."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avkd.evaluate.retrieval import evaluate_sync
from avkd.evaluate.sync import predicted_offsets
from avkd.report.tables import sync_evaluation_table
from tests.evaluate.sync_helpers import FakeStore, Oracle, pattern_clip


def test_mean_over_clips_is_unweighted() -> None:
    ramp = 5.0 * np.arange(60)  # brightness ramp: a wrong candidate scores −(25·Δd)², so ties cannot happen
    store = FakeStore(
        {
            "test/a/1": pattern_clip(ramp, 10, 0),  # W = 6, in sync: every row correct
            # W = 26, audio lags by 5: rows 0..20 find d = +5 (wrong); rows 21..25 lack it and pick the largest
            # valid d = 25 − i, which is within ±1 only for rows 24 and 25.
            "test/a/2": pattern_clip(ramp, 30, 5),
            "test/a/3": pattern_clip(ramp, 4, 0),  # no window: skipped
        }
    )
    ticks: list[int] = []
    ev = evaluate_sync(Oracle(), store, "test", [5, 7], progress=ticks.append, keep_scores=True)
    assert ev.skipped == ["test/a/3"]
    assert len(ticks) == 3
    assert [c.windows for c in ev.clips] == [6, 26]
    assert ev.clips[0].accuracy[5] == 1.0
    assert ev.clips[1].accuracy[5] == pytest.approx(2 / 26)
    assert ev.accuracy[5] == pytest.approx((1.0 + 2 / 26) / 2)  # not the row-weighted (6 + 2) / 32
    assert ev.clips[1].scores is not None and ev.clips[1].scores.shape == (26, 31)
    assert predicted_offsets(ev.clips[1].scores)[:21].tolist() == [5] * 21
    table = sync_evaluation_table(ev, "oracle")
    assert "| model | clips | K5 | K7 |" in table and f"| oracle | 2 | {100 * ev.accuracy[5]:.2f} |" in table
    blob = json.loads(json.dumps(ev.to_json()))
    assert blob["accuracy"]["5"] == pytest.approx(ev.accuracy[5]) and blob["skipped"] == ["test/a/3"]
    sub = evaluate_sync(Oracle(), store, "test", [5], keys=["test/a/1"])
    assert sub.accuracy == {5: 1.0} and sub.clips[0].scores is None
