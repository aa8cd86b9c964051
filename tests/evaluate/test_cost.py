"""What an evaluation costs (``avkd.evaluate.cost``): GMACs of one window counted by hand on linear layers, and the
cost an evaluation artifact records (throughput kept out of its content id)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from avkd.evaluate.cost import Throughput, window_gmacs
from avkd.report.runs import load_runs
from avkd.tasks.sync.config import SyncEvalConfig
from avkd.tasks.sync.evaluate import TIMING, evaluate_sync_artifact
from tests.oracle import oracle_model


class LinearSync(nn.Module):
    """VocaLiST's input layout through three linear layers, so its multiply-adds can be counted by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.video = nn.Linear(15 * 48 * 96, 4)
        self.audio = nn.Linear(80 * 16, 4)
        self.head = nn.Linear(8, 1)

    def encode_video(self, video: Tensor) -> Tensor:
        return self.video(video.flatten(1)).unsqueeze(0)  # (1, B, 4)

    def encode_audio(self, mel: Tensor) -> Tensor:
        return self.audio(mel.flatten(1)).unsqueeze(0)

    def fuse(self, v: Tensor, a: Tensor) -> Tensor:
        return self.head(torch.cat([v[0], a[0]], dim=1))[:, 0]


def test_window_gmacs_by_hand() -> None:
    crops = np.random.default_rng(0).integers(0, 256, (7, 96, 96, 3), dtype=np.uint8)
    mel = np.random.default_rng(1).standard_normal((80, 40)).astype(np.float32)
    gmacs = window_gmacs(LinearSync(), crops, mel)
    # One MAC per weight of each layer for one window (bias adds are not counted by FlopCounterMode).
    video, audio, head = 15 * 48 * 96 * 4, 80 * 16 * 4, 8
    assert gmacs is not None
    assert gmacs["pair"] == pytest.approx((video + audio + head) / 1e9)
    assert gmacs["scored"] == pytest.approx((video + audio + 31 * head) / 1e9)  # 31 candidates, encoded once
    onnx_like = LinearSync()
    onnx_like.precision = "fp32"  # what an ONNX Runtime model carries: no PyTorch graph to count
    assert window_gmacs(onnx_like, crops, mel) is None


def test_throughput() -> None:
    speed = Throughput(seconds=2.0, windows=50, clips=4)
    assert speed.windows_per_second == 25 and speed.clips_per_second == 2
    assert Throughput(0.0, 3, 1).windows_per_second is None
    assert speed.to_json()["windows_per_second"] == 25


def test_evaluation_records_its_cost_outside_the_id(features, tmp_path: Path) -> None:
    model = oracle_model(tmp_path / "oracle.pt")
    config = SyncEvalConfig(split="pretrain", frames=[5, 15], limit=2)
    first = evaluate_sync_artifact(
        config, model, features.path, tmp_path / "a", label="o", show_progress=False
    )
    second = evaluate_sync_artifact(
        config, model, features.path, tmp_path / "b", label="o", show_progress=False
    )
    assert first.id == second.id  # same results, same id, however fast each ran
    summary = json.loads((first.path / "accuracy.json").read_text())
    timing = json.loads((first.path / TIMING).read_text())
    windows = sum(
        json.loads(line)["windows"] for line in (first.path / "clips.jsonl").read_text().splitlines()
    )
    assert timing["windows"] == windows > 0 and timing["clips"] == 2 and timing["seconds"] > 0
    assert first.metrics["windows_per_second"] == pytest.approx(windows / timing["seconds"])
    assert first.manifest["files"][TIMING]["log"] is True
    assert summary["gmacs_per_window"] == first.metrics["gmacs_per_window"]
    assert math.isfinite(summary["gmacs_per_window"]) and summary["gmacs_per_window"] >= 0
    assert summary["gmacs_per_window_scored"] >= summary["gmacs_per_window"]
    run = load_runs([first.path])[0]
    assert run.gmacs_per_window == summary["gmacs_per_window"]
    assert run.windows_per_second == first.metrics["windows_per_second"]
