"""A resumed preprocessing run proves what it keeps: a part deleted or damaged while the run was down is rebuilt,
never written over, and the finished index names only utterances that are there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avkd.core.jsonl import read_jsonl
from avkd.data.lrs2 import preprocess as pre
from avkd.data.lrs2.preprocess import LRS2PreprocessConfig, preprocess_lrs2
from avkd.data.lrs2.store import FeatureStore

CONFIG = LRS2PreprocessConfig(part_size=2)


def killed_after(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    real = pre._process
    calls = {"n": 0}

    def dying(utt):
        calls["n"] += 1
        if calls["n"] == n + 1:
            raise KeyboardInterrupt  # a kill after n utterances
        return real(utt)

    monkeypatch.setattr(pre, "_process", dying)


def contents(art) -> dict[str, tuple]:
    store = FeatureStore(art)
    return {k: (store.frames(k), store.audio(k), store.mel(k)) for k in store}


@pytest.mark.parametrize("damage", ["delete", "zero", "truncate"])
def test_a_part_lost_while_the_run_was_down_is_rebuilt(
    damage: str, features, synth_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "feats"
    killed_after(monkeypatch, 8)  # four parts of two utterances on disk
    with pytest.raises(KeyboardInterrupt):
        preprocess_lrs2(CONFIG, synth_corpus, out, show_progress=False)
    parts = Path(f"{out}.partial") / "parts"
    assert sorted(p.name for p in parts.glob("part-*.h5")) == [f"part-{i:05d}.h5" for i in range(4)]
    lost = parts / "part-00001.h5"
    if damage == "delete":
        lost.unlink()
    elif damage == "zero":
        lost.write_bytes(bytes(lost.stat().st_size))
    else:
        lost.write_bytes(lost.read_bytes()[:500])
    kept = {p.name: p.read_bytes() for p in parts.glob("part-*.h5") if p != lost}
    monkeypatch.undo()
    result = preprocess_lrs2(CONFIG, synth_corpus, out, resume=True, show_progress=False)
    assert result.skipped == 6 and result.processed == 4  # the lost part's two, and the two never reached
    for name, data in kept.items():  # no kept part was written over
        assert (out / "parts" / name).read_bytes() == data
    index = read_jsonl(out / "utterances.jsonl")
    assert all((out / e["part"]).is_file() for e in index)
    assert sorted(e["key"] for e in index) == sorted(
        e["key"] for e in read_jsonl(features.path / "utterances.jsonl")
    )
    reference = contents(features)
    for key, arrays in contents(result.artifact).items():
        for a, b in zip(arrays, reference[key], strict=True):
            np.testing.assert_array_equal(a, b)
