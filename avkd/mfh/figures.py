"""The MFH simulation's figures (docs/mfh.md §7), drawn with matplotlib's object API on the Agg canvas (no
pyplot state, no display), as :mod:`avkd.report.figures` does; without matplotlib they are skipped with a note.

- ``fig2_gamma.png`` (the paper's Fig. 2): accuracy against γ in experiment 1, and Δ = KD − no-KD against γ;
- ``fig3_alpha.png`` (Fig. 3): the same against α in experiment 2;
- ``table2.png`` (Table 2): students' and teachers' accuracy against γ for the regular and the three
  modality-general teachers;
- ``salience.png``: Algorithm 1's normalised salience per channel of x^a and x^b (mean over runs), one row per c.

avkd's numbers are solid lines with filled markers (±1 sample sd as bands or bars); the paper's are hollow
squares on dotted lines, the official rerun's hollow triangles on dash-dotted lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avkd.mfh.published import PAPER_FIG2, PAPER_FIG3, PAPER_TABLE2, RERUN_EXP1, RERUN_EXP2

__all__ = ["draw_figures"]

_DPI = 120
_RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
_COLOURS = {
    "teacher": "tab:green",
    "kd": "tab:blue",
    "no_kd": "tab:blue",
    "random": "tab:orange",
    "gt": "tab:purple",
    "alg1": "tab:red",
}
_PAPER = {"linestyle": ":", "marker": "s", "markerfacecolor": "none", "linewidth": 1, "markersize": 6}
_RERUN = {"linestyle": "-.", "marker": "^", "markerfacecolor": "none", "linewidth": 1, "markersize": 6}


def _save(fig: Any, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=_DPI, bbox_inches="tight", metadata={"Software": None})


def _series(
    rows: Sequence[dict[str, Any]], axis: str, key: str
) -> tuple[list[float], list[float], list[float]]:
    xs = [r[axis] for r in rows if r.get(key) is not None]
    ys = [r[key] for r in rows if r.get(key) is not None]
    sds = [r.get(f"{key}_std") or 0.0 for r in rows if r.get(key) is not None]
    return xs, ys, sds


def _sweep_figure(
    rows: Sequence[dict[str, Any]],
    axis: str,
    paper: Sequence[dict[str, Any]],
    rerun: Sequence[dict[str, Any]],
    title: str,
    path: Path,
) -> None:
    from matplotlib.figure import Figure

    symbol = "γ" if axis == "gamma" else "α"
    fig = Figure(figsize=(11, 4.2), dpi=_DPI)
    left, right = fig.subplots(1, 2)
    for key, label, style in (
        ("teacher", "teacher", "-"),
        ("kd", "KD student", "-"),
        ("no_kd", "no-KD", "--"),
    ):
        xs, ys, sds = _series(rows, axis, key)
        left.plot(xs, ys, linestyle=style, marker="x", color=_COLOURS[key], label=f"{label} (avkd)")
        if key == "kd" and any(sds):  # the student's band, as in the paper's figures
            lo = [y - s for y, s in zip(ys, sds, strict=True)]
            hi = [y + s for y, s in zip(ys, sds, strict=True)]
            left.fill_between(xs, lo, hi, color=_COLOURS[key], alpha=0.15, linewidth=0)
        left.plot(
            [p[axis] for p in paper],
            [p[key] for p in paper],
            color=_COLOURS[key],
            label=f"{label} (paper)",
            **_PAPER,
        )
    left.set_xlabel(symbol)
    left.set_ylabel("test accuracy (%)")
    left.set_title(f"{title}: accuracy")
    left.legend(loc="best", ncol=2)

    xs, ys, sds = _series(rows, axis, "delta")
    right.errorbar(
        xs, ys, yerr=sds if any(sds) else None, color="tab:blue", marker="o", capsize=3, label="avkd (±1 sd)"
    )
    right.plot(
        [p[axis] for p in paper],
        [p["kd"] - p["no_kd"] for p in paper],
        color="0.35",
        label="paper",
        **_PAPER,
    )
    right.errorbar(
        [r[axis] for r in rerun],
        [r["delta"] for r in rerun],
        yerr=[r["delta_std"] for r in rerun],
        color="0.55",
        capsize=2,
        label="official rerun (±1 sd, ddof 0)",
        **_RERUN,
    )
    right.axhline(0.0, color="black", linewidth=0.8)
    right.set_xlabel(symbol)
    right.set_ylabel("Δ = KD − no-KD (points)")
    right.set_title(f"{title}: gain from KD")
    right.legend(loc="best")
    fig.tight_layout()
    _save(fig, path)


def _avkd_series(ax: Any, rows: Sequence[dict[str, Any]], key: str, **style: Any) -> None:
    """avkd's mean ± sd of ``key`` against γ (no error bars when every sd is 0, e.g. one run)."""
    xs, ys, sds = _series(rows, "gamma", key)
    ax.errorbar(xs, ys, yerr=sds if any(sds) else None, capsize=2, **style)


