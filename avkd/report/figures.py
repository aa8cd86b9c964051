"""The report's figures (the MTDVocaLiST paper's Figs. 2-4 and accuracy against K), drawn with matplotlib's
object API on the Agg canvas: no pyplot state, no display. Without matplotlib the figures are skipped and the
report says so.

Figures that plot one value per table row take the rows (:func:`avkd.report.runs.table_rows`): a row of runs
sharing a label (a :class:`~avkd.report.runs.RunMean`) is plotted at its mean with ±1 sample sd error bars.
The loss-ratio figure plots training logs, so it takes the single runs (each seed its own panel).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avkd.report.published import PUBLISHED
from avkd.report.runs import (
    WEIGHTING_LABELS,
    Run,
    RunMean,
    is_bce,
    is_layer_variant,
    loss_name,
    loss_ratios,
)

# ----------------------------------------------------------------------------------------- figures


def _display_labels(runs: Sequence[Run], attr: str = "label") -> list[str]:
    """Labels for legends; a label shared by several rows gets its evaluation id prefix appended, a mean of
    several runs its count (``teacher (mean of 3)``)."""
    names = [getattr(r, attr) for r in runs]
    labels = [
        f"{name} [{run.eval_id[:6]}]" if names.count(name) > 1 else name
        for name, run in zip(names, runs, strict=True)
    ]
    return [
        f"{label} (mean of {len(run.members)})" if isinstance(run, RunMean) else label
        for label, run in zip(labels, runs, strict=True)
    ]


def _sd(run: Run, k: int) -> float:
    """The row's sample sd at K in % (0 for a single run, or a mean of one value): the error bar."""
    if not isinstance(run, RunMean) or k not in run.stats or run.stats[k].sd is None:
        return 0.0
    return 100 * run.stats[k].sd


_RC = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "figure.titlesize": 14,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
_DPI = 120
_PUBLISHED_MARKERS = ["s", "^", "D", "v", "P", "X"]
_RUN_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">"]


def _run_style(index: int) -> dict[str, Any]:
    from matplotlib import colormaps

    colours = colormaps["tab10"].colors
    return {
        "color": colours[index % len(colours)],
        "marker": _RUN_MARKERS[(index // len(colours)) % len(_RUN_MARKERS)],
    }


def _save(fig: Any, path: Path) -> None:
    """Render on the Agg canvas (no pyplot, no display, the caller's backend untouched) and write a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=_DPI, bbox_inches="tight", metadata={"Software": None})


def plot_accuracy_vs_frames(runs: Sequence[Run], frames: Sequence[int], path: Path) -> bool:
    """Accuracy (%) against context length K: a line per run, published rows dashed with hollow markers."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator

    labels = _display_labels(runs)
    fig = Figure(figsize=(9.5, 5.5), dpi=_DPI)
    ax = fig.add_subplot()
    drawn = False
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        points = [(k, 100 * v, _sd(run, k)) for k, v in sorted(run.accuracy.items()) if v is not None]
        if not points:
            continue
        xs, ys, errors = zip(*points, strict=True)
        bars = list(errors) if any(errors) else None
        ax.errorbar(xs, ys, yerr=bars, capsize=3, linewidth=2, markersize=7, label=label, **_run_style(i))
        drawn = True
    if not drawn:
        return False
    for j, row in enumerate(PUBLISHED):
        points = [(k, v) for k, v in sorted(row["accuracy"].items()) if k in frames]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        ax.plot(
            xs,
            ys,
            linestyle="--",
            linewidth=1,
            color="0.4",
            marker=_PUBLISHED_MARKERS[j],
            markerfacecolor="none",
            markersize=7,
            label=f"{row['name']} (published)",
        )
    ax.xaxis.set_major_locator(FixedLocator(list(frames)))
    ax.set_xlabel("context length K (video frames)")
    ax.set_ylabel("accuracy (%), ±1 frame of 31 candidates")
    ax.set_title("Sync accuracy against context length")
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), title="solid: runs\ndashed, hollow: published (LRS2)"
    )
    _save(fig, path)
    return True


