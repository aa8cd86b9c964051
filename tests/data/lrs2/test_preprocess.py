from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from avkd.core.artifacts import load_artifact
from avkd.core.errors import AvkdError, UsageError
from avkd.core.jsonl import read_jsonl
from avkd.data.failures import check_failure_share
from avkd.data.lrs2 import preprocess as pre
from avkd.data.lrs2.layout import list_utterances
from avkd.data.lrs2.preprocess import LRS2PreprocessConfig, extract_features, merge_lrs2, preprocess_lrs2
from avkd.data.lrs2.store import FeatureStore
from avkd.media.audio import from_int16, vocalist_mel
from avkd.media.encode import write_mp4
from avkd.media.faces import build_detector
from tests.clips import marker_clip


def test_shapes_and_index(features, synth_corpus: Path) -> None:
    store = FeatureStore(features)
    utts = list_utterances(synth_corpus)
    assert [e["key"] for e in store.entries.values()] == [u.key for u in utts]
    assert features.metrics["failures"] == 0
    for key in store:
        info = store.info(key)
        n = info["n_frames"]
        frames = store.frames(key)
        assert frames.shape == (n, 96, 96, 3) and frames.dtype == np.uint8
        audio = store.audio(key)
        assert audio.shape == (640 * n,) and audio.dtype == np.int16
        mel = store.mel(key)
        assert mel.shape == (80, 640 * n // 200 + 1) and mel.dtype == np.float32
        # the stored mel is the VocaLiST mel of the stored (int16) audio
        np.testing.assert_allclose(mel, vocalist_mel(from_int16(audio)), atol=1e-4)
    assert set(store.keys("test")) == {u.key for u in utts if u.split == "test"}
    # parts hold at most part_size utterances and are listed with hashes in the manifest
    parts = [name for name in features.files if name.startswith("parts/")]
    assert len(parts) == -(-len(utts) // 4)


def test_frame_n_starts_at_audio_sample_640n(tmp_path: Path) -> None:
    clip = tmp_path / "marker.mp4"
    marker_clip(clip, n_frames=50, event=20)
    config = LRS2PreprocessConfig()
    for decoder in ("pyav", "decord"):
        config.decoder = decoder
        feats = extract_features(clip, "test/spk/00001", config, build_detector("fixed"))
        brightness = feats.frames.reshape(50, -1).mean(axis=1)
        assert int(np.argmax(brightness)) == 20
        wave = from_int16(feats.audio)
        onset = int(np.argmax(np.abs(wave) > 0.2))
        assert abs(onset - 640 * 20) <= 16, (decoder, onset)


def _bad_corpus(src: Path, dst: Path) -> Path:
    """A copy of the synthetic corpus with one broken file of each kind in the test split."""
    shutil.copytree(src, dst)
    test_lines = (dst / "test.txt").read_text().splitlines()
    main = dst / "main" / "9999999999999999999"
    main.mkdir(parents=True)
    good = next(iter((dst / "main").rglob("*.mp4")))
    frames = np.full((40, 160, 160, 3), 90, np.uint8)
    data = good.read_bytes()
    (main / "00001.mp4").write_bytes(data[: len(data) // 2])  # truncated
    (main / "00002.mp4").write_bytes(b"not a video at all")  # undecodable
    write_mp4(main / "00003.mp4", frames, 25, None)  # video without audio
    (main / "00004.mp4").write_bytes(b"")  # zero-length file
    write_mp4(main / "00005.mp4", frames, 30, np.zeros(int(40 / 30 * 16000), np.float32))  # 30 fps
    write_mp4(main / "00006.mp4", frames, 25, np.zeros(int(40 / 25 * 22050), np.float32), sample_rate=22050)
    new = [f"9999999999999999999/0000{i} NF" for i in range(1, 8)]  # 00007 is missing on disk
    (dst / "test.txt").write_text("\n".join(test_lines + new) + "\n")
    return dst


def test_bad_inputs_go_to_the_failures_list(synth_corpus: Path, tmp_path: Path) -> None:
    root = _bad_corpus(synth_corpus, tmp_path / "bad")
    result = preprocess_lrs2(LRS2PreprocessConfig(), root, tmp_path / "feats", show_progress=False)
    art = result.artifact
    failures = {f["key"].split("/")[-1]: f["reason"] for f in read_jsonl(art.path / "failures.jsonl")}
    assert set(failures) == {f"0000{i}" for i in range(1, 8)}
    assert "no audio stream" in failures["00003"]
    assert "empty file" in failures["00004"]
    assert "frame rate 30 fps, expected 25" in failures["00005"]
    assert "sample rate 22050 Hz, expected 16000" in failures["00006"]
    assert failures["00007"].startswith("file missing")
    assert art.metrics["utterances"] == 10 and art.metrics["failures"] == 7
    with pytest.raises(AvkdError, match=r"7 of 17 utterances failed \(41.2% > 1%\)"):
        check_failure_share(art, 0.01)
    check_failure_share(art, 0.5)
    # the good utterances are all there
    assert len(FeatureStore(art)) == 10


def test_resample_converts_other_rates(synth_corpus: Path, tmp_path: Path) -> None:
    clip = tmp_path / "30fps.mp4"
    frames = np.zeros((45, 160, 160, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(45, dtype=np.uint8)[:, None, None] * 5  # frame index in the red channel
    write_mp4(clip, frames, 30, np.zeros(int(1.5 * 22050), np.float32), sample_rate=22050)
    config = LRS2PreprocessConfig(resample=True, detector=pre.DetectorConfig(box=(0.0, 0.0, 1.0, 1.0)))
    feats = extract_features(clip, "test/s/u", config, config.detector.build())
    assert feats.frames.shape[0] == 37  # 1.5 s at 25 fps, limited by the resampled audio (1.5 s)
    assert feats.audio.shape == (37 * 640,)
    red = feats.frames[:, 48, 48, 0].astype(int)
    expected = (np.floor(np.arange(37) * 30 / 25 + 1e-6) * 5).astype(int)
    assert np.all(np.abs(red - expected) <= 3)


def _arrays(art) -> dict[str, tuple]:
    store = FeatureStore(art)
    return {k: (store.frames(k), store.audio(k), store.mel(k)) for k in store}


def _index_without_parts(art) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "part"} for e in read_jsonl(art.path / "utterances.jsonl")]


def test_shards_merge_to_the_single_run(features, synth_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "feats"
    for index in range(3):
        config = LRS2PreprocessConfig(part_size=4, shard_index=index, shard_count=3)
        preprocess_lrs2(config, synth_corpus, pre.shard_path(out, index, 3), show_progress=False)
    shards = pre.find_shards(out)
    assert len(shards) == 3
    with pytest.raises(AvkdError, match=r"missing shard\(s\) 1/3"):
        merge_lrs2([shards[0], shards[2]], out)
    with pytest.raises(AvkdError, match="given twice"):
        merge_lrs2([shards[0], shards[0], shards[1], shards[2]], out)
    merged = merge_lrs2(shards, out)
    assert _index_without_parts(merged) == _index_without_parts(features)
    single, joined = _arrays(features), _arrays(merged)
    assert single.keys() == joined.keys()
    for key in single:
        for a, b in zip(single[key], joined[key], strict=True):
            np.testing.assert_array_equal(a, b)
    assert merged.metrics == features.metrics
    assert [i["id"] for i in merged.manifest["inputs"]] == [load_artifact(s).id for s in shards]


def test_interrupted_run_resumes_where_it_stopped(
    features, synth_corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "feats"
    real = pre._process
    calls = {"n": 0}

    def dying(utt):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt  # stands in for a kill after 6 utterances (one part of 4 on disk)
        return real(utt)

    monkeypatch.setattr(pre, "_process", dying)
    with pytest.raises(KeyboardInterrupt):
        preprocess_lrs2(LRS2PreprocessConfig(part_size=4), synth_corpus, out, show_progress=False)
    assert not out.exists()
    partial = Path(str(out) + ".partial")
    assert json.loads((partial / "avkd.json").read_text())["status"] == "partial"
    assert len(list((partial / "parts").glob("part-*.h5"))) == 1
    with pytest.raises(AvkdError, match="pass --resume"):
        preprocess_lrs2(LRS2PreprocessConfig(part_size=4), synth_corpus, out, show_progress=False)
    monkeypatch.setattr(pre, "_process", real)
    result = preprocess_lrs2(
        LRS2PreprocessConfig(part_size=4), synth_corpus, out, resume=True, show_progress=False
    )
    assert result.skipped == 4 and result.processed == 6
    assert _index_without_parts(result.artifact) == _index_without_parts(features)
    for key, arrays in _arrays(features).items():
        for a, b in zip(arrays, _arrays(result.artifact)[key], strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.slow  # ~3 s: a process pool whose workers each import the preprocessing stack
def test_two_workers_give_the_same_features(features, synth_corpus: Path, tmp_path: Path) -> None:
    result = preprocess_lrs2(
        LRS2PreprocessConfig(part_size=4), synth_corpus, tmp_path / "f", workers=2, show_progress=False
    )
    assert _index_without_parts(result.artifact) == _index_without_parts(features)
    assert result.artifact.id == features.id


def test_boxes_detector_uses_the_users_boxes(synth_corpus: Path, tmp_path: Path) -> None:
    utts = list_utterances(synth_corpus, ["test"])
    boxes = tmp_path / "boxes.csv"
    lines = ["key,frame,x0,y0,x1,y1"] + [f"{u.source_key},0,10,20,90,100" for u in utts]
    boxes.write_text("\n".join(lines) + "\n")
    config = LRS2PreprocessConfig(
        splits=["test"], detector=pre.DetectorConfig(name="boxes", boxes_file=str(boxes))
    )
    art = preprocess_lrs2(config, synth_corpus, tmp_path / "f", show_progress=False).artifact
    store = FeatureStore(art)
    key = store.keys()[0]
    with h5py.File(art.path / store.info(key)["part"]) as h5:
        assert (h5[key]["boxes"][:] == [10, 20, 90, 100]).all()


def test_bad_shard_and_split_are_usage_errors(synth_corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        pre.parse_shard("3/3")
    assert pre.parse_shard("2/8") == (2, 8)
    assert pre.shard_from_env(
        {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "8"}
    ) == (4, 8)
    assert pre.shard_from_env({}) is None
    with pytest.raises(UsageError, match="unknown LRS2 split 'dev'"):
        preprocess_lrs2(
            LRS2PreprocessConfig(splits=["dev"]), synth_corpus, tmp_path / "x", show_progress=False
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(AvkdError, match="split file missing"):
        preprocess_lrs2(LRS2PreprocessConfig(), tmp_path / "empty", tmp_path / "y", show_progress=False)


def test_frame_codecs(features, synth_corpus: Path, tmp_path: Path) -> None:
    """raw frames are stored losslessly; the default JPEG frames are close to them (and much smaller)."""
    config = LRS2PreprocessConfig(splits=["test"], frame_codec="raw")
    raw = FeatureStore(preprocess_lrs2(config, synth_corpus, tmp_path / "raw", show_progress=False).artifact)
    jpeg = FeatureStore(features)
    raw_bytes = jpeg_bytes = 0
    for key in raw:
        utt = next(u for u in list_utterances(synth_corpus, ["test"]) if u.key == key)
        exact = extract_features(utt.path, key, config, config.detector.build()).frames
        np.testing.assert_array_equal(raw.frames(key), exact)
        lossy = jpeg.frames(key)
        assert lossy.shape == exact.shape and lossy.dtype == np.uint8
        mse = np.mean((lossy.astype(np.float64) - exact) ** 2)
        assert 10 * np.log10(255**2 / mse) > 35  # PSNR of JPEG q95
        np.testing.assert_array_equal(jpeg.frames(key, 3, 8), lossy[3:8])  # windows decode the same frames
        raw_bytes += raw.dataset(key, "frames").id.get_storage_size()
        jpeg_bytes += sum(len(b) for b in jpeg.dataset(key, "frames")[:])
    assert jpeg_bytes < raw_bytes / 2
