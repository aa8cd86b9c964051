"""``avkd mfh``: the modality focusing hypothesis (docs/mfh.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import ConfigOption, JsonOption, OverwriteOption, SetOption, emit_artifact, resolve
from avkd.cli.options import split_list
from avkd.core.errors import UsageError

app = typer.Typer(
    help="The modality focusing hypothesis: when crossmodal KD can help a student (docs/mfh.md).",
    no_args_is_help=True,
)


@app.command("simulate")
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output artifact (mfh-simulation).")],
    runs: Annotated[int | None, typer.Option(help="Runs (seeds) per setting.", show_default="10")] = None,
    seed: Annotated[int | None, typer.Option(help="First seed.", show_default="0")] = None,
    experiments: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: exp1 (γ sweep, Fig. 2), exp2 (α sweep, Fig. 3), table2 (modality-general "
            "teachers).",
            show_default="exp1,exp2,table2",
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="SGD epochs per model.", show_default="1000")] = None,
    permutations: Annotated[
        int | None, typer.Option(help="Algorithm 1: permutations per channel (M).", show_default="100")
    ] = None,
    kl_reduction: Annotated[
        str | None,
        typer.Option(
            "--kl-reduction",
            help="batchmean (the KL per sample) or mean (also divided by the 2 classes: the official code's "
            "half-weight KD term, for comparison).",
            show_default="batchmean",
        ),
    ] = None,
    threads: Annotated[int, typer.Option(help="torch intra-op threads (1 is the fastest here).")] = 1,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """The MFH paper's synthetic Gaussian study: experiment 1 (γ sweep), experiment 2 (α sweep) and Table 2's
    modality-general teachers (random, ground-truth and Algorithm 1 channels), linear models, mean ± sd over
    runs, beside the paper's and the official code's numbers; the official code's bugs fixed."""
    from avkd.core.progress import log
    from avkd.mfh.simulate import EXPERIMENTS, SimulateConfig, public_result, simulate_mfh

    names = split_list(experiments)
    for name in names or ():
        if name not in EXPERIMENTS:
            raise UsageError(f"--experiments: {name!r} is not one of {', '.join(EXPERIMENTS)}")
    if threads < 1:
        raise UsageError(f"--threads: must be at least 1, got {threads}")
    cfg = resolve(
        SimulateConfig,
        config,
        set_,
        runs=runs,
        seed=seed,
        experiments=names,
        epochs=epochs,
        permutations=permutations,
        kl_reduction=kl_reduction,
    )
    art = simulate_mfh(cfg, out, overwrite=overwrite, threads=threads, log=log)
    if not json_out:
        typer.echo(art.file("report.md").read_text())
    emit_artifact(
        art,
        json_out,
        f"{art.path}: {', '.join(cfg.experiments)}, {cfg.runs} runs in {art.metrics['seconds']:.1f} s; id {art.id}",
        **public_result(art),
    )


@app.command("sweep")
def sweep(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output artifact (mfh-gamma-sweep).")],
    gammas: Annotated[
        str | None,
        typer.Option(help="Comma-separated γ values in [0, 1].", show_default="0,0.25,0.5,0.75,1"),
    ] = None,
    seeds: Annotated[int | None, typer.Option(help="Training seeds per γ.", show_default="3")] = None,
    work: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the runs (corpora, features, models, evaluations; reused when complete).",
            show_default="<out>-runs",
        ),
    ] = None,
    threads: Annotated[int, typer.Option(help="torch intra-op threads.")] = 1,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """The MFH γ sweep on avkd's emotion pipeline: for each γ a synthetic CMU-MOSEI corpus whose video carries
    that share of the label's decisive latents, a MulT teacher, and video-only students without KD and with
    CRD and EDAM-S, over seeds (docs/mfh.md §10)."""
    from avkd.core.progress import log
    from avkd.mfh.gamma_sweep import GammaSweepConfig, public_result, sweep_gamma

    values = None
    if gammas is not None:
        try:
            values = [float(g) for g in split_list(gammas) or []]
        except ValueError:
            raise UsageError(f"--gammas: {gammas!r} is not a comma-separated list of numbers") from None
    if threads < 1:
        raise UsageError(f"--threads: must be at least 1, got {threads}")
    cfg = resolve(GammaSweepConfig, config, set_, gammas=values, seeds=seeds)
    art = sweep_gamma(cfg, out, work=work, overwrite=overwrite, threads=threads, log=log)
    if not json_out:
        typer.echo(art.file("report.md").read_text())
    emit_artifact(
        art,
        json_out,
        f"{art.path}: {len(cfg.gammas)} γ × {cfg.seeds} seed(s) in {art.metrics['seconds']:.0f} s; id {art.id}",
        **public_result(art),
    )


@app.command("diagnose")
def diagnose(
    teacher: Annotated[Path, typer.Option("--teacher", help="Teacher model artifact.")],
    student: Annotated[Path, typer.Option("--student", help="Student model artifact.")],
    data: Annotated[
        Path, typer.Option("--data", help="Features: mosei-features (emotion) or lrs2-features (sync).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output artifact (mfh-diagnosis).")],
    tap: Annotated[
        str | None,
        typer.Option(
            help="Where channels are permuted: input (emotion: each input feature, e.g. the 35 FACET ones), "
            "fusion (MulT last_hs, VocaLiST pooled), or a layer tap (last_hs, pooled, hidden).",
            show_default="fusion",
        ),
    ] = None,
    permutations: Annotated[
        int | None, typer.Option(help="Permutations per channel (M).", show_default="10")
    ] = None,
    freeze: Annotated[
        bool | None,
        typer.Option(
            "--freeze/--no-freeze",
            help="Train fresh KD students from the teacher with its lowest-, random- or highest-salience "
            "channels held at their mean (emotion track only; default: on for emotion, off for sync; "
            "--set freeze_rank=generality ranks by reliance × generality instead).",
            show_default=False,
        ),
    ] = None,
    freeze_share: Annotated[
        float | None,
        typer.Option("--freeze-share", help="Share of the teacher's channels frozen.", show_default="0.75"),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Epochs of each freeze-check student.", show_default="10")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of permutations and students.", show_default="0")
    ] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """Salience of each teacher and student channel by permutation (Algorithm 1, variant B, over the whole
    split), an estimate of γ, the freeze check (keep-general / random / keep-specific teachers, emotion only)
    and a verdict: will crossmodal KD help this pair, and through which channels (docs/mfh.md)."""
    from avkd.core.progress import log
    from avkd.mfh.diagnose import DiagnoseConfig, public_result
    from avkd.mfh.diagnose import diagnose as run_diagnose

    cfg = resolve(
        DiagnoseConfig,
        config,
        set_,
        {"loop.epochs": "epochs", "loop.seed": "seed"},
        tap=tap,
        permutations=permutations,
        freeze=freeze,
        freeze_share=freeze_share,
        seed=seed,
        **{"loop.epochs": epochs, "loop.seed": seed},
    )
    art = run_diagnose(teacher, student, data, out, cfg, overwrite=overwrite, log=log)
    if not json_out:
        typer.echo(art.file("report.md").read_text())
    gamma = art.metrics.get("gamma")
    emit_artifact(
        art,
        json_out,
        f"{art.path}: γ̂ {'–' if gamma is None else f'{gamma:.3f}'}; id {art.id}",
        **public_result(art),
    )
