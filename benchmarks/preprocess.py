"""Preprocessing and feature-reading throughput on the synthetic corpus, against the straightforward way.

Prints, in one run on the same corpus:
1. preprocessing speed: seconds of video processed per second per worker, for each detector;
2. storage: bytes per stored frame for each HDF5 filter, against one JPEG per 96x96 crop (the Wav2Lip layout
   VocaLiST reads);
3. random reads: 5-frame windows per second for several chunk lengths and filters (how FRAME_CHUNK and the
   default filter were chosen);
4. Dataset samples per second: avkd's SyncDataset over HDF5 against the reference loader's way (5 JPEG reads
   with cv2 + a wav slice + a mel computed per sample), and their ratio.

Timing is noisy on shared machines: compare ratios from the same run, not absolute numbers across runs.
Usage: python benchmarks/preprocess.py [--utterances 24] [--workers 2] [--out bench-out]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import wave
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch

from avkd.data.lrs2.dataset import SyncDataset
from avkd.data.lrs2.preprocess import DetectorConfig, LRS2PreprocessConfig, preprocess_lrs2
from avkd.data.lrs2.store import COMPRESSION, FeatureStore, decode_jpeg, encode_jpeg
from avkd.data.lrs2.synthetic import SynthLRS2Config, synthesize_lrs2
from avkd.media.audio import from_int16, vocalist_mel


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def bench_preprocess(corpus: Path, work: Path, workers: int) -> FeatureStore:
    print("\n## 1. preprocessing: seconds of video per second per worker")
    store = None
    boxes_file = work / "boxes.csv"
    for detector in ("fixed", "haar", "boxes"):
        det = DetectorConfig(name=detector, boxes_file=str(boxes_file) if detector == "boxes" else None)
        config = LRS2PreprocessConfig(detector=det)
        out = work / f"feats-{detector}"
        result, elapsed = timed(preprocess_lrs2, config, corpus, out, workers=workers, show_progress=False)
        seconds = result.artifact.metrics["seconds"]
        print(
            f"{detector:>6}: {seconds:7.1f} s of video in {elapsed:6.2f} s with {workers} workers -> "
            f"{seconds / elapsed / workers:6.1f} s/s per worker; failures {result.artifact.metrics['failures']}"
        )
        if detector == "fixed":
            store = FeatureStore(result.artifact)
            _write_boxes_file(store, boxes_file)
    return store


def _write_boxes_file(store: FeatureStore, path: Path) -> None:
    """Boxes as a user's own detector would give them (here: the fixed box, one line per frame)."""
    lines = ["key,frame,x0,y0,x1,y1"]
    for key in store:
        subset = "pretrain" if key.startswith("pretrain/") else "main"
        source_key = f"{subset}/{key.split('/', 1)[1]}"
        boxes = store.boxes(key)
        lines += [f"{source_key},{i},{x0},{y0},{x1},{y1}" for i, (x0, y0, x1, y1) in enumerate(boxes)]
    path.write_text("\n".join(lines) + "\n")


def _write_frames(
    path: Path, frames: dict[str, np.ndarray], codec: str, filter_name: str, chunk: int
) -> None:
    with h5py.File(path, "w") as h5:
        for key, data in frames.items():
            n = data.shape[0]
            if codec == "jpeg":
                ds = h5.create_dataset(key, (n,), dtype=h5py.vlen_dtype(np.uint8), chunks=(min(chunk, n),))
                buffers = encode_jpeg(data)
                array = np.empty(n, dtype=object)
                array[:] = buffers
                ds[:] = array
            else:
                h5.create_dataset(
                    key, data=data, chunks=(min(chunk, n), 96, 96, 3), **COMPRESSION[filter_name]
                )


def _layouts() -> list[tuple[str, str, str]]:
    return [("jpeg", "none", "jpeg q95")] + [("raw", name, f"raw {name}") for name in COMPRESSION]


