"""The γ corpus of ``avkd data synth mosei --gamma`` (docs/mfh.md §10): the video carries a share γ of the label's
decisive latents, only inside each segment's event window; ``gamma=None`` is the corpus it always was."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from avkd.cli.main import main
from avkd.core.errors import UsageError
from avkd.data.mosei.synthetic import GAMMA_FILE, SEQUENCES, SynthMoseiConfig, synthesize_mosei

FACET = "visual/CMU_MOSEI_VisualFacet42.csd"
LABELS = "labels/CMU_MOSEI_Labels.csd"

#: Big enough for a stable probe: about 300 labelled segments.
PROBE = {
    "train_videos": 60,
    "val_videos": 20,
    "test_videos": 30,
    "text_len": 6,
    "audio_len": 60,
    "vision_len": 60,
}


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for folder, filename, key in SEQUENCES.values():
        with h5py.File(root / folder / f"{filename}.csd", "r") as f:
            for vid in sorted(f[key]["data"]):
                group = f[key]["data"][vid]
                h.update(vid.encode())
                h.update(group["features"][()].tobytes())
                h.update(group["intervals"][()].tobytes())
    return h.hexdigest()


def test_gamma_none_is_the_corpus_it_was(tmp_path: Path) -> None:
    """The digest was taken from the generator before the γ corpus existed: same seed, same bytes."""
    cfg = SynthMoseiConfig(
        seed=5, train_videos=4, val_videos=2, test_videos=2, text_dim=8, audio_dim=6, vision_dim=5
    )
    summary = synthesize_mosei(tmp_path, cfg)
    assert _digest(tmp_path) == "753b3067678e484658316b5785b31207573aee6a8ebe79e96849a27c9e046031"
    assert "gamma" not in summary and not (tmp_path / GAMMA_FILE).exists()


def _segments(root: Path, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Per labelled segment: the mean of its FACET frames (all of them, those in its event window, or those
    outside it) and its sentiment."""
    windows = json.loads((root / GAMMA_FILE).read_text())["windows"]
    xs, ys = [], []
    with h5py.File(root / FACET, "r") as v, h5py.File(root / LABELS, "r") as lab:
        for vid, group in lab["All Labels/data"].items():
            if vid not in v["FACET 4.2/data"]:
                continue
            feats = v["FACET 4.2/data"][vid]["features"][()]
            iv = v["FACET 4.2/data"][vid]["intervals"][()]
            for (s, e), (w0, w1), y in zip(
                group["intervals"][()], windows[vid], group["features"][:, 0], strict=True
            ):
                assert s <= w0 < w1 <= e  # the window lies inside its segment
                seg = (iv[:, 0] < e) & (iv[:, 1] > s)
                win = (iv[:, 0] < w1) & (iv[:, 1] > w0)
                sel = {"all": seg, "window": seg & win, "outside": seg & ~win}[where]
                if sel.any():
                    xs.append(feats[sel].mean(axis=0))
                    ys.append(y)
    return np.array(xs), np.array(ys)


def _probe(x: np.ndarray, y: np.ndarray) -> float:
    """Held-out correlation of a least-squares linear probe (first half fits, second half scores)."""
    a = np.c_[x, np.ones(len(x))]
    half = len(y) // 2
    w = np.linalg.lstsq(a[:half], y[:half], rcond=None)[0]
    return float(np.corrcoef(a[half:] @ w, y[half:])[0, 1])


@pytest.fixture(scope="module")
def gamma_corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[float, tuple[Path, dict]]:
    root = tmp_path_factory.mktemp("gamma")
    return {
        g: (root / str(g), synthesize_mosei(root / str(g), SynthMoseiConfig(gamma=g, **PROBE)))
        for g in (0.0, 0.5, 1.0)
    }


def test_gamma_corpus_shapes_and_truth(gamma_corpora: dict) -> None:
    root, summary = gamma_corpora[0.5]
    assert summary["gamma"]["gamma_effective"] == 0.5
    assert summary["gamma"]["shared_latents"] == [0, 1]
    truth = json.loads((root / GAMMA_FILE).read_text())
    with h5py.File(root / FACET, "r") as v, h5py.File(root / LABELS, "r") as lab:
        for vid, group in lab["All Labels/data"].items():
            assert group["features"].shape[1] == 7
            assert np.all(np.abs(group["features"][:, 0]) <= 3)
            assert len(truth["windows"][vid]) == len(group["intervals"])
        assert {g["features"].shape[1] for g in v["FACET 4.2/data"].values()} == {35}
    for folder, filename, key in SEQUENCES.values():
        with h5py.File(root / folder / f"{filename}.csd", "r") as f:
            dims = {g["features"].shape[1] for g in f[key]["data"].values()}
        assert dims == {{"language": 300, "acoustic": 74, "visual": 35, "labels": 7}[folder]}


def test_gamma_only_changes_the_video(gamma_corpora: dict) -> None:
    """Labels, text and audio are the same draws at every γ (only the video's shared slots differ)."""
    (a, _), (b, _) = gamma_corpora[0.0], gamma_corpora[1.0]
    for folder, filename, key in SEQUENCES.values():
        with (
            h5py.File(a / folder / f"{filename}.csd", "r") as fa,
            h5py.File(b / folder / f"{filename}.csd", "r") as fb,
        ):
            vid = sorted(fa[key]["data"])[1]
            same = np.array_equal(fa[key]["data"][vid]["features"][()], fb[key]["data"][vid]["features"][()])
        assert same == (folder != "visual"), folder


def test_video_carries_the_label_in_proportion_to_gamma_and_only_in_the_window(gamma_corpora: dict) -> None:
    r = {g: _probe(*_segments(root, "all")) for g, (root, _) in gamma_corpora.items()}
    assert abs(r[0.0]) < 0.25  # γ = 0: a linear probe on the video is at chance
    assert r[0.5] > 0.35 and r[1.0] > r[0.5] + 0.1  # more shared latents, more label in the video
    root = gamma_corpora[1.0][0]
    inside, outside = _probe(*_segments(root, "window")), _probe(*_segments(root, "outside"))
    # The information varies in time: the window's frames hold it, the rest of the segment does not.
    assert inside > 0.85 and abs(outside) < 0.25


def test_gamma_bad_values(tmp_path: Path) -> None:
    for bad in ({"gamma": 1.5}, {"gamma": 0.5, "gamma_window": 2.0}, {"gamma": 0.5, "gamma_latents": 0}):
        with pytest.raises(UsageError, match="gamma"):
            synthesize_mosei(tmp_path / "x", SynthMoseiConfig(**bad))


def test_synth_command_takes_gamma(tmp_path: Path, capsys) -> None:
    small = ["--set", "train_videos=3", "--set", "val_videos=1", "--set", "test_videos=1"]
    assert main(["data", "synth", "mosei", str(tmp_path / "c"), "--gamma", "0.25", *small, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["gamma"]["shared_latents"] == [0]
    assert json.loads((tmp_path / "c" / GAMMA_FILE).read_text())["gamma_effective"] == 0.25
    assert main(["data", "synth", "mosei", str(tmp_path / "d"), "--gamma", "2", *small]) == 2
    assert "gamma must be in [0, 1]" in capsys.readouterr().err
