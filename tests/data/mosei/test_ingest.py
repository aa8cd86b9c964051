"""CMU-MOSEI ingest (``avkd.data.mosei.ingest``) from the SDK's .csd files and from MulT's pickle."""

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

from avkd.core.artifacts import MOSEI_FEATURES
from avkd.core.errors import ArtifactError
from avkd.data.failures import read_failures
from avkd.data.mosei.dataset import MoseiDataset
from avkd.data.mosei.format import FEATURES, MODALITIES, SOURCE_SPLITS, SPLITS
from avkd.data.mosei.ingest import fit_length, ingest_mosei
from tests.data.mosei.corpus import COVAREP, FACET, INGEST, PICKLE, SYNTH, WORDS, assert_nothing_complete


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
    with open(corpus["root"] / PICKLE, "rb") as handle:
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
    with open(corpus["root"] / PICKLE, "rb") as handle:
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
    assert_nothing_complete(out)
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
    assert_nothing_complete(out)


def test_missing_modality_file_is_one_clear_error(corpus: dict, tmp_path: Path) -> None:
    src = _copy_csd(corpus, tmp_path)
    (src / WORDS).unlink()
    out = tmp_path / "out"
    with pytest.raises(ArtifactError, match=r"CMU_MOSEI_TimestampedWordVectors\.csd: modality file missing"):
        ingest_mosei(INGEST, src, out)
    assert_nothing_complete(out)


def test_pickle_with_wrong_dimension_is_one_clear_error(corpus: dict, tmp_path: Path) -> None:
    with open(corpus["root"] / PICKLE, "rb") as handle:
        data = pickle.load(handle)
    data["valid"]["audio"] = data["valid"]["audio"][:, :, :73]
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))
    with pytest.raises(ArtifactError, match=r"bad\.pkl: valid audio has 73 features per frame, expected 74"):
        ingest_mosei(INGEST, path, tmp_path / "out")
    assert_nothing_complete(tmp_path / "out")


def test_overwrite_and_resume_rules(corpus: dict, tmp_path: Path) -> None:
    src = corpus["root"] / PICKLE
    out = tmp_path / "out"
    first = ingest_mosei(INGEST, src, out)
    with pytest.raises(ArtifactError, match="already exists; pass --overwrite"):
        ingest_mosei(INGEST, src, out)
    assert ingest_mosei(INGEST, src, out, resume=True).id == first.id
    assert ingest_mosei(INGEST, src, out, overwrite=True).id == first.id
    assert first.id == corpus["pkl"].id


# ------------------------------------------------------------------------------------------------ config


def test_configs_round_trip_through_the_config_layer() -> None:
    from avkd.core import config as cfg

    for config in (INGEST, SYNTH):
        assert cfg.from_dict(type(config), cfg.to_dict(config)) == config


def test_replaced_nonfinite_values_are_a_warning_line(corpus: dict, tmp_path: Path, capsys) -> None:
    art = ingest_mosei(INGEST, corpus["root"] / PICKLE, tmp_path / "f")
    count = art.metrics["nonfinite_replaced"]["audio"]
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f"warning: {corpus['root'] / PICKLE}: {count:,} non-finite audio values "
        f"({count / (art.metrics['segments'] * INGEST.audio_len * INGEST.audio_dim):.1%} of those stored) replaced by 0"
    ]
