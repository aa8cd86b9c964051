"""AVSiam pre-training (``avkd.tasks.avsiam.pretrain``): the losses fall with the objectives combined either way
(the released two steps a batch, or the summed loss), the released way keeps two optimisers, a killed run resumes
exactly, the artifact rebuilds, the released schedule, and bad inputs are one-line errors."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from avkd.core.artifacts import ArtifactWriter, load_artifact
from avkd.core.errors import AvkdError, UsageError
from avkd.core.jsonl import read_jsonl
from avkd.data.clips.dataset import ClipDataset
from avkd.models import build_model
from avkd.models.avsiam import AVSiam
from avkd.models.io import load_model
from avkd.tasks.avsiam.config import AVSiamPretrainConfig, pretrain_loop
from avkd.tasks.avsiam.pretrain import AVSiamPretrainTask, PretrainClips, pretrain
from avkd.train import loop
from avkd.train.loop import Preempted, fit, lr_factor
from tests.tasks.avsiam.corpus import pretrain_features


@pytest.fixture(scope="module")
def feats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pretrain_features(tmp_path_factory)


def tiny(epochs: int = 2, **changes) -> AVSiamPretrainConfig:
    run = dataclasses.replace(pretrain_loop(), epochs=epochs, batch_size=4, lr=1e-3, device="cpu", seed=5)
    return AVSiamPretrainConfig(loop=run, **changes)


@pytest.mark.parametrize("combine", ["released", "sum"])
def test_a_few_epochs_lower_both_losses_and_the_model_rebuilds(
    feats: Path, tmp_path: Path, combine: str
) -> None:
    changes = {} if combine == "released" else {"combine": combine}  # released is the default
    art = pretrain("avsiam", tiny(epochs=4, **changes), feats, tmp_path / "m", show_progress=False)
    rows = read_jsonl(art.path / loop.METRICS)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    first, last = rows[0], rows[-1]
    for key in ("contrastive", "rec_audio", "rec_video", "val_rec_audio", "val_rec_video"):
        assert last[key] < first[key], key
    for row in rows:  # either way the logged loss is L_c + L_rec,a + L_rec,v
        assert row["train_loss"] == pytest.approx(row["contrastive"] + row["rec_audio"] + row["rec_video"])
    assert 0.0 <= last["match_acc"] <= 1.0 and last["val_chance"] == pytest.approx(1 / 3)
    m = art.metrics
    assert m["method"] == "avsiam" and m["combine"] == combine and m["best_epoch"] == 4  # the last epoch
    assert m["best_contrastive"] == last["contrastive"] and m["steps"] == 8  # 9 train clips, batch 4
    # The released optimiser: Adam's betas (0.95, 0.999) and weight decay 5e-7, recorded in the config.
    assert art.config["betas"] == [0.95, 0.999] and art.config["loop"]["weight_decay"] == 5e-7
    loaded = load_model(art.path)
    assert isinstance(loaded.model, AVSiam) and loaded.spec.kwargs == {"size": "toy", "num_classes": 3}
    rebuilt = build_model(loaded.spec.name, **loaded.spec.kwargs)
    state = torch.load(art.file("model.pt"), weights_only=True)["state_dict"]
    rebuilt.load_state_dict(state)
    fresh = build_model("avsiam", size="toy", num_classes=3)
    assert not torch.equal(rebuilt.blocks[0].attn.qkv.weight, fresh.blocks[0].attn.qkv.weight)


def test_a_killed_run_resumes_to_the_same_weights(feats: Path, tmp_path: Path, monkeypatch) -> None:
    config = tiny(epochs=2)  # the released two passes a step
    artifact = load_artifact(feats)
    straight = AVSiamPretrainTask(config, artifact)
    assert straight.passes == ("contrastive", "reconstruction")
    fit(straight, config.loop, tmp_path / "a", tmp_path / "a.pt", show_progress=False)

    killed = AVSiamPretrainTask(config, artifact)
    real_loss, calls = killed.pass_loss, {"n": 0}

    def loss_then_signal(batch, device, name):
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 2, step 1, its contrastive pass (2 steps an epoch, 2 passes a step)
            assert name == "contrastive"
            os.kill(os.getpid(), signal.SIGTERM)
        return real_loss(batch, device, name)

    monkeypatch.setattr(killed, "pass_loss", loss_then_signal)
    with pytest.raises(Preempted):
        fit(killed, config.loop, tmp_path / "b", tmp_path / "b.pt", show_progress=False)
    state = torch.load(tmp_path / "b" / loop.LAST, weights_only=False)
    assert (state["epoch"], state["step_in_epoch"], state["steps"]) == (1, 1, 3)
    # Two Adams, as released: the contrastive one never holds moments of the decoder (no gradient in its pass),
    # the reconstruction one does; both took every step, both keep the configured betas.
    names = [n for n, _ in killed.model.named_parameters()]
    decoder = {i for i, n in enumerate(names) if "decoder" in n}
    held = {p: set(state["passes"][p]["optimizer"]["state"]) for p in ("contrastive", "reconstruction")}
    assert decoder and not decoder & held["contrastive"] and decoder <= held["reconstruction"]
    for p in ("contrastive", "reconstruction"):
        saved = state["passes"][p]["optimizer"]
        assert {float(s["step"]) for s in saved["state"].values()} == {3.0}
        assert saved["param_groups"][0]["betas"] == (0.95, 0.999) and saved["param_groups"][0]["lr"] == 1e-3
    torch.manual_seed(123)  # a new process: other global RNG state until the checkpoint's is restored
    resumed = AVSiamPretrainTask(config, artifact)
    result = fit(resumed, config.loop, tmp_path / "b", tmp_path / "b.pt", show_progress=False)
    assert result.steps == 4
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows_a, rows_b = read_jsonl(tmp_path / "a" / loop.METRICS), read_jsonl(tmp_path / "b" / loop.METRICS)
    for key in ("contrastive", "rec_audio", "rec_video", "val_contrastive"):
        assert [r[key] for r in rows_b] == pytest.approx([r[key] for r in rows_a]), key
    for task in (straight, killed, resumed):
        task.close()


def test_one_frame_per_clip_a_function_of_seed_and_epoch(feats: Path) -> None:
    clips = ClipDataset(feats, "train")
    a, b = PretrainClips(clips, 5), PretrainClips(clips, 5)
    a.set_epoch(3), b.set_epoch(3)
    assert np.array_equal(a.order, b.order) and np.array_equal(a.frame, b.frame)
    assert sorted(a.order) == list(range(len(clips))) and a.frame.min() >= 0 and a.frame.max() < 10
    b.set_epoch(4)
    assert not np.array_equal(a.frame, b.frame) or not np.array_equal(a.order, b.order)
    fbank, frame, _ = a[0]
    assert fbank.shape == (1, 32, 64) and frame.shape == (3, 32, 32) and frame.dtype == torch.float32
    stored = clips.store.frames(clips.keys[int(a.order[0])], int(a.frame[0]), int(a.frame[0]) + 1)[0]
    whole = ClipDataset(feats, "train", frame=int(a.frame[0]))[int(a.order[0])][1]
    assert torch.allclose(frame, whole) and stored.shape == (32, 32, 3)
    clips.store.close()


def test_the_schedule_is_the_released_multisteplr() -> None:
    config = pretrain_loop()
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=1.0)
    ref = torch.optim.lr_scheduler.MultiStepLR(opt, list(range(10, 1000, 5)), gamma=0.5)
    for epoch in range(25):
        assert lr_factor(config, epoch) == pytest.approx(opt.param_groups[0]["lr"]), epoch
        opt.step()
        ref.step()
    assert (lr_factor(config, 9), lr_factor(config, 10), lr_factor(config, 24)) == (1.0, 0.5, 0.125)


def _artifact(path: Path, kind: str) -> Path:
    with ArtifactWriter(path, kind, {"fake": True}) as writer:
        writer.commit()
    return path


def test_bad_inputs_are_one_line_errors(feats: Path, tmp_path: Path) -> None:
    cases = [
        (_artifact(tmp_path / "lrs2", "lrs2-features"), {}, "no 'train' clip has a 5-frame window"),
        (_artifact(tmp_path / "report", "report"), {}, "report"),
        (tmp_path / "nowhere", {}, "nowhere"),
        (feats, {"size": "s"}, "do not fit the 's' AVSiam"),
        (feats, {"size": "nano"}, "unknown avsiam size"),
        (feats, {"ratios": [0.0, 1.5]}, "ratios"),
        (feats, {"betas": [0.9]}, "betas"),
        (feats, {"val_split": "val"}, "no clip in split 'val'"),
    ]
    for data, changes, needle in cases:
        with pytest.raises(AvkdError) as info:
            pretrain("avsiam", tiny(**changes), data, tmp_path / "out", show_progress=False)
        message = str(info.value)
        assert needle in message and len(message.splitlines()) == 1, message
        assert not (tmp_path / "out").exists()
    with pytest.raises(UsageError, match="unknown pre-training method 'mae'"):
        pretrain("mae", tiny(), feats, tmp_path / "out", show_progress=False)
