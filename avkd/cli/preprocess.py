"""``avkd preprocess``: raw corpora into feature artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import (
    ConfigOption,
    JsonOption,
    OverwriteOption,
    ResumeOption,
    SetOption,
    emit_json,
    resolve,
)
from avkd.cli.options import split_list
from avkd.core.progress import log

app = typer.Typer(help="Preprocess corpora into feature artifacts.", no_args_is_help=True)


@app.command("lrs2")
def lrs2(
    root: Annotated[Path, typer.Argument(help="LRS2-layout corpus root (split files + main/, pretrain/).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output artifact directory.")],
    splits: Annotated[
        str | None, typer.Option(help="Comma-separated splits.", show_default="pretrain,train,val,test")
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    shard: Annotated[
        str | None,
        typer.Option(
            help="INDEX/COUNT: process every COUNT-th utterance (default: from SLURM_ARRAY_TASK_ID/COUNT)."
        ),
    ] = None,
    detector: Annotated[str | None, typer.Option(help="fixed | haar | boxes.", show_default="fixed")] = None,
    boxes: Annotated[Path | None, typer.Option(help="Boxes file for --detector boxes.")] = None,
    decoder: Annotated[str | None, typer.Option(help="auto | decord | pyav.", show_default="auto")] = None,
    resample: Annotated[
        bool | None,
        typer.Option("--resample/--no-resample", help="Convert other frame/sample rates instead of failing."),
    ] = None,
    max_failures: Annotated[
        float | None, typer.Option(help="Failure share that makes the exit code 1.", show_default="0.01")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N utterances of the selection.")] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    resume: ResumeOption = False,
    json_out: JsonOption = False,
) -> None:
    """Face crops (96x96 RGB), 16 kHz audio and VocaLiST mels of an LRS2-layout corpus, into HDF5."""
    from avkd.data.failures import check_failure_share, read_failures
    from avkd.data.lrs2.preprocess import (
        LRS2PreprocessConfig,
        describe,
        parse_shard,
        preprocess_lrs2,
        shard_from_env,
        shard_path,
    )

    shard_spec = parse_shard(shard) if shard else shard_from_env()
    index, count = shard_spec if shard_spec else (None, None)
    cfg = resolve(
        LRS2PreprocessConfig,
        config,
        set_,
        names={"detector.name": "detector", "detector.boxes_file": "boxes"},
        splits=split_list(splits),
        **{"detector.name": detector, "detector.boxes_file": str(boxes) if boxes else None},
        decoder=decoder,
        resample=resample,
        max_failures=max_failures,
        limit=limit,
        shard_index=index,
        shard_count=count,
    )
    target = shard_path(out, cfg.shard_index, cfg.shard_count) if cfg.shard_count > 1 else out
    result = preprocess_lrs2(cfg, root, target, workers=workers, overwrite=overwrite, resume=resume)
    art = result.artifact
    if json_out:
        emit_json(
            {"path": str(art.path), "id": art.id, "metrics": art.metrics, "elapsed": round(result.elapsed, 2)}
        )
    else:
        log(describe(art))
        for failure in read_failures(art)[:10]:
            log(f"  failed: {failure['key']}: {failure['reason']}")
    check_failure_share(art, cfg.max_failures)


@app.command("mosei")
def mosei(
    src: Annotated[
        Path, typer.Argument(help="Folder of SDK .csd files (COVAREP, FACET, GloVe, Labels) or a MulT .pkl.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output mosei-features artifact.")],
    max_failures: Annotated[
        float | None, typer.Option(help="Failure share that makes the exit code 1.", show_default="0.05")
    ] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    resume: ResumeOption = False,
    json_out: JsonOption = False,
) -> None:
    """CMU-MOSEI features into HDF5 (text 50x300, audio 500x74, vision 500x35 per segment, MulT's unaligned layout)."""
    from avkd.data.failures import check_failure_share, read_failures
    from avkd.data.mosei.ingest import MoseiIngestConfig, ingest_mosei

    cfg = resolve(MoseiIngestConfig, config, set_, max_failures=max_failures)
    art = ingest_mosei(cfg, src, out, overwrite=overwrite, resume=resume, show_progress=True)
    if json_out:
        emit_json({"path": str(art.path), "id": art.id, "metrics": art.metrics})
    else:
        m = art.metrics
        log(
            f"{art.path}: {m.get('segments')} segments {m.get('per_split')}, {m.get('failures')} failed; id {art.id}"
        )
        for failure in read_failures(art)[:10]:
            log(f"  failed: {failure['split']}/{failure['video']}[{failure['segment']}]: {failure['reason']}")
    check_failure_share(art, cfg.max_failures, unit="segments")


@app.command("clips")
def clips(
    root: Annotated[Path, typer.Argument(help="Corpus root holding the mp4 files (or ROOT/video/).")],
    labels: Annotated[
        Path,
        typer.Option(
            help="Labels CSV: VGGSound rows 'youtube_id,start_seconds,label,split' or an AudioSet segment CSV."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output clips-features artifact.")],
    classes: Annotated[
        Path | None,
        typer.Option(help="Class table 'index,mid,display_name' (default: the CSV's labels, sorted)."),
    ] = None,
    labels_format: Annotated[
        str | None, typer.Option("--format", help="auto | vggsound | audioset.", show_default="auto")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(help="AudioSet CSV: the split of its rows.", show_default="test for eval_*, else train"),
    ] = None,
    splits: Annotated[
        str | None, typer.Option(help="Comma-separated splits to keep.", show_default="all")
    ] = None,
    frames: Annotated[int | None, typer.Option(help="Frames per clip.", show_default="10")] = None,
    size: Annotated[int | None, typer.Option(help="Frame side in pixels.", show_default="224")] = None,
    mel_frames: Annotated[
        int | None, typer.Option(help="Fbank frames (10 ms each), padded or cut.", show_default="1024")
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    decoder: Annotated[str | None, typer.Option(help="auto | decord | pyav.", show_default="auto")] = None,
    max_failures: Annotated[
        float | None, typer.Option(help="Failure share that makes the exit code 1.", show_default="0.01")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N clips of the selection.")] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    resume: ResumeOption = False,
    json_out: JsonOption = False,
) -> None:
    """10 frames (224x224 RGB) and a 128x1024 Kaldi log-mel fbank per labelled clip (AVSiam's inputs), into HDF5."""
    from avkd.data.clips.preprocess import ClipsPreprocessConfig, describe, preprocess_clips
    from avkd.data.failures import check_failure_share, read_failures

    cfg = resolve(
        ClipsPreprocessConfig,
        config,
        set_,
        format=labels_format,
        split=split,
        splits=split_list(splits),
        frames=frames,
        size=size,
        mel_frames=mel_frames,
        decoder=decoder,
        max_failures=max_failures,
        limit=limit,
    )
    result = preprocess_clips(
        cfg, root, labels, out, classes_file=classes, workers=workers, overwrite=overwrite, resume=resume
    )
    art = result.artifact
    if json_out:
        emit_json(
            {"path": str(art.path), "id": art.id, "metrics": art.metrics, "elapsed": round(result.elapsed, 2)}
        )
    else:
        log(describe(art))
        for failure in read_failures(art)[:10]:
            log(f"  failed: {failure['key']}: {failure['reason']}")
    check_failure_share(art, cfg.max_failures, unit="clips")


@app.command("merge")
def merge(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Merged artifact; shards default to OUT.shard-*-of-*.")
    ],
    shards: Annotated[
        list[Path] | None, typer.Argument(help="Shard artifacts (default: found beside --out).")
    ] = None,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """Join the shards of an array job into one artifact, checking none is missing or duplicated."""
    from avkd.data.lrs2.preprocess import describe, find_shards, merge_lrs2

    paths = list(shards) if shards else find_shards(out)
    art = merge_lrs2(paths, out, overwrite=overwrite)
    if json_out:
        emit_json(
            {"path": str(art.path), "id": art.id, "metrics": art.metrics, "shards": [str(p) for p in paths]}
        )
    else:
        log(f"merged {len(paths)} shards")
        log(describe(art))