def bench_storage(store: FeatureStore, work: Path) -> None:
    print("\n## 2. bytes per stored frame (96x96x3 crop; raw = 27,648 B)")
    keys = store.keys()
    frames = {k: store.frames(k) for k in keys}
    total = sum(f.shape[0] for f in frames.values())
    raw = 96 * 96 * 3
    for codec, filter_name, label in _layouts():
        path = work / f"frames-{codec}-{filter_name}.h5"
        _write_frames(path, frames, codec, filter_name, 5)
        size = path.stat().st_size / total
        print(f"hdf5 {label:>9}: {size:8.0f} B/frame ({size / raw:.2f} of raw)")
    jpg_dir = work / "jpg"
    size = 0
    for key, data in frames.items():
        folder = jpg_dir / key
        folder.mkdir(parents=True, exist_ok=True)
        for i, crop in enumerate(data):
            target = folder / f"{i}.jpg"
            cv2.imwrite(str(target), crop[..., ::-1])
            size += target.stat().st_size
    print(
        f"one .jpg file per frame (Wav2Lip layout, q95): {size / total:8.0f} B/frame ({size / total / raw:.2f} of raw)"
    )


def bench_random_reads(store: FeatureStore, work: Path, reads: int = 2000) -> None:
    print("\n## 3. random 5-frame window reads per second, decoded to uint8 (chunk length x layout)")
    keys = store.keys()
    frames = {k: store.frames(k) for k in keys}
    rng = np.random.default_rng(0)
    plan = [
        (keys[i], rng.integers(0, frames[keys[i]].shape[0] - 5)) for i in rng.integers(0, len(keys), reads)
    ]
    for chunk in (1, 5, 10, 25):
        row = []
        for codec, filter_name, label in _layouts():
            path = work / f"chunk-{chunk}-{codec}-{filter_name}.h5"
            _write_frames(path, frames, codec, filter_name, chunk)
            with h5py.File(path, "r") as h5:
                datasets = {key: h5[key] for key in keys}
                start = time.perf_counter()
                for key, s in plan:
                    window = datasets[key][s : s + 5]
                    if codec == "jpeg":
                        decode_jpeg(window)
                elapsed = time.perf_counter() - start
            row.append(f"{label} {reads / elapsed:6.0f}/s")
        print(f"chunk {chunk:>2}: " + "  ".join(row))


def _reference_style_sample(jpg_dir: Path, wav_dir: Path, key: str, start: int, n: int) -> tuple:
    """What the reference loader does per sample: read 5 JPEGs, resize, read a wav slice, compute its mel."""
    imgs = [
        cv2.resize(cv2.imread(str(jpg_dir / key / f"{i}.jpg")), (96, 96)) for i in range(start, start + 5)
    ]
    video = np.concatenate(imgs, axis=2) / 255.0
    video = torch.from_numpy(video.transpose(2, 0, 1)[:, 48:].astype(np.float32))
    with wave.open(str(wav_dir / f"{key.replace('/', '_')}.wav")) as handle:
        handle.setpos(start * 640)
        audio = np.frombuffer(handle.readframes(3200), np.int16)
    mel = torch.from_numpy(vocalist_mel(from_int16(audio))[:, :16]).unsqueeze(0)
    return video, mel


def bench_dataset(store: FeatureStore, work: Path, samples: int = 600) -> None:
    print("\n## 4. sync Dataset samples per second (one process)")
    dataset = SyncDataset(store, "pretrain", samples=samples, seed=0)
    _, fast = timed(lambda: [dataset[i] for i in range(samples)])
    wav_dir = work / "wav"
    wav_dir.mkdir(exist_ok=True)
    for key in store:
        with wave.open(str(wav_dir / f"{key.replace('/', '_')}.wav"), "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(16000)
            handle.writeframes(store.audio(key).tobytes())
    plans = [dataset.draw(i) for i in range(samples)]
    jpg_dir = work / "jpg"
    _, slow = timed(
        lambda: [
            _reference_style_sample(jpg_dir, wav_dir, p.key, p.start, store.info(p.key)["n_frames"])
            for p in plans
        ]
    )
    print(f"avkd SyncDataset (HDF5, stored mel): {samples / fast:8.0f} samples/s")
    print(f"reference way (JPEG files + wav + mel per sample): {samples / slow:8.0f} samples/s")
    print(f"ratio: {slow / fast:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="keep the files here (default: a temp dir)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = args.out or Path(tempfile.mkdtemp(prefix="avkd-bench-"))
    if work.exists() and args.out:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus"
    summary, elapsed = timed(
        synthesize_lrs2, corpus, SynthLRS2Config(utterances=args.utterances, seed=0, workers=args.workers)
    )
    print(
        f"corpus: {sum(summary.counts.values())} clips, {summary.seconds:.0f} s of video, synthesized in {elapsed:.1f} s"
    )
    try:
        store = bench_preprocess(corpus, work, args.workers)
        bench_storage(store, work)
        bench_random_reads(store, work)
        bench_dataset(store, work)
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
