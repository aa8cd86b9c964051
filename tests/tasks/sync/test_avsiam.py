"""``avsiam_sync`` in the sync task: the 31-way within-clip objective ``offsets``, training from scratch and from a
pre-trained avsiam, the 31-candidate evaluator, ``avkd sync``, ``avkd report`` and distillation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from avkd.cli.main import main
from avkd.core.artifacts import load_artifact
from avkd.core.errors import UsageError
from avkd.core.jsonl import read_jsonl
from avkd.data.lrs2.layouts import LAYOUTS
from avkd.data.lrs2.sequences import SyncSequenceDataset
from avkd.data.lrs2.store import FeatureStore
from avkd.data.lrs2.synthetic import speaker_style, write_utterance
from avkd.evaluate.sync import score_clip, valid_candidates
from avkd.losses.embedding import offset_matching_loss
from avkd.models import build_model
from avkd.models.attention import Tapped
from avkd.models.io import ModelSpec, import_checkpoint, load_model
from avkd.tasks.sync.config import DistillConfig, SyncModelConfig, SyncTrainConfig
from avkd.tasks.sync.distill import distill_sync
from avkd.tasks.sync.train import (
    SyncTeacherTask,
    objective_terms,
    offset_scores,
    offsets_objective,
    train_sync_teacher,
)
from avkd.train.loop import LoopConfig

torch.set_num_threads(1)

SIAM = SyncModelConfig(name="avsiam_sync", kwargs={"patch_size": 16})
TINY_LOOP = LoopConfig(epochs=1, batch_size=2, lr=1e-3, device="cpu")


class Indexer(nn.Module):
    """Window ``x`` encodes to its first value; ``fuse`` = 1000·video + audio, so a score names its pair."""

    def encode_video(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(1, x.shape[0], -1)[..., :1]

    encode_audio = encode_video

    def fuse(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return (1000 * v + a)[0, :, 0]


def test_offset_candidates_and_labels_on_a_hand_made_clip() -> None:
    b, steps, vshift = 2, 5, 2
    ids = torch.arange(b * steps, dtype=torch.float32).reshape(b, steps, 1)  # window i of run r: 5r + i
    scores = offset_scores(Indexer(), ids, ids + 0.5, vshift)
    assert scores.shape == (b * steps, 2 * vshift + 1)
    for r in range(b):
        for i in range(steps):
            for col in range(2 * vshift + 1):
                j = i + col - vshift  # the evaluator's column layout: offset col − vshift
                value = float(scores[r * steps + i, col])
                if 0 <= j < steps:
                    assert value == 1000 * (r * steps + i) + r * steps + j + 0.5
                else:
                    assert np.isnan(value)
    assert np.array_equal(~torch.isnan(scores[:steps]).numpy(), valid_candidates(steps, vshift))
    # The loss: the centre column is the label, NaN candidates are left out, mean per run then over runs.
    s = torch.randn(b * steps, 2 * vshift + 1).masked_fill(torch.isnan(scores), float("nan"))
    clips = torch.arange(b).repeat_interleave(steps)
    rows = [-s[k, vshift] + torch.logsumexp(s[k][~torch.isnan(s[k])], 0) for k in range(b * steps)]
    want = torch.stack([torch.stack(rows[r * steps : (r + 1) * steps]).mean() for r in range(b)]).mean()
    torch.testing.assert_close(offset_matching_loss(s, clips), want)
    loss = offsets_objective({"vshift": vshift})
    assert loss(Tapped(s, {}), Tapped(s, {}), clips)["offsets"] == pytest.approx(float(want), rel=1e-6)
    with pytest.raises(UsageError, match="takes only vshift"):
        offsets_objective({"margin": 1})
    with pytest.raises(ValueError, match="own"):
        offset_matching_loss(torch.full((1, 5), float("nan")), torch.zeros(1, dtype=torch.long))


def test_a_whole_clip_run_is_the_evaluators_score_matrix(features) -> None:
    store = FeatureStore(features)
    model = build_model("avsiam_sync", patch_size=16).eval()
    key = store.keys("test")[0]
    layout = LAYOUTS["vocalist"]
    w = layout.clip_windows(store.info(key))
    crops, mel = store.frames(key, 0, w + 4), store.mel(key)
    pixels = layout.clip_pixels(crops)
    run_v = layout.video_batch(pixels, range(w))[None]
    run_a = layout.audio_batch(torch.from_numpy(mel), range(w))[None]
    with torch.no_grad():
        ours = offset_scores(model, run_v, run_a, 15).numpy()
    np.testing.assert_allclose(ours, score_clip(model, crops, mel), atol=1e-5, rtol=0)
    store.close()


def test_the_objective_lowers_its_loss(features) -> None:
    store = FeatureStore(features)
    runs = SyncSequenceDataset(store, "pretrain", LAYOUTS["vocalist"], steps=8, samples=2, seed=1)
    batch = [torch.stack(t) for t in zip(runs[0], runs[1], strict=True)]
    torch.manual_seed(0)
    model, loss = build_model("avsiam_sync", patch_size=16), offsets_objective({"vshift": 3})
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    values = []
    for _ in range(10):
        value = objective_terms(model, loss, batch, torch.device("cpu"))["offsets"]
        opt.zero_grad()
        value.backward()
        opt.step()
        values.append(value.item())
    # Uniform scores would give the mean log of the candidate counts (≈ 1.66 here): the model gets well below.
    assert values[-1] < 0.5 * values[0] and values[-1] < 1.0, values
    store.close()


def test_train_evaluate_sync_and_report_through_the_cli(features, tmp_path: Path, capsys) -> None:
    model = tmp_path / "siam"
    code = main(["train", "teacher", "--data", str(features.path), "--out", str(model), "--model", "avsiam_sync",
                 "--objective", "offsets", "--epochs", "1", "--batch-size", "2", "--samples-per-epoch", "4",
                 "--set", "model.kwargs.patch_size=16", "--set", "pm_steps=12", "--set", "objective_options.vshift=5",
                 "--set", "val_samples=2"])  # fmt: skip
    assert code == 0
    (row,) = read_jsonl(model / "metrics.jsonl")
    assert 0 <= row["val_acc"] <= 1 and np.isfinite(row["train_loss"])
    assert load_model(model).spec.name == "avsiam_sync"
    evaluation = tmp_path / "eval"
    code = main(["evaluate", "--model", str(model), "--data", str(features.path), "--out", str(evaluation),
                 "--split", "test", "--save-scores", "--label", "siam"])  # fmt: skip
    assert code == 0
    summary = json.loads((evaluation / "accuracy.json").read_text())
    assert set(summary["accuracy"]) == {"5", "7", "9", "11", "13", "15"}
    assert all(0 <= v <= 1 for v in summary["accuracy"].values())
    assert np.load(evaluation / "scores.npz")[read_jsonl(evaluation / "clips.jsonl")[0]["key"]].shape[1] == 31
    assert main(["report", "--out", str(tmp_path / "report"), str(evaluation)]) == 0
    assert "siam" in (tmp_path / "report" / "report.md").read_text()
    video = tmp_path / "clip.mp4"
    write_utterance(video, seed=5, seconds=2.0, style=speaker_style(1))
    capsys.readouterr()
    assert main(["sync", str(video), "--model", str(model), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["curve"]) == 31 and -15 <= out["offset_frames"] <= 15


def pretrained_artifact(tmp_path: Path) -> Path:
    torch.manual_seed(2)
    spec = ModelSpec("avsiam", {"size": "toy", "patch_size": 16, "num_classes": 3, "decoder": False})
    torch.save({"state_dict": spec.build().state_dict()}, tmp_path / "pre.pt")
    return import_checkpoint(tmp_path / "pre.pt", tmp_path / "pre", spec).path


def test_init_from_a_pretrained_avsiam(features, tmp_path: Path) -> None:
    pre = pretrained_artifact(tmp_path)
    config = SyncTrainConfig(model=SIAM, objective="offsets", pm_steps=10, loop=TINY_LOOP, samples_per_epoch=2,
                             val_samples=2, objective_options={"vshift": 4})  # fmt: skip
    loaded = load_model(pre)
    task = SyncTeacherTask(config, FeatureStore(features), loaded, where=str(pre))
    for key in ("blocks.3.attn.proj.weight", "norm_v.bias", "patch_embed_a.proj.weight"):
        assert torch.equal(task.model.backbone.state_dict()[key], loaded.model.state_dict()[key]), key
    task.close()
    art = train_sync_teacher(config, features.path, tmp_path / "m", show_progress=False, init=pre)
    assert art.metrics["init"] == load_model(pre).artifact.id
    assert art.metrics["init_adapted"] == ["pos_embed_a", "pos_embed_v", "patch_embed_v.proj.weight"]
    assert load_model(pre).artifact.id in [i["id"] for i in art.manifest["inputs"]]
    wrong = SyncTrainConfig(model=SyncModelConfig(name="vocalist_lite", width=8, channels=[4, 4, 8, 8, 8]))
    with pytest.raises(UsageError, match="initialises an avsiam_sync model"):
        SyncTeacherTask(wrong, FeatureStore(features), loaded, where=str(pre))


def test_kd_into_an_avsiam_student_and_refused_methods(features, tmp_path: Path) -> None:
    torch.manual_seed(0)
    spec = ModelSpec("vocalist_lite", {"width": 8, "channels": [4, 4, 8, 8, 8]})
    torch.save({"state_dict": spec.build().state_dict()}, tmp_path / "t.pt")
    teacher = import_checkpoint(tmp_path / "t.pt", tmp_path / "teacher", spec).path
    common = {"loop": TINY_LOOP, "samples_per_epoch": 4, "val_samples": 4}
    art = distill_sync(DistillConfig(method="kd", student=SIAM, **common), teacher, features.path,
                       tmp_path / "kd", show_progress=False)  # fmt: skip
    assert (
        load_model(art.path).spec.name == "avsiam_sync"
        and "train/kd" in read_jsonl(art.path / "metrics.jsonl")[0]
    )
    with pytest.raises(UsageError, match="reads the student's internals") as err:
        distill_sync(DistillConfig(method="mtd", student=SIAM, **common), teacher, features.path,
                     tmp_path / "mtd", show_progress=False)  # fmt: skip
    assert "\n" not in str(err.value) and "--method kd" in str(err.value)
    student = SyncModelConfig(name="vocalist_lite", width=8, channels=[4, 4, 8, 8, 8])
    with pytest.raises(UsageError, match="reads the teacher's internals"):
        distill_sync(DistillConfig(method="fitnets", student=student, **common), art.path, features.path,
                     tmp_path / "fit", show_progress=False)  # fmt: skip


def test_pretraining_on_lrs2_windows_initialises_avsiam_sync(features, tmp_path: Path) -> None:
    """The LRS2 adapter of ``avkd pretrain`` (avkd.tasks.avsiam.inputs): VocaLiST's windows as motion frames and
    mel, the reconstruction loss falls, and the pre-trained encoder initialises ``avsiam_sync`` tensor for tensor."""
    from avkd.models.avsiam_sync import load_backbone, motion_frames
    from avkd.tasks.avsiam.config import AVSiamPretrainConfig, pretrain_loop
    from avkd.tasks.avsiam.inputs import LRS2Windows
    from avkd.tasks.avsiam.pretrain import pretrain_avsiam

    store = FeatureStore(features)
    try:
        held_out = LRS2Windows(store, "test", seed=None)
        audio, video, label = held_out[0]
        key, w = held_out.keys[0], int(held_out.start[0])
        assert w == (held_out.windows[0] - 1) // 2 and int(label) == 0
        layout = LAYOUTS["vocalist"]
        pixels = layout.clip_pixels(store.frames(key, w, w + 5))
        torch.testing.assert_close(video, motion_frames(layout.video_batch(pixels, [0]))[0])
        mel = torch.from_numpy(layout.clip_audio(store, key))
        torch.testing.assert_close(audio, layout.audio_batch(mel, [w])[0])
        assert audio.shape == (1, 80, 16) and video.shape[0] == 15
    finally:
        store.close()
    run = dataclasses.replace(pretrain_loop(), epochs=3, batch_size=2, lr=1e-3, device="cpu", seed=0)
    cfg = AVSiamPretrainConfig(loop=run, patch_size=16)
    pre = pretrain_avsiam(cfg, features.path, tmp_path / "pre", show_progress=False)
    rows = read_jsonl(tmp_path / "pre" / "metrics.jsonl")
    assert rows[-1]["rec_audio"] < rows[0]["rec_audio"]
    source = load_model(pre.path).model
    assert source.video_channels == 15 and source.grid_a == (5, 1)
    model = build_model("avsiam_sync", patch_size=16)
    load_backbone(model, source)
    for key in ("patch_embed_v.proj.weight", "pos_embed_v", "pos_embed_a", "blocks.2.attn.qkv.weight"):
        assert torch.equal(model.backbone.state_dict()[key], source.state_dict()[key]), key
    # The same through the command line: pre-train on the LRS2 features, then train avsiam_sync from it.
    assert main(["pretrain", "--data", str(features.path), "--out", str(tmp_path / "pre-cli"), "--epochs", "1",
                 "--batch-size", "2", "--set", "patch_size=16", "--device", "cpu"]) == 0  # fmt: skip
    code = main(["train", "teacher", "--data", str(features.path), "--out", str(tmp_path / "siam"), "--model",
                 "avsiam_sync", "--objective", "offsets", "--init", str(tmp_path / "pre-cli"), "--epochs", "1",
                 "--batch-size", "2", "--samples-per-epoch", "2", "--set", "model.kwargs.patch_size=16",
                 "--set", "pm_steps=12", "--set", "objective_options.vshift=5", "--set", "val_samples=2"])  # fmt: skip
    assert code == 0
    trained = load_artifact(tmp_path / "siam")
    assert load_artifact(tmp_path / "pre-cli").id in [i["id"] for i in trained.manifest["inputs"]]
