"""CMU-MOSEI ingest (``avkd.data.mosei.ingest``) and its synthetic corpus (``avkd.data.mosei.synthetic``)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avkd.core.artifacts import MOSEI_FEATURES, load_artifact
from avkd.core.errors import ArtifactError
from avkd.data.failures import read_failures
from avkd.data.mosei.dataset import MoseiDataset
from avkd.data.mosei.format import FEATURES, MODALITIES, SOURCE_SPLITS, SPLITS
from avkd.data.mosei.ingest import MoseiIngestConfig, fit_length, ingest_mosei
from avkd.data.mosei.labels import label7
from avkd.data.mosei.safe_pickle import load_pickle_safely
from avkd.data.mosei.sdk import load_folds
from avkd.data.mosei.synthetic import SynthMoseiConfig, synthesize_mosei

# Short sequences so that truncation happens (segments hold up to ~10 words, 300 audio and 90 video frames).
LENGTHS = {"text_len": 8, "audio_len": 120, "vision_len": 40}
SYNTH = SynthMoseiConfig(seed=3, **LENGTHS)
INGEST = MoseiIngestConfig(**LENGTHS)
COVAREP = "acoustic/CMU_MOSEI_COVAREP.csd"
FACET = "visual/CMU_MOSEI_VisualFacet42.csd"
WORDS = "language/CMU_MOSEI_TimestampedWordVectors.csd"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("mosei")
    summary = synthesize_mosei(root / "csd", SYNTH, pickle_path=root / "mosei_senti_data_noalign.pkl")
    from_csd = ingest_mosei(INGEST, root / "csd", root / "from_csd")
    from_pkl = ingest_mosei(INGEST, root / "mosei_senti_data_noalign.pkl", root / "from_pkl")
    return {"root": root, "summary": summary, "csd": from_csd, "pkl": from_pkl}


def _read_all(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as h5:
        for split in SPLITS:
            for name in h5[split]:
                out[f"{split}/{name}"] = h5[split][name][()]
    return out


def _copy_csd(corpus: dict, tmp_path: Path) -> Path:
    dst = tmp_path / "csd"
    shutil.copytree(corpus["root"] / "csd", dst)
    return dst


def _assert_nothing_complete(out: Path) -> None:
    assert not out.exists()
    with pytest.raises(ArtifactError):
        load_artifact(out)


# ------------------------------------------------------------------------------------------ synthetic


def test_synthetic_layout_ids_and_determinism(corpus: dict, tmp_path: Path) -> None:
    root = corpus["root"] / "csd"
    folds = load_folds()
    with h5py.File(root / COVAREP, "r") as h5:
        assert list(h5.keys()) == ["COVAREP"]
        meta = h5["COVAREP/metadata"]
        assert json.loads(meta["root name"][0]) == "COVAREP"
        assert "dimension namescomputational sequence version" in meta  # the SDK's missing-comma key (§3.1)
        for vid, group in h5["COVAREP/data"].items():
            assert group["features"].shape[1] == 74
            assert group["intervals"].shape == (group["features"].shape[0], 2)
            assert vid.startswith("synthetic_nofold") or vid in folds
    with h5py.File(root / "labels/CMU_MOSEI_Labels.csd", "r") as h5:
        vids = list(h5["All Labels/data"])
        labels = np.concatenate([h5["All Labels/data"][v]["features"][:, 0] for v in vids])
    assert sum(v in folds for v in vids) == 12 + 4 + 6
    assert np.all(np.abs(labels) <= 3)
    again = synthesize_mosei(tmp_path / "again", SYNTH)
    assert again["segments"] == corpus["summary"]["segments"]
    with h5py.File(tmp_path / "again" / COVAREP, "r") as a, h5py.File(root / COVAREP, "r") as b:
        for vid in a["COVAREP/data"]:
            np.testing.assert_array_equal(
                a["COVAREP/data"][vid]["features"][()], b["COVAREP/data"][vid]["features"][()]
            )


# ----------------------------------------------------------------------------------------- the ingest


def test_csd_and_pickle_routes_give_identical_contents(corpus: dict) -> None:
    a = _read_all(corpus["csd"].path / FEATURES)
    b = _read_all(corpus["pkl"].path / FEATURES)
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for field in ("per_split", "nonfinite_replaced", "videos_per_split"):
        assert corpus["csd"].metrics[field] == corpus["pkl"].metrics[field]
    assert corpus["csd"].kind == MOSEI_FEATURES and corpus["csd"].status == "complete"


def test_shapes_left_padding_and_truncation(corpus: dict) -> None:
    config = INGEST
    root = corpus["root"] / "csd"
    with h5py.File(corpus["csd"].path / FEATURES, "r") as h5, h5py.File(root / COVAREP, "r") as cov:
        counts = Counter()
        for split in SPLITS:
            g = h5[split]
            n = g["label"].shape[0]
            assert n == corpus["csd"].metrics["per_split"][split] > 0
            assert g["text"].shape == (n, 8, 300) and g["audio"].shape == (n, 120, 74)
            assert g["vision"].shape == (n, 40, 35) and g["interval"].shape == (n, 2)
            assert all(g[m].dtype == np.float32 for m in MODALITIES)
            for i in range(n):
                vid = g["ids"][i].decode()
                start, end = g["interval"][i]
                iv = cov["COVAREP/data"][vid]["intervals"][()]
                expected = int(
                    ((iv[:, 0] < end) & (iv[:, 1] > start)).sum()
                )  # frames overlapping the segment
                audio = g["audio"][i]
                real = np.flatnonzero(np.abs(audio).sum(axis=1) > 0)
                assert real.size == min(expected, config.audio_len)
                # Left padding: all-zero frames first, content in the last rows.
                assert real[0] == config.audio_len - real.size and real[-1] == config.audio_len - 1
                counts["truncated" if expected > config.audio_len else "padded"] += 1
    assert counts["truncated"] > 0 and counts["padded"] > 0


def test_fit_length_keeps_last_frames_and_pads_left() -> None:
    frames = np.arange(1, 11, dtype=np.float32).reshape(5, 2)
    np.testing.assert_array_equal(fit_length(frames, 3), frames[-3:])
    padded = fit_length(frames, 7)
    np.testing.assert_array_equal(padded[:2], 0)
    np.testing.assert_array_equal(padded[2:], frames)


def test_nonfinite_values_replaced_and_counted(corpus: dict) -> None:
    with open(corpus["root"] / "mosei_senti_data_noalign.pkl", "rb") as handle:
        raw = pickle.load(handle)  # our own file: plain pickle is fine here
    expected = sum(int((~np.isfinite(raw[SOURCE_SPLITS[s]]["audio"])).sum()) for s in SPLITS)
    assert expected > 0
    assert corpus["csd"].metrics["nonfinite_replaced"] == {"text": 0, "audio": expected, "vision": 0}
    data = _read_all(corpus["csd"].path / FEATURES)
    assert all(np.isfinite(v).all() for k, v in data.items() if k.split("/")[1] in MODALITIES)


def test_missing_modality_goes_to_failures(corpus: dict) -> None:
    failures = read_failures(corpus["csd"])
    summary = corpus["summary"]
    missing_audio = summary["missing_audio_videos"][0]
    empty_vision = summary["empty_vision_videos"][0]
    by_video = {}
    for f in failures:
        by_video.setdefault(f["video"], []).append(f)
        assert set(f) >= {"split", "video", "segment", "interval", "modality", "reason"}
    assert {f["modality"] for f in by_video[missing_audio]} == {"audio"}
    assert "no audio entry" in by_video[missing_audio][0]["reason"]
    assert [(f["modality"], f["segment"]) for f in by_video[empty_vision]] == [("vision", 0)]
    assert corpus["csd"].metrics["failures"] == len(failures) == len(by_video[missing_audio]) + 1
    assert corpus["csd"].metrics["videos_without_fold"] == 1
    with h5py.File(corpus["csd"].path / FEATURES, "r") as h5:
        ids = {x.decode() for s in SPLITS for x in h5[s]["ids"][()]}
        valid = list(zip([x.decode() for x in h5["val"]["ids"][()]], h5["val"]["interval"][()], strict=True))
    assert missing_audio not in ids and not any(v.startswith("synthetic_nofold") for v in ids)
    first = by_video[empty_vision][0]["interval"]
    assert not any(v == empty_vision and np.allclose(iv, first) for v, iv in valid)


def test_pickle_nan_vision_counted_and_nan_label_is_a_failure(corpus: dict, tmp_path: Path) -> None:
    with open(corpus["root"] / "mosei_senti_data_noalign.pkl", "rb") as handle:
        data = pickle.load(handle)
    data["test"]["vision"][0, -1, :3] = np.nan
    data["test"]["vision"][1, -1, 0] = np.inf
    data["test"]["labels"][2] = np.nan
    path = tmp_path / "nan.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))
    art = ingest_mosei(INGEST, path, tmp_path / "out")
    assert art.metrics["nonfinite_replaced"]["vision"] == 4
    assert art.metrics["per_split"]["test"] == corpus["pkl"].metrics["per_split"]["test"] - 1
    (failure,) = read_failures(art)
    assert failure["split"] == "test" and failure["segment"] == 2 and failure["kind"] == "label not finite"
    ds = MoseiDataset(art, "test")
    np.testing.assert_array_equal(ds[0][2][-1, :3].numpy(), 0.0)
    ds.close()


# ------------------------------------------------------------------------------------------------ errors


def test_wrong_feature_dimension_is_one_clear_error(corpus: dict, tmp_path: Path) -> None:
    src = _copy_csd(corpus, tmp_path)
    with h5py.File(src / COVAREP, "a") as h5:
        vid = next(iter(h5["COVAREP/data"]))
        group = h5["COVAREP/data"][vid]
        features = group["features"][()]
        del group["features"]
        group.create_dataset("features", data=features[:, :73])
    out = tmp_path / "out"
    with pytest.raises(
        ArtifactError, match=r"CMU_MOSEI_COVAREP\.csd: entry .* 73 features per frame, expected 74"
    ):
        ingest_mosei(INGEST, src, out)
    _assert_nothing_complete(out)
    assert json.loads((tmp_path / "out.partial" / "avkd.json").read_text())["status"] == "partial"
    # Fix the source: a plain rerun refuses to discard the partial run, --resume finishes it.
    shutil.copy2(corpus["root"] / "csd" / COVAREP, src / COVAREP)
    with pytest.raises(ArtifactError, match="pass --resume"):
        ingest_mosei(INGEST, src, out)
    assert ingest_mosei(INGEST, src, out, resume=True).id == corpus["csd"].id


def test_corrupted_hdf5_is_one_clear_error(corpus: dict, tmp_path: Path) -> None:
    src = _copy_csd(corpus, tmp_path)
    (src / FACET).write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(2000))
    out = tmp_path / "out"
    with pytest.raises(
        ArtifactError, match=r"CMU_MOSEI_VisualFacet42\.csd: not a readable HDF5 file"
    ) as info:
        ingest_mosei(INGEST, src, out)
    assert "\n" not in str(info.value)
    _assert_nothing_complete(out)


def test_missing_modality_file_is_one_clear_error(corpus: dict, tmp_path: Path) -> None:
    src = _copy_csd(corpus, tmp_path)
    (src / WORDS).unlink()
    out = tmp_path / "out"
    with pytest.raises(ArtifactError, match=r"CMU_MOSEI_TimestampedWordVectors\.csd: modality file missing"):
        ingest_mosei(INGEST, src, out)
    _assert_nothing_complete(out)


class Custom:
    """A class a pickle must not be allowed to instantiate."""

    def __init__(self) -> None:
        self.x = 1


class RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("payload", ["os.system", "custom class"])
def test_pickle_with_other_objects_is_refused(payload: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    arrays = {"text": np.zeros((1, 8, 300), np.float32)}
    evil = RunsCode(marker) if payload == "os.system" else Custom()
    data = {SOURCE_SPLITS[s]: {**arrays, "labels": np.zeros((1, 1, 1)), "extra": evil} for s in SPLITS}
    path = tmp_path / "mosei_senti_data_noalign.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    name = f"{os.system.__module__}.system" if payload == "os.system" else f"{__name__}.Custom"
    expected = f"{path}: refusing to load {name} from a pickle (only numpy arrays are allowed)"
    with pytest.raises(ArtifactError) as info:
        load_pickle_safely(path)
    assert str(info.value) == expected
    out = tmp_path / "out"
    with pytest.raises(ArtifactError, match="refusing to load"):
        ingest_mosei(INGEST, path, out)
    _assert_nothing_complete(out)
    assert not marker.exists()


def test_safe_unpickler_reads_arrays_of_every_protocol(tmp_path: Path) -> None:
    data = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "id": np.array([["v", "1.5", "2.0"]]),
        "s": np.float64(2),
    }
    for protocol in (2, 3, 4, 5):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        back = load_pickle_safely(path)
        np.testing.assert_array_equal(back["a"], data["a"])
        np.testing.assert_array_equal(back["id"], data["id"])
        assert back["s"] == 2.0


def test_pickle_with_wrong_dimension_is_one_clear_error(corpus: dict, tmp_path: Path) -> None:
    with open(corpus["root"] / "mosei_senti_data_noalign.pkl", "rb") as handle:
        data = pickle.load(handle)
    data["valid"]["audio"] = data["valid"]["audio"][:, :, :73]
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))
    with pytest.raises(ArtifactError, match=r"bad\.pkl: valid audio has 73 features per frame, expected 74"):
        ingest_mosei(INGEST, path, tmp_path / "out")
    _assert_nothing_complete(tmp_path / "out")


def test_overwrite_and_resume_rules(corpus: dict, tmp_path: Path) -> None:
    src = corpus["root"] / "mosei_senti_data_noalign.pkl"
    out = tmp_path / "out"
    first = ingest_mosei(INGEST, src, out)
    with pytest.raises(ArtifactError, match="already exists; pass --overwrite"):
        ingest_mosei(INGEST, src, out)
    assert ingest_mosei(INGEST, src, out, resume=True).id == first.id
    assert ingest_mosei(INGEST, src, out, overwrite=True).id == first.id
    assert first.id == corpus["pkl"].id


# ----------------------------------------------------------------------------------------------- dataset


def test_dataset_returns_the_stored_tensors(corpus: dict) -> None:
    ds = MoseiDataset(corpus["csd"].path, "test")
    assert len(ds) == corpus["csd"].metrics["per_split"]["test"]
    text, audio, vision, label, index = ds[2]
    assert text.shape == (8, 300) and audio.shape == (120, 74) and vision.shape == (40, 35)
    assert text.dtype == audio.dtype == vision.dtype == label.dtype == torch.float32
    assert index == 2 and label.ndim == 0
    with h5py.File(corpus["csd"].path / FEATURES, "r") as h5:
        np.testing.assert_array_equal(audio.numpy(), h5["test"]["audio"][2])
        np.testing.assert_array_equal(text.numpy(), h5["test"]["text"][2])
        assert label.item() == pytest.approx(float(h5["test"]["label"][2]))
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch[1].shape == (4, 120, 74) and batch[4].tolist() == [0, 1, 2, 3]
    ds2 = pickle.loads(pickle.dumps(ds))  # what DataLoader workers receive: no open handle crosses
    torch.testing.assert_close(ds2[2][2], vision)
    with pytest.raises(IndexError):
        ds[len(ds)]
    ds.close()


def test_configs_round_trip_through_the_config_layer() -> None:
    from avkd.core import config as cfg

    for config in (INGEST, SYNTH):
        assert cfg.from_dict(type(config), cfg.to_dict(config)) == config


def test_label7_matches_multiclass_acc_rounding() -> None:
    values = [-3.4, -3.0, -2.6, -0.5, -0.49, 0.0, 0.33, 0.5, 1.5, 2.5, 2.51, 3.7]
    expected = [
        0,
        0,
        0,
        3,
        3,
        3,
        3,
        3,
        5,
        5,
        6,
        6,
    ]  # np.round is half-to-even: -0.5->-0, 0.5->0, 1.5->2, 2.5->2
    assert label7(np.array(values)).tolist() == expected
    assert label7(torch.tensor(values)).tolist() == expected
    assert label7(-3.4) == 0 and label7(-0.5) == 3 and isinstance(label7(1.2), int)
