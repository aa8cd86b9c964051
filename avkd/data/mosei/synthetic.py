"""``avkd data synth mosei``: a tiny CMU-MOSEI-style corpus in the SDK ``.csd`` layout (and a MulT pickle).

Files (docs/reference/mult-mosei.md §3.1, §3.2): ``language/CMU_MOSEI_TimestampedWordVectors.csd`` (300-d, one row per word),
``acoustic/CMU_MOSEI_COVAREP.csd`` (74-d, 100 frames/s, with some ``-inf`` like the real one),
``visual/CMU_MOSEI_VisualFacet42.csd`` (35-d, 30 frames/s with dropped frames), ``labels/CMU_MOSEI_Labels.csd``
(7 columns: sentiment in [-3, 3], six emotions in [0, 3]; one row per labelled segment). Each file is HDF5 with
one top-level group (the "root name") holding ``data/<video>/{features, intervals}`` and ``metadata/<key>``
(shape-(1,) strings of ``json.dumps(value)``), gzip-compressed.

Video ids are drawn from the official folds (``data_manifests/mosei_splits``) so the ingest's fold logic runs
for real; ``nofold_videos`` extra videos have ids in no fold. Frames fall inside the labelled segments and in the
gaps between them (which the ingest must leave out).

Labels: each segment has a shared latent ``z_s`` and per-modality latents ``z_t, z_a, z_v`` (standard normal).
A modality's frames are fixed random projections of ``[z_s, z_m]`` plus frame noise, and the sentiment is
``3·tanh((w_s z_s + w_t z_t + w_a z_a + w_v z_v) / ||w|| + noise)``, so the weights control how much of the label
each modality alone can explain (modality overlap, DESIGN "Synthetic corpora").

The optional MulT pickle (``pickle_path``) is made by the generator from its own per-segment frame lists:
frames overlapping each segment, last ``*_len`` kept, zero-padded on the left, ``-inf`` left in audio (as in
MulT's file), ``id`` rows ``[video, repr(start), repr(end)]``, labels ``(N, 1, 1)``; segments the ingest must
reject (missing modality) are left out, as the SDK's ``hard_unify`` would.

**The γ corpus** (``gamma`` set, docs/mfh.md §10): the modality focusing hypothesis's overlap design (MFH §2.2,
experiment 1: the teacher's decisive information stays fixed, only the part the student's modality shares
changes) on this corpus. Each segment draws ``gamma_latents`` = K decisive latents ``z ~ N(0, I_K)`` and the
sentiment is ``3·tanh(Σ_k z_k / √K + noise)``: every latent weighs the same, as in MFH's Table 2 variant
(h = ones). The first ``round(γ·K)`` latents are modality-general (carried by the video *and* by text and audio),
the other ones modality-specific (text and audio only). The information lives in time: each segment has one
*event window* of ``gamma_window`` seconds at a uniform position inside it; only frames overlapping the window
carry the latents, every other frame (the rest of the segment and the gaps) carries fresh N(0, 1) values in the
same slots, so nothing but the window tells a decisive frame from a distractor. Text and audio also carry a
marker slot (1 inside the window, 0 elsewhere); the video has none, so a video-only student has to find the
window by itself, while the teacher's crossmodal attention (text and audio queries over video keys) can be
pointed at it: that is what attention-based KD can pass on. A frame's features are a fixed random projection of
its slots plus frame noise, as above. Text and audio carry all K latents whatever γ, so the teacher's decisive
information does not change with γ; the random draws do not depend on γ either (the video's shared slots are
drawn as distractors and overwritten inside the window), so corpora with different γ have the same labels, text
and audio and differ only in those video slots. ``gamma.json`` in the corpus records γ, the shared latents and
every segment's window.
"""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avkd.core.artifacts import atomic_write_json
from avkd.core.errors import UsageError
from avkd.data.manifests import manifest_dir
from avkd.data.splits import canonical_split

#: The SDK's fold names (its fold files and MulT's pickle keys); avkd calls the middle one "val".
FOLDS = ("train", "valid", "test")

#: The γ corpus's ground truth (γ, the shared latents, every segment's event window), written at its root.
GAMMA_FILE = "gamma.json"