def _table2_figure(rows: Sequence[dict[str, Any]], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), dpi=_DPI)
    students, teachers = fig.subplots(1, 2)
    names = {"random": "random", "gt": "ground truth", "alg1": "Alg. 1"}
    for key, label, style in (("no_kd", "no-KD", "--"), ("kd", "regular KD", "-")):
        _avkd_series(
            students,
            rows,
            key,
            linestyle=style,
            marker="x",
            color="tab:blue" if key == "kd" else "0.4",
            label=f"{label} (avkd)",
        )
    for mode, label in names.items():
        _avkd_series(students, rows, mode, marker="o", color=_COLOURS[mode], label=f"MG-KD, {label} (avkd)")
        _avkd_series(
            teachers,
            rows,
            f"{mode}_teacher",
            marker="o",
            color=_COLOURS[mode],
            label=f"MG teacher, {label} (avkd)",
        )
    _avkd_series(teachers, rows, "teacher", marker="x", color="tab:green", label="regular teacher (avkd)")
    gammas = [p["gamma"] for p in PAPER_TABLE2]
    for key, label, colour in (
        ("no_kd", "no-KD", "0.4"),
        ("kd", "regular KD", "tab:blue"),
        ("mg_kd", "MG-KD", "tab:purple"),
    ):
        students.plot(
            gammas, [p[key] for p in PAPER_TABLE2], color=colour, label=f"{label} (paper)", **_PAPER
        )
    for key, label, colour in (
        ("teacher", "regular teacher", "tab:green"),
        ("mg_teacher", "MG teacher", "tab:purple"),
    ):
        teachers.plot(
            gammas, [p[key] for p in PAPER_TABLE2], color=colour, label=f"{label} (paper)", **_PAPER
        )
    students.set_title("Table 2: students")
    teachers.set_title("Table 2: teachers")
    for ax in (students, teachers):
        ax.set_xlabel("γ of the regular teacher")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def _salience_figure(rows: Sequence[dict[str, Any]], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 1.6 + 1.7 * len(rows)), dpi=_DPI)
    axes = fig.subplots(len(rows), 2, squeeze=False)
    for row, (ax_a, ax_b) in zip(rows, axes, strict=True):
        c = row["c"]
        for ax, key, side in ((ax_a, "salience_a", "x^a (teacher)"), (ax_b, "salience_b", "x^b (student)")):
            values = row[key]
            colours = ["tab:red" if j < c else "0.6" for j in range(len(values))]
            ax.bar(range(len(values)), values, color=colours, width=0.8)
            ax.set_ylim(0, 1.05)
            ax.set_title(f"c = {c} (γ = {row['gamma']:.2f}): {side}; red = shared channels", fontsize=9)
            ax.set_ylabel("salience")
    for ax in axes[-1]:
        ax.set_xlabel("input channel")
    fig.suptitle("Algorithm 1: normalised permutation salience, mean over runs")
    fig.tight_layout()
    _save(fig, path)


def draw_figures(result: dict[str, Any], workdir: Path, notes: list[str]) -> dict[str, str | None]:
    """Draw the figures of the experiments in ``result`` into ``workdir``; name -> file (None when not drawn,
    with the reason in ``notes``)."""
    figures: dict[str, str | None] = {
        "fig2_gamma": None,
        "fig3_alpha": None,
        "table2": None,
        "salience": None,
    }
    try:
        from matplotlib import rc_context
    except ImportError:
        notes.append("figures skipped: matplotlib is not installed (pip install matplotlib)")
        return figures
    with rc_context(_RC):
        if "exp1" in result:
            _sweep_figure(
                result["exp1"]["rows"],
                "gamma",
                PAPER_FIG2,
                RERUN_EXP1,
                "Experiment 1 (Fig. 2)",
                workdir / "fig2_gamma.png",
            )
            figures["fig2_gamma"] = "fig2_gamma.png"
        if "exp2" in result:
            _sweep_figure(
                result["exp2"]["rows"],
                "alpha",
                PAPER_FIG3,
                RERUN_EXP2,
                "Experiment 2 (Fig. 3)",
                workdir / "fig3_alpha.png",
            )
            figures["fig3_alpha"] = "fig3_alpha.png"
        if "table2" in result:
            _table2_figure(result["table2"]["rows"], workdir / "table2.png")
            _salience_figure(result["table2"]["rows"], workdir / "salience.png")
            figures["table2"] = "table2.png"
            figures["salience"] = "salience.png"
    return figures
