"""``avkd mfh sweep``: the modality focusing hypothesis tested on avkd's own emotion pipeline (docs/mfh.md §10).

For each γ of ``gammas`` the sweep writes a γ corpus (:mod:`avkd.data.mosei.synthetic`: a share γ of the label's
decisive latents is also in the video, the rest only in text and audio, all of it at an event window inside each
segment) and runs the emotion demo's chain on it with every seed (:func:`avkd.tasks.emotion.demo.run_emotion_demo`:
ingest -> MulT teacher on text + audio + vision -> video-only students without KD and with each KD method ->
evaluations on the test split), then ``avkd mfh diagnose`` (:func:`avkd.mfh.diagnose.diagnose`, freeze check off)
on each seed's teacher and no-KD student, whose γ̂ stands beside the corpus's true γ. MFH predicts that the KD
students gain on the no-KD student according to γ and not according to the teacher's accuracy, which the
construction keeps about constant (MFH §2.2, experiment 1).

The runs are ordinary artifacts under ``work`` (one folder per γ, reused when complete, so an interrupted sweep
continues where it stopped). The sweep's artifact (kind ``mfh-gamma-sweep``) holds ``sweep.json`` (every row,
each seed's numbers, the config), ``report.md`` (the table) and ``gamma_sweep.png`` (accuracy and Δ against γ).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from avkd.core.artifacts import (
    MFH_DIAGNOSIS,
    MFH_GAMMA_SWEEP,
    Artifact,
    ArtifactWriter,
    atomic_write_text,
    is_complete,
    load_artifact,
)
from avkd.core.config import bounded, to_dict, validate
from avkd.core.errors import ArtifactError, UsageError
from avkd.core.progress import log as default_log
from avkd.data.mosei.ingest import MoseiIngestConfig
from avkd.data.mosei.synthetic import GAMMA_FILE, SynthMoseiConfig
from avkd.mfh.diagnose import DiagnoseConfig, diagnose
from avkd.mfh.simulate import torch_threads
from avkd.report.aggregate import stat
from avkd.tasks.base import reuse_or_build, seed_folder
from avkd.tasks.emotion.config import EmotionModelConfig, EmotionTrainConfig, emotion_loop
from avkd.tasks.emotion.demo import EmotionDemoConfig, run_emotion_demo
from avkd.tasks.emotion.methods import METHODS

__all__ = ["GammaSweepConfig", "public_result", "sweep_gamma"]

#: What the sweep keeps of each ``mfh diagnose`` run (its metrics): γ̂ and the squared correlation of the two
#: models' logits (:func:`avkd.mfh.diagnose.estimate_gamma` says how each is made).
_DIAGNOSED = ("gamma", "output_r2")

#: The table's name for each method's column (the others keep their registered name).
_COLUMNS = {"none": "no-KD", "edam-s": "EDAM-S", "edam-t": "EDAM-T"}


def _default_emotion() -> EmotionDemoConfig:
    """The emotion demo's chain at a size that runs a (γ, seed) cell in about four minutes of a loaded 2-core CPU:
    120 / 30 / 200 videos of 2-4 segments of 0.8-1.6 s (about 360 / 90 / 600 segments: the test split is large
    because evaluating is cheap and a small one makes 7-class accuracy coarse), the demo's sequence lengths and
    models (d = 20, 5 heads, 2 layers), teacher 10 epochs, students 12."""
    return EmotionDemoConfig(
        corpus=SynthMoseiConfig(
            train_videos=120, val_videos=30, test_videos=200, min_seconds=0.8, max_seconds=1.6, gamma=1.0
        ),
        features=MoseiIngestConfig(text_len=6, audio_len=60, vision_len=60),
        teacher=EmotionTrainConfig(
            model=EmotionModelConfig(
                kwargs={"branch": "complete", "output_dim": 7, "d": 20, "num_heads": 5, "layers": 2}
            ),
            loop=emotion_loop(10, device="cpu"),
        ),
        methods=["none", "crd-penultimate", "edam-s"],
        student_loop=emotion_loop(12, device="cpu"),
    )


def _gammas_problem(value: Any) -> str | None:
    if not value:
        return "needs at least one γ"
    if any(not isinstance(g, int | float) or not 0.0 <= g <= 1.0 for g in value):
        return f"every γ must be a number in [0, 1], got {value}"
    if len(set(value)) != len(value):
        return f"a γ is repeated in {value}"
    return None


@dataclass
class GammaSweepConfig:
    """The γ values, the seeds and the chain each (γ, seed) runs. ``emotion`` is the emotion demo's config; the
    sweep sets its corpus's ``gamma`` and its ``seeds`` from the fields here, and its ``methods`` must hold
    ``none`` (the no-KD student every Δ is measured against)."""

    gammas: list[float] = field(
        default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0], metadata={"check": _gammas_problem}
    )
    #: Training seeds 0..seeds-1 per γ (the corpus of a γ is one draw, ``emotion.corpus.seed``, for all of them).
    seeds: int = bounded(3, ge=1)
    emotion: EmotionDemoConfig = field(default_factory=_default_emotion)
    #: ``avkd mfh diagnose``'s γ̂ for each (γ, seed): the seed's teacher and no-KD student on the γ's features.
    diagnose: bool = True
    #: Its settings; the freeze check (which trains five more students) is off to save time.
    diagnosis: DiagnoseConfig = field(default_factory=lambda: DiagnoseConfig(freeze=False))


def _check(config: GammaSweepConfig) -> None:
    validate(config)
    methods = config.emotion.methods
    if "none" not in methods:
        raise UsageError(f"mfh sweep: emotion.methods must include 'none' (the no-KD student), got {methods}")
    for method in methods:
        METHODS.get(method)  # an unknown method is a usage error before any work


def _gamma_folder(work: Path, gamma: float) -> Path:
    return work / f"gamma-{gamma:.3f}"


def _run_gamma(
    config: GammaSweepConfig, gamma: float, where: Path, show_progress: bool
) -> tuple[dict[str, Any], list[Artifact]]:
    """One γ: the demo chain with every seed; the row's per-seed accuracies (%) and the evaluations."""
    emotion = replace(config.emotion, corpus=replace(config.emotion.corpus, gamma=gamma), seeds=config.seeds)
    truth_file = where / "corpus" / GAMMA_FILE
    # The demo reuses a complete corpus as it finds it: one of another γ would be measured under this one's name.
    if truth_file.is_file() and json.loads(truth_file.read_text()).get("gamma") != gamma:
        raise UsageError(f"{truth_file}: a corpus of another γ is in the way; choose another --work")
    run_emotion_demo(where, emotion, show_progress=show_progress)
    truth = json.loads(truth_file.read_text())
    per_seed: dict[str, list[Any]] = {"teacher": [], **{m: [] for m in emotion.methods}}
    evaluations: list[Artifact] = []
    diagnosed: dict[str, list[Any]] = {key: [] for key in _DIAGNOSED}
    for seed in range(config.seeds):
        folder = seed_folder(where, seed)
        for name in per_seed:
            art = load_artifact(folder / f"eval-{name}")
            evaluations.append(art)
            per_seed[name].append(100.0 * float(art.metrics["acc7"]))
        if config.diagnose:
            art = reuse_or_build(
                folder / "diagnosis",
                MFH_DIAGNOSIS,
                f"      mfh diagnose (seed {seed})",
                lambda folder=folder: diagnose(
                    folder / "teacher",
                    folder / "student-none",
                    where / "features",
                    folder / "diagnosis",
                    config.diagnosis,
                    show_progress=show_progress,
                ),
            )
            evaluations.append(art)
            for key in _DIAGNOSED:
                diagnosed[key].append(art.metrics.get(key))
    row: dict[str, Any] = {
        "gamma": gamma,
        "gamma_effective": truth["gamma_effective"],
        "shared_latents": len(truth["shared_latents"]),
        "latents": truth["latents"],
        "per_seed": per_seed,
    }
    if config.diagnose:
        row["per_seed"].update({f"diagnose_{key}": values for key, values in diagnosed.items()})
        for key, values in diagnosed.items():
            s = stat(values)
            row[f"diagnose_{key}"], row[f"diagnose_{key}_std"] = s.mean, s.sd
    for name, values in per_seed.items():
        s = stat(values)
        row[name], row[f"{name}_std"] = s.mean, s.sd
    for method in emotion.methods:
        if method == "none":
            continue
        deltas = [a - b for a, b in zip(per_seed[method], per_seed["none"], strict=True)]
        s = stat(deltas)
        row["per_seed"][f"delta_{method}"] = deltas
        row[f"delta_{method}"], row[f"delta_{method}_std"] = s.mean, s.sd
    return row, evaluations