#: file name, top-level ("root name") key and feature dimension per sequence (docs/reference/mult-mosei.md §3.2).
SEQUENCES: dict[str, tuple[str, str, str]] = {
    "text": ("language", "CMU_MOSEI_TimestampedWordVectors", "glove_vectors"),
    "audio": ("acoustic", "CMU_MOSEI_COVAREP", "COVAREP"),
    "vision": ("visual", "CMU_MOSEI_VisualFacet42", "FACET 4.2"),
    "labels": ("labels", "CMU_MOSEI_Labels", "All Labels"),
}


@dataclass
class SynthMoseiConfig:
    """Size, randomness and modality overlap of the synthetic corpus."""

    train_videos: int = 12
    val_videos: int = 4
    test_videos: int = 6
    #: Extra videos whose ids are in no official fold (the ingest counts and skips them).
    nofold_videos: int = 1
    min_segments: int = 2
    max_segments: int = 4
    #: Segment length in seconds (uniform); gaps between segments 0.3-1.0 s.
    min_seconds: float = 0.8
    max_seconds: float = 3.0
    seed: int = 0
    #: Label = 3·tanh(w_s z_s + w_t z_t + w_a z_a + w_v z_v (normalised) + noise).
    shared_weight: float = 1.0
    text_weight: float = 0.5
    audio_weight: float = 0.5
    vision_weight: float = 0.5
    label_noise: float = 0.1
    frame_noise: float = 0.3
    #: Share of COVAREP values set to -inf (the real file has them).
    audio_neginf_fraction: float = 0.01
    #: Share of FACET frames dropped (face not found).
    vision_drop_fraction: float = 0.1
    #: The first train video has no COVAREP entry at all (every segment a failure: modality missing).
    missing_audio_videos: int = 1
    #: The first segment of the first valid video has no FACET frame (a failure: no frames in segment).
    empty_vision_segments: int = 1
    text_dim: int = 300
    audio_dim: int = 74
    vision_dim: int = 35
    #: Lengths of the MulT pickle's sequences (MulT unaligned: 50/500/500, docs/reference/mult-mosei.md §2.1).
    text_len: int = 50
    audio_len: int = 500
    vision_len: int = 500
    #: gzip level of the .csd datasets (the SDK's deploy uses 9; lower is faster).
    gzip_level: int = 1
    #: None: the corpus above. A number in [0, 1]: the γ corpus (module docstring), in which this share of the
    #: decisive latents is also in the video (rounded to a whole number of the ``gamma_latents``).
    gamma: float | None = None
    #: K, the decisive latents of the γ corpus (4 makes γ = 0, 0.25, 0.5, 0.75, 1 exact).
    gamma_latents: int = 4
    #: Length in seconds of a segment's event window, the only frames that carry its latents (γ corpus).
    gamma_window: float = 0.3


def _fold_ids() -> dict[str, list[str]]:
    folder = manifest_dir() / "mosei_splits"
    return {split: (folder / f"{split}.txt").read_text().split() for split in FOLDS}


def _metadata(sequence: str, description: str, dims: int) -> dict[str, Any]:
    """The SDK's featuresetMetadataTemplate keys (docs/reference/mult-mosei.md §3.1, including its missing-comma key)."""
    return {
        "root name": sequence,
        "computational sequence description": description,
        "dimension namescomputational sequence version": "1.0",
        "dimension names": [f"d{i}" for i in range(dims)],
        "computational sequence version": "1.0",
        "alignment compatible": True,
        "dataset name": "CMU-MOSEI (avkd synthetic)",
        "dataset version": "1.0",
        "creator": "avkd.data.mosei.synthetic",
        "contact": "none",
        "featureset bib citation": "synthetic",
        "dataset bib citation": "synthetic",
    }


