"""AVSiam fine-tuning (``avkd.tasks.avsiam.finetune``, ``avkd train avsiam``): the mixed-modality schedule, the
head learning rate, init from a pre-training artifact, a short run that lowers every head's loss and resumes
exactly, and the command."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avkd.cli.main import main
from avkd.core.artifacts import load_artifact
from avkd.core.errors import UsageError
from avkd.core.jsonl import read_jsonl
from avkd.data.clips.dataset import ClipDataset
from avkd.models import build_model
from avkd.models.io import load_model
from avkd.tasks.avsiam.config import AVSiamFinetuneConfig, AVSiamPretrainConfig, finetune_loop, pretrain_loop
from avkd.tasks.avsiam.finetune import (
    CODES,
    AVSiamFinetuneTask,
    FinetuneClips,
    finetune_avsiam,
    head_param_groups,
    modality_for_step,
)
from avkd.tasks.avsiam.pretrain import pretrain
from avkd.train import loop
from avkd.train.loop import Preempted, fit
from tests.tasks.avsiam.corpus import pretrain_features


@pytest.fixture(scope="module")
def feats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pretrain_features(tmp_path_factory)


@pytest.fixture(scope="module")
def pretrained(feats: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = dataclasses.replace(pretrain_loop(), epochs=1, batch_size=4, lr=1e-3, device="cpu", seed=1)
    out = tmp_path_factory.mktemp("ft") / "pre"
    return pretrain("avsiam", AVSiamPretrainConfig(loop=run), feats, out, show_progress=False).path


def tiny(epochs: int = 2, **changes) -> AVSiamFinetuneConfig:
    run = dataclasses.replace(finetune_loop(), epochs=epochs, batch_size=4, lr=1e-3, device="cpu", seed=5)
    return AVSiamFinetuneConfig(loop=run, **changes)


def test_the_mixed_schedule_is_50_25_25_and_a_function_of_seed_and_step() -> None:
    draws = [modality_for_step(7, e, s) for e in range(40) for s in range(100)]
    share = {m: n / len(draws) for m, n in Counter(draws).items()}
    assert share["av"] == pytest.approx(0.5, abs=0.03)
    assert share["a"] == pytest.approx(0.25, abs=0.03) and share["v"] == pytest.approx(0.25, abs=0.03)
    # The thresholds (§1.8): p > 0.5 audio-visual, p < 0.25 audio only, otherwise video only.
    for e, s in [(0, 0), (3, 9), (11, 2), (5, 77)]:
        p = np.random.default_rng([7, e, s]).random()
        assert modality_for_step(7, e, s) == ("av" if p > 0.5 else "a" if p < 0.25 else "v")
    assert draws == [modality_for_step(7, e, s) for e in range(40) for s in range(100)]
    assert draws != [modality_for_step(8, e, s) for e in range(40) for s in range(100)]
    assert {modality_for_step(7, e, s, "av") for e in range(5) for s in range(50)} == {"av"}


def test_every_sample_of_a_step_carries_its_steps_mode(feats: Path) -> None:
    clips = ClipDataset(feats, "train")
    data = FinetuneClips(clips, seed=5, batch_size=4, modalities="mixed")
    for epoch in (0, 3):
        data.set_epoch(epoch)
        for step in range(len(data) // 4):
            codes = {int(data[i][3]) for i in range(4 * step, 4 * step + 4)}
            assert codes == {CODES.index(modality_for_step(5, epoch, step))}
    clips.store.close()


def test_the_heads_learn_at_the_multiplied_rate() -> None:
    model = build_model("avsiam", size="toy", num_classes=3, decoder=False)
    groups = head_param_groups(model, lr=2e-4, head_lr=10.0)
    names = {id(p): n for n, p in model.named_parameters()}
    heads = {names[id(p)] for p in groups[1]["params"]}
    assert heads == {f"{h}.{w}" for h in ("head_norm", "head", "head_a_norm", "head_a", "head_v_norm", "head_v")
                     for w in ("weight", "bias")}  # fmt: skip
    assert all("head" not in names[id(p)] for p in groups[0]["params"])
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(list(model.parameters()))
    # The loop's Adam and schedule keep each group's rate.
    opt = torch.optim.Adam(groups, lr=1.0)
    torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([2e-4, 2e-3])


def _train_ce(model: torch.nn.Module, feats: Path) -> dict[str, float]:
    data = ClipDataset(feats, "train", frame=5)
    audio = torch.stack([data[i][0] for i in range(len(data))])
    video = torch.stack([data[i][1] for i in range(len(data))])
    labels = torch.stack([data.label(i) for i in range(len(data))])
    data.store.close()
    model.eval()
    with torch.no_grad():
        return {m: float(F.cross_entropy(model(audio, video, mode=m), labels)) for m in CODES}


def test_a_short_fine_tune_from_pretraining_lowers_every_heads_loss(
    feats: Path, pretrained: Path, tmp_path: Path
) -> None:
    config = tiny(epochs=4)
    config.loop.select_metric = "epoch"  # the last epoch, to compare with the start
    start = AVSiamFinetuneTask(config, load_artifact(feats), load_artifact(pretrained))
    # Init: every encoder and fusion weight is the pre-trained one, the heads are new, the decoder is gone.
    pre = load_model(pretrained).model
    assert torch.equal(start.model.blocks[2].attn.qkv.weight, pre.blocks[2].attn.qkv.weight)
    assert torch.equal(start.model.fusion[0].mlp.fc1.weight, pre.fusion[0].mlp.fc1.weight)
    assert start.model.decoder is None and not torch.equal(start.model.head.weight, pre.head.weight)
    before = _train_ce(start.model, feats)
    start.close()
    art = finetune_avsiam(config, feats, tmp_path / "ft", init=pretrained, show_progress=False)
    after = _train_ce(load_model(art.path).model, feats)
    for mode in CODES:
        assert after[mode] < before[mode], (mode, before, after)
    rows = read_jsonl(art.path / loop.METRICS)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4] and art.metrics["steps"] == 8
    # Each step ran in one mode: the epoch's shares of the three modes add up to one.
    assert all(r["mode_av"] + r["mode_a"] + r["mode_v"] == pytest.approx(1.0) for r in rows)
    assert {"val_acc", "val_acc_audio_only", "val_acc_video_only"} <= set(rows[0])
    m = art.metrics
    assert m["modalities"] == "mixed" and m["init"] == load_artifact(pretrained).id
    assert load_model(art.path).spec.kwargs == {"size": "toy", "num_classes": 3, "decoder": False}
    assert [i["id"] for i in art.manifest["inputs"]] == [load_artifact(feats).id, m["init"]]


def test_a_killed_fine_tune_resumes_to_the_same_weights(feats: Path, tmp_path: Path, monkeypatch) -> None:
    config = tiny(epochs=2)
    artifact = load_artifact(feats)
    straight = AVSiamFinetuneTask(config, artifact, None)
    fit(straight, config.loop, tmp_path / "a", tmp_path / "a.pt", show_progress=False)
    killed = AVSiamFinetuneTask(config, artifact, None)
    real_loss, calls = killed.loss, {"n": 0}

    def loss_then_signal(batch, device):
        calls["n"] += 1
        if calls["n"] == 3:  # epoch 2, step 1
            os.kill(os.getpid(), signal.SIGTERM)
        return real_loss(batch, device)

    monkeypatch.setattr(killed, "loss", loss_then_signal)
    with pytest.raises(Preempted):
        fit(killed, config.loop, tmp_path / "b", tmp_path / "b.pt", show_progress=False)
    torch.manual_seed(321)
    resumed = AVSiamFinetuneTask(config, artifact, None)
    assert fit(resumed, config.loop, tmp_path / "b", tmp_path / "b.pt", show_progress=False).steps == 4
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows_a, rows_b = read_jsonl(tmp_path / "a" / loop.METRICS), read_jsonl(tmp_path / "b" / loop.METRICS)
    for key in ("train_loss", "mode_av", "mode_a", "val_acc", "val_loss"):
        assert [r[key] for r in rows_b] == pytest.approx([r[key] for r in rows_a]), key
    for task in (straight, killed, resumed):
        task.close()


def test_the_command_and_its_one_line_refusals(feats: Path, pretrained: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m"

    def args(out: Path, *extra: str) -> list[str]:
        return ["train", "avsiam", "--data", str(feats), "--out", str(out), "--init", str(pretrained),
                "--epochs", "1", "--batch-size", "4", "--device", "cpu", *extra]  # fmt: skip

    assert main(args(out, "--modalities", "av", "--head-lr", "100", "--json")) == 0
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert m["modalities"] == "av" and m["epochs"] == 1 and 0.0 <= m["best_val_acc"] <= 1.0
    assert load_artifact(out).config["head_lr"] == 100.0
    row = read_jsonl(out / loop.METRICS)[0]
    assert (row["mode_av"], row["mode_a"], row["mode_v"]) == (1.0, 0.0, 0.0)
    for bad in (["--modalities", "audio"], ["--size", "s"], ["--head-lr", "0"]):
        assert main(args(tmp_path / "bad", *bad)) != 0, bad
        err = capsys.readouterr().err.strip()
        assert err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "bad").exists()
    with pytest.raises(UsageError, match="is a 'toy' avsiam"):
        AVSiamFinetuneTask(tiny(size="s"), load_artifact(feats), load_artifact(pretrained))