def _nice_log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks between ``lo`` and ``hi`` (a log axis that spans only a decade or two gets readable labels)."""
    ticks = []
    for exponent in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0**exponent
            if lo <= value <= hi:
                ticks.append(float(f"{value:.6g}"))
    return ticks


_LABEL_PT = 8.0
_LINE = 1.35  # label pitch in font sizes


def _direct_labels(
    fig: Any,
    ax: Any,
    items: Sequence[tuple[float, float, str, Any]],
    fontsize: float = _LABEL_PT,
    headroom: float = 0.3,
) -> None:
    """Write each label to the right of its point (log x, linear y) so that no two labels overlap.

    Labels are pushed up past other labels and markers; when the stack runs out of the top, the y axis grows by
    at most ``headroom`` of the data range, and what still does not fit is pushed back down as a block (then it
    may cover a marker, never another label). A label moved away from its point gets a thin elbow leader line
    (up from the point, then across), which runs left of the labels it passes. Call after the layout is final:
    label sizes are computed from the axes' size on the page.
    """
    pos = ax.get_position()
    width_in, height_in = fig.get_size_inches()
    ax_w, ax_h = width_in * 72 * pos.width, height_in * 72 * pos.height
    x0, x1 = ax.get_xlim()
    gap, height, marker = 7 / ax_w, fontsize * _LINE / ax_h, 5 / ax_w
    ys = [y for _, y, _, _ in items]
    ceiling = max(ys) + headroom * max(max(ys) - min(ys), 1.0)

    def fx(x: float) -> float:
        return (math.log10(x) - math.log10(x0)) / (math.log10(x1) - math.log10(x0))

    def place(y0: float, y1: float) -> list[list[Any]]:
        def fy(y: float) -> float:
            return (y - y0) / (y1 - y0)

        boxes = [(fx(x) - marker, fx(x) + marker, fy(y)) for x, y, _, _ in items]  # markers are obstacles
        placed = []
        for x, y, text, colour in sorted(items, key=lambda it: (it[1], it[0])):
            left = fx(x) + gap
            right = left + len(text) * fontsize * 0.56 / ax_w
            level = fy(y)
            moved = True
            while moved:
                moved = False
                for other_left, other_right, other in boxes:
                    if left < other_right and other_left < right and abs(level - other) < height * 0.999:
                        level = other + height
                        moved = True
            boxes.append((left, right, level))
            placed.append([x, y, text, colour, level, fy(y), left, right])
        return placed

    y0, y1 = ax.get_ylim()
    for _ in range(8):
        placed = place(y0, y1)
        top = max(p[4] for p in placed) + height / 2
        if top <= 1 or y1 >= ceiling:
            break
        y1 = min(ceiling, y0 + (y1 - y0) * top * 1.02)
    ax.set_ylim(y0, y1)
    # Whatever still sticks out comes down, each label below the overlapping ones above it (a cascade).
    above: list[list[Any]] = []
    for label in sorted(placed, key=lambda p: -p[4]):
        cap = 1 - height / 2
        for other in above:
            if label[6] < other[7] and other[6] < label[7]:
                cap = min(cap, other[4] - height)
        label[4] = min(label[4], cap)
        above.append(label)
    for x, y, text, colour, level, point, _, _ in placed:
        shift = (level - point) * ax_h
        moved = abs(shift) > fontsize * 0.6
        ax.annotate(
            text,
            xy=(x, y),
            xytext=(7, shift),
            textcoords="offset points",
            va="center",
            ha="left",
            fontsize=fontsize,
            color=colour,
            arrowprops=(
                {
                    "arrowstyle": "-",
                    "color": "0.55",
                    "linewidth": 0.6,
                    "shrinkA": 1,
                    "shrinkB": 4,
                    "connectionstyle": f"angle,angleA=0,angleB={90 if shift > 0 else -90},rad=0",
                }
                if moved
                else None
            ),
        )


def _label_room(
    texts: Sequence[tuple[float, str]], lo: float, axes_pt: float, minimum: float, fontsize: float = _LABEL_PT
) -> float:
    """Upper x limit (log axis from ``lo``) leaving room for each label to the right of its point."""
    need = math.log10(minimum)
    for x, text in texts:
        share = min(0.6, (len(text) * fontsize * 0.56 + 12) / axes_pt)  # of the axes width
        need = max(need, (math.log10(x) - share * math.log10(lo)) / (1 - share))
    return 10**need


def _largest_cluster(xs: Sequence[float], decades: float = 0.25) -> int:
    """The most points within ``decades`` of one another on a log axis (how tall a label stack can get)."""
    logs = sorted(math.log10(x) for x in xs)
    return max((sum(1 for b in logs if a <= b <= a + decades) for a in logs), default=0)


def plot_size_vs_accuracy(runs: Sequence[Run], frames: Sequence[int], path: Path) -> bool:
    """Paper Fig. 2: accuracy against parameters (M, log axis), one panel per K, published as hollow markers.

    Runs are filled coloured circles, published numbers hollow dark markers; every point is labelled directly.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    panel_frames = [k for k in frames if any(r.accuracy.get(k) is not None and r.parameters for r in runs)]
    if not panel_frames:
        return False
    n = len(panel_frames)
    cols = min(2, n)
    rows = math.ceil(n / cols)
    xs_all = [r.parameters / 1e6 for r in runs if r.parameters] + [p["params"] for p in PUBLISHED]
    # Tall enough for the largest stack of labels (all students share one parameter count).
    stack_in = _largest_cluster(xs_all) * _LABEL_PT * _LINE / 72 / 0.75
    panel_h = max(4.6, stack_in + 1.0)
    panel_w = 6.6 if n > 1 else 8.4
    fig = Figure(figsize=(panel_w * cols, panel_h * rows + 0.9), dpi=_DPI)
    axes = fig.subplots(rows, cols, squeeze=False)
    labels = _display_labels(runs)
    texts = [(r.parameters / 1e6, label) for r, label in zip(runs, labels, strict=True) if r.parameters]
    texts += [(p["params"], f"{p['name']} (published)") for p in PUBLISHED]
    lo = min(xs_all) / 1.6
    hi = _label_room(texts, lo, axes_pt=panel_w * 72 * 0.8, minimum=max(xs_all) * 3)
    pending = []
    for index, k in enumerate(panel_frames):
        ax = axes[index // cols][index % cols]
        items: list[tuple[float, float, str, Any]] = []
        for j, row in enumerate(PUBLISHED):
            if k not in row["accuracy"]:
                continue
            ax.plot(
                [row["params"]],
                [row["accuracy"][k]],
                linestyle="none",
                marker=_PUBLISHED_MARKERS[j],
                markersize=8,
                markerfacecolor="none",
                markeredgewidth=1.4,
                color="0.25",
            )
            items.append((row["params"], row["accuracy"][k], f"{row['name']} (published)", "0.3"))
        for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
            value = run.accuracy.get(k)
            if value is None or not run.parameters:
                continue
            style = _run_style(i)
            error = _sd(run, k)
            ax.errorbar(
                [run.parameters / 1e6],
                [100 * value],
                yerr=[error] if error else None,
                capsize=3,
                linestyle="none",
                markersize=8,
                markeredgecolor="black",
                markeredgewidth=0.6,
                **style,
            )
            items.append((run.parameters / 1e6, 100 * value, label, style["color"]))
        ys = [y for _, y, _, _ in items]
        middle, span = (max(ys) + min(ys)) / 2, max(max(ys) - min(ys), 4.0)  # at least 4 points of accuracy
        ax.set_ylim(middle - 0.56 * span, middle + 0.62 * span)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.xaxis.set_major_locator(FixedLocator(_nice_log_ticks(lo, max(xs_all) * 1.5)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        # The axis may run past 100 % to make room for labels; no tick label there claims such an accuracy.
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}" if y <= 100 + 1e-9 else ""))
        ax.set_title(f"K = {k} frames ({k / 25:.2f} s)")
        ax.set_xlabel("parameters (millions, log scale)")
        if index % cols == 0:
            ax.set_ylabel("accuracy (%)")
        pending.append((ax, items))
    for index in range(n, rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    fig.suptitle("Model size against accuracy\nfilled: runs of this report; hollow: published LRS2 numbers")
    fig.set_layout_engine("constrained")  # makes room for the two-line title, unlike tight_layout
    fig.draw_without_rendering()
    fig.set_layout_engine("none")  # freeze the axes: the labels below are sized from their final positions
    for ax, items in pending:
        _direct_labels(fig, ax, items)
    _save(fig, path)
    return True


def _layer_order(run: Run, position: int) -> tuple[int, int, int]:
    """Paper Fig. 3 order: BCE, F1-4, AV1-4, VA1-4, other layer sets, then the weighting variants."""
    label = run.variant
    if is_bce(run):
        return (0, 0, position)
    match = re.fullmatch(r"(F|AV|VA)(\d+)", label)
    if match:
        return ({"F": 1, "AV": 2, "VA": 3}[match.group(1)], int(match.group(2)), position)
    weights = list(WEIGHTING_LABELS.values())
    if label in weights:
        return (5, weights.index(label), position)
    return (4, 0, position)


def _layer_group(run: Run) -> str:
    if is_bce(run):
        return "BCE only"
    if re.fullmatch(r"F\d+", run.variant):
        return "one fusion layer"
    if re.fullmatch(r"AV\d+", run.variant):
        return "one AV layer"
    if re.fullmatch(r"VA\d+", run.variant):
        return "one VA layer"
    if run.variant in WEIGHTING_LABELS.values():
        return "all layers, weighting"
    return "layer sets"


_GROUP_COLOURS = {
    "BCE only": "#7f7f7f",
    "one fusion layer": "#1f77b4",
    "one AV layer": "#2ca02c",
    "one VA layer": "#ff7f0e",
    "layer sets": "#8c564b",
    "all layers, weighting": "#9467bd",
}


def layer_runs(runs: Sequence[Run], k: int = 5) -> list[Run]:
    """The runs of Fig. 3 in the paper's order: BCE baselines and nmtd/mtd variants with an accuracy at K."""
    chosen = [
        (i, r)
        for i, r in enumerate(runs)
        if (is_bce(r) or is_layer_variant(r)) and r.accuracy.get(k) is not None
    ]
    return [r for i, r in sorted(chosen, key=lambda ir: _layer_order(ir[1], ir[0]))]


def plot_layers(runs: Sequence[Run], path: Path, k: int = 5) -> bool:
    """Paper Fig. 3: accuracy at K per layer-selection / weighting variant, BCE as the baseline bar."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    chosen = layer_runs(runs, k)
    if sum(is_layer_variant(r) for r in chosen) < 2:
        return False
    labels = _display_labels(chosen, "variant")
    values = [100 * (r.accuracy[k] or 0.0) for r in chosen]
    errors = [_sd(r, k) for r in chosen]
    groups = [_layer_group(r) for r in chosen]
    fig = Figure(figsize=(max(6.5, 0.75 * len(chosen) + 2.5), 5.2), dpi=_DPI)
    ax = fig.add_subplot()
    positions = list(range(len(chosen)))
    bars = ax.bar(
        positions,
        values,
        yerr=errors if any(errors) else None,
        capsize=4,
        color=[_GROUP_COLOURS[g] for g in groups],
        edgecolor="black",
        width=0.7,
    )
    pairs = list(zip(values, errors, strict=True))
    low, high = min(v - e for v, e in pairs), max(v + e for v, e in pairs)
    spread = max(high - low, 1.0)
    bottom = max(0.0, math.floor((low - 0.5 * spread) / 5) * 5)
    ax.set_ylim(bottom, high + 0.15 * (high - bottom) + 0.5)  # room for the value labels
    for bar, (value, error) in zip(bars, pairs, strict=True):
        ax.annotate(
            f"{value:.2f}",
            (bar.get_x() + bar.get_width() / 2, value + error),  # above the error bar
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=9,
        )
    slanted = max(len(label) for label in labels) > 8  # wider than a bar's 0.75 in slot
    ax.set_xticks(positions, labels, rotation=40 if slanted else 0, ha="right" if slanted else "center")
    ax.set_ylabel(f"accuracy at K={k} (%)")
    ax.set_xlabel("distillation target (layers) / layer weighting")
    title = "Accuracy of layer selection strategies"
    if bottom > 0:
        title += f" (y axis from {bottom:g}%)"
    ax.set_title(title)
    ax.grid(axis="x", visible=False)
    present = list(dict.fromkeys(groups))
    ax.legend(
        handles=[Patch(facecolor=_GROUP_COLOURS[g], edgecolor="black", label=g) for g in present],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )
    fig.tight_layout()
    _save(fig, path)
    return True


def plot_loss_ratio(runs: Sequence[Run], path: Path) -> bool:
    """Paper Fig. 4: validation monitor losses / their maximum over epochs, against epoch, a panel per run."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    series = [(r, loss_ratios(r.history)) for r in runs]
    series = [(r, s) for r, s in series if s]
    if not series:
        return False
    labels = _display_labels([r for r, _ in series])
    n = len(series)
    cols = min(2, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(6.4 * cols, 4.2 * rows + 0.4), dpi=_DPI)
    axes = fig.subplots(rows, cols, squeeze=False)
    styles = ["-", "--", "-.", ":"]
    colours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"]
    for index, ((run, ratios), label) in enumerate(zip(series, labels, strict=True)):
        ax = axes[index // cols][index % cols]
        for j, (key, points) in enumerate(ratios.items()):
            xs, ys = zip(*points, strict=True)
            ax.plot(
                xs,
                ys,
                linestyle=styles[j % len(styles)],
                color=colours[j % len(colours)],
                linewidth=2,
                marker="o" if len(xs) <= 30 else None,
                markersize=4,
                label=loss_name(key),
            )
        ax.set_ylim(0, 1.05)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{label} ({run.variant})" if run.variant != run.label else label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss ratio (loss / max over epochs)")
        ax.legend(loc="lower left")
    for index in range(n, rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    fig.suptitle("Validation losses, each normalised by its maximum over epochs")
    fig.tight_layout()
    _save(fig, path)
    return True


def draw_figures(
    runs: Sequence[Run],
    frames: Sequence[int],
    workdir: Path,
    notes: list[str],
    singles: Sequence[Run] | None = None,
) -> dict[str, str | None]:
    """Draw every figure that applies; return name → file (None when skipped, with the reason in ``notes``).

    ``runs`` are the table's rows (means included); ``singles`` the evaluations behind them, whose training logs
    the loss-ratio figure plots (default: ``runs``).
    """
    figures: dict[str, str | None] = {
        "accuracy_vs_frames": None,
        "size_vs_accuracy": None,
        "layers": None,
        "loss_ratio": None,
    }
    try:
        from matplotlib import rc_context
    except ImportError:
        notes.append("figures skipped: matplotlib is not installed (pip install matplotlib)")
        return figures
    with rc_context(_RC):
        if plot_accuracy_vs_frames(runs, frames, workdir / "accuracy_vs_frames.png"):
            figures["accuracy_vs_frames"] = "accuracy_vs_frames.png"
        if plot_size_vs_accuracy(runs, frames, workdir / "size_vs_accuracy.png"):
            figures["size_vs_accuracy"] = "size_vs_accuracy.png"
        else:
            notes.append("size_vs_accuracy.png not drawn: no run has both a parameter count and an accuracy")
        if plot_layers(runs, workdir / "layers.png"):
            figures["layers"] = "layers.png"
        else:
            notes.append(
                "layers.png (Fig. 3) not drawn: fewer than two layer-selection / weighting runs "
                "(method nmtd or mtd) with an accuracy at K5"
            )
        if plot_loss_ratio(runs if singles is None else singles, workdir / "loss_ratio.png"):
            figures["loss_ratio"] = "loss_ratio.png"
        else:
            notes.append(
                "loss_ratio.png (Fig. 4) not drawn: no run's training log has validation monitor losses (val/*)"
            )
    return figures