def write_csd(
    path: Path,
    root: str,
    entries: dict[str, tuple[np.ndarray, np.ndarray]],
    metadata: dict[str, Any],
    gzip_level: int = 1,
) -> None:
    """One computational sequence: ``<root>/data/<entry>/{features,intervals}`` + ``<root>/metadata/<key>``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        group = h5.create_group(root)
        data = group.create_group("data")
        for entry, (features, intervals) in entries.items():
            sub = data.create_group(entry)
            opts = {"compression": "gzip", "compression_opts": gzip_level} if gzip_level > 0 else {}
            sub.create_dataset("features", data=features, **opts)
            sub.create_dataset("intervals", data=intervals, **opts)
        meta = group.create_group("metadata")
        for key, value in metadata.items():
            ds = meta.create_dataset(key, (1,), dtype=h5py.string_dtype("utf-8"))
            ds[0] = json.dumps(value)


def _frames(start: float, stop: float, step: float) -> np.ndarray:
    k = np.arange(int(np.floor((stop - start) / step)))
    return np.stack([start + k * step, start + (k + 1) * step], axis=1)


def _pad(frames: np.ndarray, length: int, dim: int) -> np.ndarray:
    """Keep the last ``length`` frames, zero-pad on the left (MulT unaligned layout, docs/reference/mult-mosei.md §2.1)."""
    frames = frames[-length:]
    out = np.zeros((length, dim), np.float32)
    if len(frames):
        out[length - len(frames) :] = frames
    return out


def _gamma_slots(
    rng: np.random.Generator,
    frames: np.ndarray,
    windows: np.ndarray,
    latents: np.ndarray,
    modality: str,
    shared: int,
) -> np.ndarray:
    """The γ corpus's slots of each frame (module docstring): ``(frames, K + 1)``, K latent slots + the marker.

    Every slot starts as a fresh N(0, 1) distractor; a frame that overlaps an event window (with positive length,
    the ingest's rule) carries that segment's latents: all K in text and audio, the first ``shared`` in the video.
    The marker is 1 in text and audio frames inside a window and 0 everywhere else, always 0 in the video.
    """
    k = latents.shape[1]
    slots = rng.normal(size=(len(frames), k + 1))
    slots[:, k] = 0.0
    if not len(frames) or not len(windows):
        return slots
    # Windows are disjoint and in time order: the candidate is the last one that starts before the frame ends.
    j = np.searchsorted(windows[:, 0], frames[:, 1], side="left") - 1
    inside = (j >= 0) & (frames[:, 0] < windows[np.clip(j, 0, None), 1])
    carried = shared if modality == "vision" else k
    slots[np.ix_(inside, np.arange(carried))] = latents[j[inside], :carried]
    if modality != "vision":
        slots[inside, k] = 1.0
    return slots


def synthesize_mosei(
    out: str | Path, config: SynthMoseiConfig | None = None, pickle_path: str | Path | None = None
) -> dict[str, Any]:
    """Write the corpus under ``out`` (and the MulT pickle at ``pickle_path``); returns a summary dict."""
    config = config or SynthMoseiConfig()
    if not 1 <= config.min_segments <= config.max_segments:
        raise UsageError("synth mosei: need 1 <= min_segments <= max_segments")
    gamma_mode = config.gamma is not None
    if gamma_mode:
        if not 0.0 <= config.gamma <= 1.0:
            raise UsageError(f"synth mosei: gamma must be in [0, 1], got {config.gamma}")
        if config.gamma_latents < 1:
            raise UsageError(f"synth mosei: gamma_latents must be at least 1, got {config.gamma_latents}")
        if not 0.0 < config.gamma_window < config.min_seconds:
            raise UsageError(
                f"synth mosei: gamma_window must be in (0, min_seconds = {config.min_seconds}), "
                f"got {config.gamma_window}"
            )
    n_latents = config.gamma_latents
    n_shared = round(config.gamma * n_latents) if gamma_mode else 0
    start_time = time.monotonic()
    out = Path(out)
    for target in (out, Path(pickle_path).parent if pickle_path else None):
        if target is not None and target.exists() and not target.is_dir():
            raise UsageError(f"{target}: exists and is not a folder")
    if pickle_path is not None and Path(pickle_path).is_dir():
        raise UsageError(f"{pickle_path}: is a folder; --pickle names the file to write")
    rng = np.random.default_rng(config.seed)
    folds = _fold_ids()
    chosen: dict[str, list[str]] = {}
    for split, count in zip(FOLDS, (config.train_videos, config.val_videos, config.test_videos), strict=True):
        if count > len(folds[split]):
            raise UsageError(f"synth mosei: {count} {split} videos, the fold has {len(folds[split])}")
        chosen[split] = sorted(rng.choice(folds[split], size=count, replace=False).tolist())
    nofold = [f"synthetic_nofold_{i}" for i in range(config.nofold_videos)]
    dims = {"text": config.text_dim, "audio": config.audio_dim, "vision": config.vision_dim}
    lengths = {"text": config.text_len, "audio": config.audio_len, "vision": config.vision_len}
    # Fixed projections latent -> features, shared by all videos.
    slots = n_latents + 1 if gamma_mode else 2  # γ corpus: K latents + the marker; otherwise [z_s, z_m]
    proj = {m: rng.normal(size=(slots, d)).astype(np.float32) for m, d in dims.items()}
    bias = {m: rng.normal(scale=0.2, size=d).astype(np.float32) for m, d in dims.items()}
    weights = np.array([config.shared_weight, config.text_weight, config.audio_weight, config.vision_weight])
    norm = float(np.linalg.norm(weights)) or 1.0
    missing_audio = set(chosen["train"][: config.missing_audio_videos])
    empty_vision = set(chosen["valid"][: config.empty_vision_segments])

    streams: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {m: {} for m in (*dims, "labels")}
    pickled: dict[str, dict[str, list[Any]]] = {
        s: {"text": [], "audio": [], "vision": [], "labels": [], "id": []} for s in FOLDS
    }
    split_of = {v: s for s, vids in chosen.items() for v in vids}
    segments_total = 0
    gamma_windows: dict[str, list[list[float]]] = {}
    for vid in sorted([*split_of, *nofold]):
        n_seg = int(rng.integers(config.min_segments, config.max_segments + 1))
        t = 0.0
        seg_intervals, seg_latents, seg_windows = [], [], []
        for _ in range(n_seg):
            start = t + float(rng.uniform(0.3, 1.0))
            end = start + float(rng.uniform(config.min_seconds, config.max_seconds))
            seg_intervals.append((start, end))
            if gamma_mode:
                seg_latents.append(rng.normal(size=n_latents))  # the decisive latents z_1..z_K
                w0 = start + float(rng.uniform(0.0, end - start - config.gamma_window))
                seg_windows.append((w0, w0 + config.gamma_window))
            else:
                seg_latents.append(rng.normal(size=4))  # z_s, z_t, z_a, z_v
            t = end
        total = t + float(rng.uniform(0.3, 1.0))
        seg_iv = np.array(seg_intervals, dtype=np.float64)
        latents = np.array(seg_latents)
        if gamma_mode:  # every latent weighs the same (MFH's Table 2 variant, h = ones); the sum is N(0, 1)
            windows = np.array(seg_windows, dtype=np.float64)
            gamma_windows[vid] = windows.tolist()
            clean = latents.sum(axis=1) / np.sqrt(n_latents)
        else:
            clean = latents @ weights / norm
        score = clean + rng.normal(scale=config.label_noise, size=n_seg)
        sentiment = 3.0 * np.tanh(score)
        emotions = rng.uniform(0.0, 3.0, size=(n_seg, 6))
        streams["labels"][vid] = (np.column_stack([sentiment, emotions]).astype(np.float32), seg_iv)
        segments_total += n_seg

        # Frame intervals over the whole video (segments and gaps).
        words, w = [], float(rng.uniform(0.0, 0.2))
        while w < total:
            dur = float(rng.uniform(0.2, 0.5))
            words.append((w, w + dur))
            w += dur + float(rng.uniform(0.0, 0.15))
        frame_iv = {
            "text": np.array(words, dtype=np.float64),
            "audio": _frames(0.0, total, 0.01),
            "vision": _frames(0.0, total, 1.0 / 30.0),
        }
        keep = rng.random(len(frame_iv["vision"])) >= config.vision_drop_fraction
        frame_iv["vision"] = frame_iv["vision"][keep]
        if vid in empty_vision:  # no FACET frame overlaps the first segment
            s0, e0 = seg_iv[0]
            iv = frame_iv["vision"]
            frame_iv["vision"] = iv[~((iv[:, 0] < e0) & (iv[:, 1] > s0))]
        for m_index, mod in enumerate(("text", "audio", "vision"), start=1):
            iv = frame_iv[mod]
            if gamma_mode:
                lat = _gamma_slots(rng, iv, windows, latents, mod, n_shared)
            else:
                mid = iv.mean(axis=1)
                # Latent of the segment a frame's midpoint is in; gap frames get their own random latent.
                seg_index = np.searchsorted(seg_iv[:, 0], mid, side="right") - 1
                inside = (seg_index >= 0) & (mid < seg_iv[np.clip(seg_index, 0, None), 1])
                lat = rng.normal(size=(len(iv), 2))
                lat[inside, 0] = latents[seg_index[inside], 0]
                lat[inside, 1] = latents[seg_index[inside], m_index]
            feats = lat.astype(np.float32) @ proj[mod] + bias[mod]
            feats += rng.normal(scale=config.frame_noise, size=feats.shape).astype(np.float32)
            if mod == "audio" and config.audio_neginf_fraction > 0:
                feats[rng.random(feats.shape) < config.audio_neginf_fraction] = -np.inf
            if mod == "audio" and vid in missing_audio:
                continue
            streams[mod][vid] = (feats.astype(np.float32), iv)

        split = split_of.get(vid)
        if split is None or pickle_path is None:
            continue
        for i, (s, e) in enumerate(seg_iv):
            rows = {}
            for mod in ("text", "audio", "vision"):
                if vid not in streams[mod]:
                    break
                feats, iv = streams[mod][vid]
                sel = (iv[:, 0] < e) & (iv[:, 1] > s)
                if not sel.any():
                    break
                rows[mod] = _pad(feats[sel], lengths[mod], dims[mod])
            else:
                for mod, value in rows.items():
                    pickled[split][mod].append(value)
                pickled[split]["labels"].append(np.float32(sentiment[i]).reshape(1, 1))
                pickled[split]["id"].append([vid, repr(float(s)), repr(float(e))])

    for name, (folder, filename, root) in SEQUENCES.items():
        dim = 7 if name == "labels" else dims[name]
        write_csd(
            out / folder / f"{filename}.csd",
            root,
            streams[name],
            _metadata(root, f"avkd synthetic {root}", dim),
            gzip_level=config.gzip_level,
        )
    summary: dict[str, Any] = {
        "root": str(out),
        "videos": {canonical_split(s): len(v) for s, v in chosen.items()},  # avkd's split names
        "nofold_videos": len(nofold),
        "segments": segments_total,
        "missing_audio_videos": sorted(missing_audio),
        "empty_vision_videos": sorted(empty_vision),
    }
    if gamma_mode:
        truth = {
            "gamma": config.gamma,
            # The γ the corpus has: the share of the K equally weighted latents the video carries.
            "gamma_effective": n_shared / n_latents,
            "latents": n_latents,
            "shared_latents": list(range(n_shared)),
            "window_seconds": config.gamma_window,
        }
        atomic_write_json(out / GAMMA_FILE, {**truth, "windows": gamma_windows})
        summary["gamma"] = truth
    if pickle_path is not None:
        data = {}
        for split in FOLDS:
            part = pickled[split]
            data[split] = {
                mod: np.stack(part[mod]) if part[mod] else np.zeros((0, lengths[mod], dims[mod]), np.float32)
                for mod in ("text", "audio", "vision")
            }
            data[split]["labels"] = (
                np.stack(part["labels"]).reshape(-1, 1, 1)
                if part["labels"]
                else np.zeros((0, 1, 1), np.float32)
            )
            data[split]["id"] = np.array(part["id"], dtype=str).reshape(-1, 3)
        pickle_path = Path(pickle_path)
        pickle_path.parent.mkdir(parents=True, exist_ok=True)
        with open(pickle_path, "wb") as handle:
            pickle.dump(data, handle, protocol=4)
        summary["pickle"] = str(pickle_path)
        summary["pickle_segments"] = {canonical_split(s): len(pickled[s]["labels"]) for s in FOLDS}
    summary["seconds"] = round(time.monotonic() - start_time, 3)
    return summary
