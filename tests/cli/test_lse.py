"""``avkd lse VIDEO... --model DIR``: JSON and CSV output, per-video errors and the exit code, on real-format files
(22–30 fps, 44.1 kHz stereo AAC, the face off-centre) with an imported SyncNet artifact."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from avkd.cli.main import main
from avkd.models import build_model
from avkd.models.io import ModelSpec, save_weights
from tests.evaluate.lse_helpers import lse_oracle_model, talking_head


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lse_cli")
    return {
        "22": talking_head(root / "talk22.mp4", fps=22, seconds=0.6, at=(40, 70), seed=2),
        "30": talking_head(root / "talk30.mp4", fps=30, seconds=0.6, at=(150, 20), seed=5),
        "blank": talking_head(root / "blank.mp4", fps=25, seconds=0.6, face=False),
    }


def test_syncnet_artifact_on_real_format_files(tmp_path: Path, videos: dict[str, Path], capsys) -> None:
    """The released model's path: its state dict imported with ``avkd import syncnet``, then ``avkd lse``."""
    torch.manual_seed(0)
    ckpt = tmp_path / "syncnet_v2.model"
    torch.save(build_model("syncnet").state_dict(), ckpt)  # the official file is a bare state dict
    assert main(["import", "syncnet", str(ckpt), "--out", str(tmp_path / "syncnet")]) == 0
    capsys.readouterr()
    paths = [str(videos["22"]), str(videos["30"]), str(videos["blank"])]
    code = main(
        ["lse", *paths, "--model", str(tmp_path / "syncnet"), "--json", "--csv", str(tmp_path / "lse.csv")]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0  # one video failed, the others were scored
    rows = out["videos"]
    assert [r["video"] for r in rows] == paths
    for row in rows[:2]:
        assert row["ok"] and math.isfinite(row["lse_d"]) and math.isfinite(row["lse_c"]) and row["lse_c"] >= 0
        assert isinstance(row["offset"], int) and -15 <= row["offset"] <= 15
        assert row["windows"] == row["frames"] - 5 == len(row["framewise_confidence"])
        assert (
            row["source_sample_rate"] == 44100 and row["source_channels"] == 2 and row["detector"] == "haar"
        )
    # 13 frames at 22 fps -> floor(13·25/22) = 14 at 25 fps; 18 at 30 fps -> 15
    assert (rows[0]["frames"], rows[1]["frames"]) == (14, 15)
    assert (rows[0]["source_fps"], rows[1]["source_fps"]) == (22.0, 30.0)
    assert not rows[2]["ok"] and rows[2]["lse_d"] is None and "no face found" in rows[2]["error"]
    summary = out["summary"]
    assert (summary["videos"], summary["scored"], summary["failed"]) == (3, 2, 1)
    assert summary["lse_d"] == pytest.approx((rows[0]["lse_d"] + rows[1]["lse_d"]) / 2)
    assert out["model"]["name"] == "syncnet" and out["protocol"] == "avkd"
    lines = (tmp_path / "lse.csv").read_text().splitlines()
    assert lines[0].startswith("video,lse_d,lse_c,offset,") and len(lines) == 5  # header, 3 videos, mean
    assert (
        lines[1].startswith(f"{paths[0]},") and "no face found" in lines[3] and lines[4].startswith("mean,")
    )


def test_text_output_folder_and_reference_protocol(tmp_path: Path, videos: dict[str, Path], capsys) -> None:
    model = lse_oracle_model(tmp_path / "oracle.pt")
    folder = videos["22"].parent
    code = main(["lse", str(folder), "--model", str(model), "--protocol", "reference"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith(f"{folder / 'blank.mp4'}: FAILED: ") and "no face found" in out[0]
    assert out[1].startswith(f"{videos['22']}: LSE-D ") and "syncnet_python's sign" in out[1]
    assert out[-1].startswith("mean over 2 of 3 videos: LSE-D ") and "protocol reference" in out[-1]


def test_every_video_failed_exits_1(tmp_path: Path, videos: dict[str, Path], capsys) -> None:
    model = lse_oracle_model(tmp_path / "oracle.pt")
    code = main(["lse", str(videos["blank"]), "--model", str(model), "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert json.loads(captured.out)["videos"][0]["ok"] is False  # the rows are still printed
    assert (
        captured.err.startswith("error: every video failed (1); the first: ")
        and captured.err.count("\n") == 1
    )


def test_a_model_without_syncnet_inputs_is_a_usage_error(
    tmp_path: Path, videos: dict[str, Path], capsys
) -> None:
    save_weights(tmp_path / "v.pt", build_model("vocalist_lite"), ModelSpec("vocalist_lite", {}))
    code = main(["lse", str(videos["22"]), "--model", str(tmp_path / "v.pt")])
    err = capsys.readouterr().err
    assert code == 2 and "does not take SyncNet's inputs" in err and err.count("\n") == 1
