"""``avkd sync VIDEO`` (``avkd.tasks.sync.offset``) on real mp4 files, with the envelope oracle as the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avkd.cli.main import main
from avkd.data.lrs2.synthetic import speaker_style, write_utterance
from tests.oracle import oracle_model


@pytest.mark.parametrize("shift", [0, 4, -6])
def test_sync_cli_recovers_a_known_offset(tmp_path: Path, capsys, shift: int) -> None:
    video = tmp_path / f"shift{shift}.mp4"
    write_utterance(video, seed=11, seconds=4.0, style=speaker_style(3), audio_shift_frames=shift)
    model = oracle_model(tmp_path / "oracle.pt")
    code = main(["sync", str(video), "--model", str(model), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert abs(out["offset_frames"] - shift) <= 1
    assert len(out["curve"]) == 31 and out["confidence"] > 0


def test_sync_cli_bad_video(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope")
    code = main(["sync", str(bad), "--model", str(oracle_model(tmp_path / "o.pt"))])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"error: {bad}: ") and err.count("\n") == 1
