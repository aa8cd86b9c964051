"""AVSiam evaluation on clips (``avkd.evaluate.avsiam``): retrieval ranks and R@k against hand-built similarity
matrices, average precision against a hand computation, the k-per-class subset, logits averaged over frames,
and the evaluation artifact (library and ``avkd evaluate``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from avkd.cli.main import main
from avkd.core.artifacts import load_artifact
from avkd.core.errors import UsageError
from avkd.data.clips.dataset import ClipDataset
from avkd.evaluate.avsiam import (
    ClipsEvalConfig,
    average_precision,
    clip_outputs,
    evaluate_clips_artifact,
    mean_average_precision,
    per_class_subset,
    retrieval_metrics,
    retrieval_ranks,
)
from avkd.models import build_model
from avkd.models.io import ModelSpec, save_weights
from tests.tasks.avsiam.corpus import pretrain_features


@pytest.fixture(scope="module")
def feats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pretrain_features(tmp_path_factory)


def _model_file(path: Path, classes: int = 3) -> Path:
    torch.manual_seed(0)
    spec = ModelSpec("avsiam", {"size": "toy", "num_classes": classes, "decoder": False})
    save_weights(path, spec.build(), spec)
    return path


def test_ranks_and_recalls_of_a_hand_built_matrix() -> None:
    sim = torch.tensor(
        [
            [0.9, 0.8, 0.1, 0.0],  # the true item first: rank 0
            [0.7, 0.2, 0.5, 0.3],  # three above it: rank 3
            [0.4, 0.4, 0.4, 0.1],  # tied with two others: ties favour the true item, rank 0
            [0.6, 0.5, 0.9, 0.1],  # rank 3
        ]
    )
    assert retrieval_ranks(sim).tolist() == [0, 3, 0, 3]
    assert retrieval_metrics(sim, "a2v_") == {"a2v_r@1": 0.5, "a2v_r@5": 1.0, "a2v_r@10": 1.0, "a2v_mr": 2.5}
    # The other direction ranks the columns: [0, 3, 2, 1] (column 3: only 0.3 above its 0.1, the equal 0.1 not).
    assert retrieval_ranks(sim.T).tolist() == [0, 3, 2, 1]
    assert retrieval_metrics(sim.T, "v2a_")["v2a_r@1"] == 0.25
    # 12 queries with known ranks: each row's other items score 1..11, its true item sits under r of them.
    ranks = [0, 0, 1, 4, 5, 6, 9, 10, 11, 2, 3, 7]
    big = torch.zeros(12, 12)
    for i, r in enumerate(ranks):
        others = [j for j in range(12) if j != i]
        big[i, others] = torch.arange(1.0, 12.0)
        big[i, i] = 11 - r + 0.5
    assert retrieval_ranks(big).tolist() == ranks
    m = retrieval_metrics(big, "")
    assert (m["r@1"], m["r@5"], m["r@10"]) == pytest.approx((2 / 12, 6 / 12, 10 / 12))
    assert m["mr"] == 5.5  # the 1-based ranks' median: (5 + 6) / 2
    with pytest.raises(ValueError):
        retrieval_ranks(torch.zeros(3, 4))


def test_average_precision_against_a_hand_computation() -> None:
    scores = torch.tensor(
        [[0.9, 0.1, 0.3], [0.8, 0.9, 0.2], [0.7, 0.3, 0.1], [0.6, 0.8, 0.5], [0.5, 0.2, 0.4]]
    )
    labels = torch.tensor([[1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
    # Class 0: positives at places 1 and 3 -> (1/1 + 2/3) / 2. Class 1: order 1, 3, 2, 4, 0 puts its positives
    # (clips 2, 3) at places 2 and 3 -> (1/2 + 2/3) / 2. Class 2 has no positive: NaN, left out of the mean.
    ap = average_precision(scores, labels)
    assert ap[:2].tolist() == pytest.approx([(1 + 2 / 3) / 2, (1 / 2 + 2 / 3) / 2]) and ap[2].isnan()
    assert mean_average_precision(scores, labels) == pytest.approx(
        ((1 + 2 / 3) / 2 + (1 / 2 + 2 / 3) / 2) / 2
    )
    perfect = torch.tensor([[0.9], [0.1], [0.8]])
    assert mean_average_precision(perfect, torch.tensor([[1], [0], [1]])) == 1.0


def test_k_per_class_is_seeded_and_balanced() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 0])
    a = per_class_subset(labels, 2, seed=3)
    assert a == per_class_subset(labels, 2, seed=3) and a == sorted(a)
    assert sorted(labels[a].tolist()) == [0, 0, 1, 1, 2, 2]
    assert any(per_class_subset(labels, 2, seed=s) != a for s in range(4, 10))
    assert sorted(labels[per_class_subset(labels, 5, seed=0)].tolist()) == sorted(labels.tolist())


def test_video_logits_are_the_mean_over_the_stored_frames(feats: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("avsiam", size="toy", num_classes=3, decoder=False).eval()
    data = ClipDataset(feats, "test")
    out = clip_outputs(model, data, torch.device("cpu"), batch_size=2, features=True)
    audio, video, label = data[1]
    with torch.no_grad():
        per_frame = torch.stack([model(audio[None], video[k][None], mode="av")[0] for k in range(len(video))])
        v_only = torch.stack([model(None, video[k][None], mode="v")[0] for k in range(len(video))])
        assert torch.allclose(out["logits_av"][1], per_frame.mean(0), atol=1e-5)
        assert torch.allclose(out["logits_v"][1], v_only.mean(0), atol=1e-5)
        assert torch.allclose(out["logits_a"][1], model(audio[None], mode="a")[0], atol=1e-5)
        assert torch.allclose(
            out["feat_v"][1], model.encode_video(video[len(video) // 2][None])[0], atol=1e-5
        )
    assert out["labels"].dtype == torch.int64 and int(out["labels"][1]) == int(label)
    middle = clip_outputs(model, data, torch.device("cpu"), batch_size=2, modes=("av",), frames="middle")
    assert not torch.allclose(middle["logits_av"], out["logits_av"])
    data.store.close()


def test_the_evaluation_artifact_names_its_metrics(feats: Path, tmp_path: Path) -> None:
    model = _model_file(tmp_path / "model.pt")
    art = evaluate_clips_artifact(ClipsEvalConfig(split="train", per_class=2), model, feats, tmp_path / "ev",
                                  show_progress=False)  # fmt: skip
    m = art.metrics
    for key in ("a2v_r@1", "a2v_r@5", "a2v_r@10", "a2v_mr", "v2a_r@1", "v2a_mr"):
        assert key in m, key
    assert {"acc_av", "acc_audio_only", "acc_video_only"} <= set(m)
    assert (
        m["clips"] == 6
        and m["chance_r@1"] == pytest.approx(1 / 6)
        and m["chance_acc"] == pytest.approx(1 / 3)
    )
    assert all(0.0 <= m[k] <= 1.0 for k in ("a2v_r@1", "v2a_r@10", "acc_av", "acc_video_only"))
    assert art.kind == "evaluation" and art.manifest["task"] == "avsiam"
    saved = json.loads((art.path / "metrics.json").read_text())
    assert saved["a2v_r@1"] == m["a2v_r@1"] and saved["acc_audio_only"] == m["acc_audio_only"]
    assert "acc_audio_only" in (art.path / "metrics.md").read_text()
    with pytest.raises(UsageError, match="5 classes"):
        evaluate_clips_artifact(ClipsEvalConfig(), _model_file(tmp_path / "m5.pt", 5), feats, tmp_path / "e5",
                                show_progress=False)  # fmt: skip
    assert not (tmp_path / "e5").exists()


def test_avkd_evaluate_dispatches_on_clips_features(feats: Path, tmp_path: Path, capsys) -> None:
    model = _model_file(tmp_path / "model.pt")
    out = tmp_path / "ev"
    assert main(["evaluate", "--model", str(model), "--data", str(feats), "--out", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["metrics"]["clips"] == 3 and "v2a_r@1" in got["metrics"]
    assert load_artifact(out).config["split"] == "test"
    bad = [
        "evaluate",
        "--model",
        str(model),
        "--data",
        str(feats),
        "--out",
        str(tmp_path / "b"),
        "--frames",
        "7",
    ]
    assert main(bad) != 0
    err = capsys.readouterr().err.strip()
    assert "--frames" in err and len(err.splitlines()) == 1
