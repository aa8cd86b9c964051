"""``avkd data``: make synthetic corpora and check real ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import ConfigOption, JsonOption, SetOption, emit_json, resolve
from avkd.core.errors import AvkdError
from avkd.core.progress import ProgressReporter, log

app = typer.Typer(help="Synthetic corpora and corpus checks.", no_args_is_help=True)
synth_app = typer.Typer(help="Write a synthetic corpus in a real corpus's layout.", no_args_is_help=True)
check_app = typer.Typer(help="Compare a corpus on disk with what it should contain.", no_args_is_help=True)
app.add_typer(synth_app, name="synth")
app.add_typer(check_app, name="check")


@synth_app.command("lrs2")
def synth_lrs2(
    out: Annotated[
        Path, typer.Argument(help="Output corpus root (created; must not be a non-empty folder).")
    ],
    utterances: Annotated[int | None, typer.Option(help="Clips over all splits.", show_default="40")] = None,
    speakers: Annotated[int | None, typer.Option(help="Speakers (>= 3).", show_default="6")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; same seed, same corpus.", show_default="0")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Processes (0 = auto).", show_default="0")] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    json_out: JsonOption = False,
) -> None:
    """LRS2-layout corpus of real mp4 files: syllable-like speech and a drawn face whose mouth follows it."""
    from avkd.data.lrs2.synthetic import SynthLRS2Config, synthesize_lrs2

    cfg = resolve(
        SynthLRS2Config, config, set_, utterances=utterances, speakers=speakers, seed=seed, workers=workers
    )
    with ProgressReporter(cfg.utterances, f"synth lrs2 {out.name}") as bar:
        summary = synthesize_lrs2(out, cfg, progress=lambda done, total: bar.advance(done - bar.done))
    result = {
        "root": str(summary.root),
        "counts": summary.counts,
        "seconds": round(summary.seconds, 2),
        "elapsed": round(summary.elapsed, 2),
    }
    if json_out:
        emit_json(result)
    else:
        counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items())
        log(
            f"{summary.root}: {sum(summary.counts.values())} clips ({counts}), {summary.seconds:.0f} s of video "
            f"in {summary.elapsed:.1f} s"
        )


@synth_app.command("mosei")
def synth_mosei(
    out: Annotated[Path, typer.Argument(help="Output folder of CMU Multimodal SDK .csd files.")],
    pickle: Annotated[
        Path | None, typer.Option(help="Also write the same data as a MulT-style pickle here.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; same seed, same corpus.", show_default="0")
    ] = None,
    gamma: Annotated[
        float | None,
        typer.Option(
            help="The γ corpus (docs/mfh.md §10): this share of the label's decisive latents is also in the "
            "video, the rest only in text and audio, all of it in an event window of each segment.",
            show_default="none: the default corpus",
        ),
    ] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    json_out: JsonOption = False,
) -> None:
    """CMU-MOSEI-style .csd files whose label depends on a latent shared by the modalities plus private parts."""
    from avkd.data.mosei.synthetic import SynthMoseiConfig, synthesize_mosei

    cfg = resolve(SynthMoseiConfig, config, set_, seed=seed, gamma=gamma)
    summary = synthesize_mosei(out, cfg, pickle_path=pickle)
    if json_out:
        emit_json(summary)
    else:
        log(
            f"{out}: synthetic CMU-MOSEI written in {summary['seconds']:.2f} s"
            + (f"; γ = {summary['gamma']['gamma_effective']:g}" if "gamma" in summary else "")
            + (f"; pickle {pickle}" if pickle else "")
        )


@synth_app.command("clips")
def synth_clips(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output corpus root (absent or empty).")],
    classes: Annotated[int | None, typer.Option(help="Classes.", show_default="5")] = None,
    clips_per_class: Annotated[int | None, typer.Option(help="Clips per class.", show_default="6")] = None,
    seconds: Annotated[float | None, typer.Option(help="Clip length.", show_default="10")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; same seed, same corpus.", show_default="0")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Processes (0 = up to 4).", show_default="0")] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    json_out: JsonOption = False,
) -> None:
    """VGGSound-layout corpus of real mp4 files (vggsound.csv, video/<id>_<start>.mp4) whose class is both a
    coloured shape and a tone."""
    from avkd.data.clips.synthetic import SynthClipsConfig, synthesize_clips

    cfg = resolve(
        SynthClipsConfig,
        config,
        set_,
        classes=classes,
        clips_per_class=clips_per_class,
        seconds=seconds,
        seed=seed,
        workers=workers,
    )
    with ProgressReporter(cfg.classes * cfg.clips_per_class, f"synth clips {out.name}") as bar:
        summary = synthesize_clips(out, cfg, progress=lambda done, total: bar.advance(done - bar.done))
    result = {
        "root": str(summary.root),
        "counts": summary.counts,
        "seconds": round(summary.seconds, 2),
        "elapsed": round(summary.elapsed, 2),
    }
    if json_out:
        emit_json(result)
    else:
        counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items())
        log(
            f"{summary.root}: {sum(summary.counts.values())} clips of {cfg.classes} classes ({counts}), "
            f"{summary.seconds:.0f} s of video in {summary.elapsed:.1f} s; labels {summary.root / 'vggsound.csv'}"
        )


@check_app.command("lrs2")
def check_lrs2(
    root: Annotated[Path, typer.Argument(help="Corpus root holding the split files and main/, pretrain/.")],
    manifest: Annotated[
        Path | None, typer.Option(help="Corpus manifest (default: the official LRS2 one in data_manifests/).")
    ] = None,
    probe: Annotated[
        bool, typer.Option(help="Read each media file's metadata and packets to find unreadable or cut ones.")
    ] = True,
    deep: Annotated[
        bool,
        typer.Option(
            help="Also decode every file with the preprocessing's own reader (finds what it would reject)."
        ),
    ] = False,
    resample: Annotated[
        bool,
        typer.Option(
            "--resample/--no-resample",
            help="--deep: accept other frame/sample rates, as preprocess --resample.",
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Report missing, extra, unreadable and cut files of an LRS2 copy without preprocessing anything."""
    from avkd.data.lrs2.check import check_corpus

    reader = None
    if deep:  # the preprocessing's reader needs torch (resampling): imported only for --deep
        from avkd.data.lrs2.preprocess import LRS2PreprocessConfig, read_clip

        config = LRS2PreprocessConfig(resample=resample)
        reader = lambda path: read_clip(path, config)  # noqa: E731
    report = check_corpus(root, manifest, probe_media=probe or deep, reader=reader)
    data = report.to_json()
    if json_out:
        emit_json(data)
    else:
        for split, s in data["splits"].items():
            if not s["file_present"]:
                log(f"{split}: split file missing")
                continue
            expected = (
                f" (expected {s['expected']})"
                if s["expected"] is not None and s["count"] != s["expected"]
                else ""
            )
            problems = [
                f"{s[name]} {label}"
                for name, label in (
                    ("missing_media", "missing media"),
                    ("unreadable", "unreadable"),
                    ("off_format", "off-format"),
                    ("not_in_official", "not in the official list"),
                    ("missing_from_list", "official entries missing from the list"),
                )
                if s[name]
            ]
            log(f"{split}: {s['count']} entries{expected}; " + ("; ".join(problems) if problems else "ok"))
            for name, examples in s.get("examples", {}).items():
                items = examples.items() if isinstance(examples, dict) else ((e, None) for e in examples)
                for key, reason in list(items)[:5]:
                    log(f"  {name}: {key}{': ' + reason if reason else ''}")
        if data["extra_media"]:
            log(
                f"{data['extra_media']} media files are named by no split file, e.g. {data['extra_media_examples'][:3]}"
            )
        log("corpus OK" if report.ok else "corpus differs from the manifest")
    if not report.ok:
        raise AvkdError(f"{root}: corpus does not match {report.manifest}")


@check_app.command("mosei")
def check_mosei_cmd(
    src: Annotated[
        Path, typer.Argument(help="Folder of SDK .csd files (COVAREP, FACET, GloVe, Labels) or a MulT .pkl.")
    ],
    config: ConfigOption = None,
    set_: SetOption = None,
    json_out: JsonOption = False,
) -> None:
    """Report what a CMU-MOSEI copy holds (files, dimensions, fold coverage, missing modalities) without
    ingesting it; takes the ingest's config (e.g. --set vision_file=CMU_MOSEI_VisualOpenFace2.csd)."""
    from avkd.data.mosei.check import check_mosei, describe_check
    from avkd.data.mosei.ingest import MoseiIngestConfig

    report = check_mosei(src, resolve(MoseiIngestConfig, config, set_))
    if json_out:
        emit_json(report.to_json())
    else:
        for line in describe_check(report):
            log(line)
    if not report.ok:
        raise AvkdError(f"{src}: CMU-MOSEI source has problems (see above)")