def _slopes(rows: Sequence[dict[str, Any]], key: str, seeds: int) -> dict[str, float | None]:
    """Per-seed least-squares slope of ``per_seed[key]`` against the effective γ (per unit γ), mean ± sd; a
    seed with a missing value (a γ̂ that could not be computed) is left out."""
    xs = np.array([r["gamma_effective"] for r in rows], dtype=float)
    if len(set(xs.tolist())) < 2:
        return {"mean": None, "std": None}
    slopes = []
    for s in range(seeds):
        ys = [r["per_seed"][key][s] for r in rows]
        if all(isinstance(y, int | float) for y in ys):
            slopes.append(float(np.polyfit(xs, np.array(ys, dtype=float), 1)[0]))
    st = stat(slopes)
    return {"mean": st.mean, "std": st.sd}


def _cell(mean: float | None, sd: float | None, signed: bool = False) -> str:
    if mean is None:
        return "–"
    text = f"{mean:+.2f}" if signed else f"{mean:.2f}"
    return text + (f" ± {sd:.2f}" if sd is not None else "")


def _markdown(config: GammaSweepConfig, rows: Sequence[dict[str, Any]], trends: dict[str, Any]) -> str:
    methods = [m for m in config.emotion.methods if m != "none"]
    corpus = config.emotion.corpus
    head = ["γ", "teacher", "no-KD", *[_COLUMNS.get(m, m) for m in methods]]
    head += [f"Δ {_COLUMNS.get(m, m)}" for m in methods]
    if config.diagnose:
        head += ["γ̂ (mfh diagnose)", "logit r² (mfh diagnose)"]
    lines = [
        "# MFH γ sweep on synthetic CMU-MOSEI (avkd mfh sweep)",
        "",
        f"7-class accuracy (%) on the test split, mean ± sample sd over {config.seeds} training seed(s); "
        f"Δ = student − no-KD student of the same seed. γ = the share of the {corpus.gamma_latents} decisive "
        f"latents the video also carries (docs/mfh.md §10). Teacher: MulT on text + audio + vision; students: "
        f"video only (configuration {config.emotion.config_id}).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---:|" * len(head),
    ]
    for r in rows:
        cells = [f"{r['gamma_effective']:.2f}", _cell(r["teacher"], r["teacher_std"])]
        cells.append(_cell(r["none"], r["none_std"]))
        cells += [_cell(r[m], r[f"{m}_std"]) for m in methods]
        cells += [_cell(r[f"delta_{m}"], r[f"delta_{m}_std"], signed=True) for m in methods]
        if config.diagnose:
            cells += [
                _cell(r["diagnose_gamma"], r["diagnose_gamma_std"]),
                _cell(r["diagnose_output_r2"], r["diagnose_output_r2_std"]),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if config.diagnose:
        lines.append(
            f"γ̂ and logit r²: `avkd mfh diagnose` (tap {config.diagnosis.tap!r}, freeze check off) on each seed's "
            "teacher and no-KD student, its metrics `gamma` and `output_r2` (avkd.mfh.diagnose.estimate_gamma); "
            "sweep.json has them per seed."
        )
        lines.append("")
    for key, slope in trends.items():
        if slope["mean"] is not None:
            lines.append(
                f"- slope of {key} against γ, per seed: {_cell(slope['mean'], slope['std'], signed=True)} "
                + ("per unit γ" if key.startswith("diagnose_") else "points per unit γ")
            )
    return "\n".join(lines) + "\n"


def _figure(
    config: GammaSweepConfig, rows: Sequence[dict[str, Any]], path: Path, notes: list[str]
) -> str | None:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        notes.append("figure skipped: matplotlib is not installed (pip install matplotlib)")
        return None
    xs = [r["gamma_effective"] for r in rows]
    fig = Figure(figsize=(9, 3.6))
    acc, delta = fig.subplots(1, 2)
    fig.subplots_adjust(wspace=0.3)
    for index, name in enumerate(["teacher", *config.emotion.methods]):
        label = "teacher" if name == "teacher" else _COLUMNS.get(name, name)
        colour = f"C{index}"  # one colour per model in both panels
        acc.errorbar(
            xs,
            [r[name] for r in rows],
            yerr=[r[f"{name}_std"] or 0.0 for r in rows],
            marker="o",
            label=label,
            capsize=3,
            color=colour,
        )
        if name not in ("teacher", "none"):
            delta.errorbar(
                xs,
                [r[f"delta_{name}"] for r in rows],
                yerr=[r[f"delta_{name}_std"] or 0.0 for r in rows],
                marker="o",
                label=label,
                capsize=3,
                color=colour,
            )
    delta.axhline(0.0, color="grey", linewidth=1)
    acc.set(xlabel="γ", ylabel="7-class accuracy (%)", title="accuracy against γ")
    delta.set(xlabel="γ", ylabel="Δ = student − no-KD (points)", title="KD gain against γ")
    for ax in (acc, delta):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight", metadata={"Software": None})
    return path.name


def sweep_gamma(
    config: GammaSweepConfig,
    out: str | Path,
    work: str | Path | None = None,
    overwrite: bool = False,
    threads: int = 1,
    show_progress: bool = False,
    log: Callable[[str], None] = default_log,
) -> Artifact:
    """Run the sweep (the module docstring) and write its ``mfh-gamma-sweep`` artifact at ``out``; the runs go
    under ``work`` (default ``<out>-runs``) and are reused when complete."""
    _check(config)
    out = Path(out)
    work = Path(work) if work is not None else out.with_name(out.name + "-runs")
    if work.exists() and not work.is_dir():
        raise UsageError(f"{work}: exists and is not a folder; choose another --work")
    if is_complete(out) and not overwrite:  # refused now, not after the runs (which are kept either way)
        raise ArtifactError(f"{out}: a complete artifact already exists; pass --overwrite to replace it")
    rows: list[dict[str, Any]] = []
    evaluations: list[Artifact] = []
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    with torch_threads(threads):
        for gamma in config.gammas:
            t0 = time.perf_counter()
            log(f"γ = {gamma}: {config.seeds} seed(s) under {_gamma_folder(work, gamma)}")
            row, evals = _run_gamma(config, gamma, _gamma_folder(work, gamma), show_progress)
            rows.append(row)
            evaluations.extend(evals)
            seconds[f"gamma={gamma}"] = round(time.perf_counter() - t0, 1)
    seconds["total"] = round(time.perf_counter() - start, 1)
    keys = ["teacher", "none", *[f"delta_{m}" for m in config.emotion.methods if m != "none"]]
    if config.diagnose:
        keys += ["diagnose_gamma", "diagnose_output_r2"]
    trends = {key: _slopes(rows, key, config.seeds) for key in keys}
    with ArtifactWriter(
        out,
        MFH_GAMMA_SWEEP,
        to_dict(config),
        inputs=evaluations,
        overwrite=overwrite,
        logs=["timings.json"],
        resumable=False,
    ) as writer:
        notes: list[str] = []
        figure = _figure(config, rows, writer.path("gamma_sweep.png"), notes)
        payload = {
            "units": "7-class test accuracy in percent; *_std: sample sd over seeds (ddof 1); slopes in points "
            "per unit γ",
            "config": to_dict(config),
            "rows": rows,
            "trends": trends,
            "figure": figure,
            "notes": notes,
        }
        atomic_write_text(writer.path("sweep.json"), json.dumps(payload, indent=2) + "\n")
        atomic_write_text(writer.path("report.md"), _markdown(config, rows, trends))
        atomic_write_text(writer.path("timings.json"), json.dumps(seconds, indent=2) + "\n")
        metrics = {
            "gammas": [r["gamma_effective"] for r in rows],
            "seeds": config.seeds,
            "seconds": seconds["total"],
            **{f"{key}_slope": trend["mean"] for key, trend in trends.items()},
        }
        return writer.commit(metrics=metrics)


def public_result(art: Artifact) -> dict[str, Any]:
    """What ``--json`` adds to the artifact's path and id: the rows and the trends."""
    payload = json.loads(art.file("sweep.json").read_text())
    return {"rows": payload["rows"], "trends": payload["trends"], "report": str(art.file("report.md"))}
