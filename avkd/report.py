"""``avkd report``: tables and figures in the shape of the MTDVocaLiST paper, from evaluation artifacts.

A ``report`` artifact holds:

- ``report.md`` / ``report.json``: the runs in the layout of the paper's Table 1 (one row per evaluation, one
  column per context length K, accuracy in %), each row carrying its parameter count and the ids of its evaluation
  and model artifacts so that every number traces back to a run; then, in a separate table, the published LRS2
  numbers of reference §6 (:data:`PUBLISHED`), marked "(published, LRS2)" so they are never mistaken for runs.
- ``accuracy_vs_frames.png``: accuracy against K, one line per run, published rows dashed with hollow markers.
- ``size_vs_accuracy.png`` (paper Fig. 2): accuracy against parameters (millions, log axis), one panel per K,
  runs as filled markers, published numbers as hollow markers labelled "(published)".
- ``layers.png`` (paper Fig. 3), only when at least two layer-selection / weighting variants (method ``nmtd`` or
  ``mtd``) are among the runs: accuracy at K5 per variant, plus BCE runs as the baseline bar.
- ``loss_ratio.png`` (paper Fig. 4), only when some model's ``metrics.jsonl`` holds validation monitor losses
  (keys starting with ``val/``): each loss divided by its maximum over epochs ("losses are normalized by their
  respective maximum values across all epochs"), against epoch, one panel per run.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display needed). When
matplotlib is not installed the tables are still written and ``report.md`` says that the figures were skipped.

Label derivation for Fig. 3 (:func:`variant_label`), from the model manifest's config (top-level ``method``,
``weighting``, ``layers``; a ``distill`` section is also looked at):

- ``method`` ``bce``/``kd``/``rkd``/``fitnets``/``minilm`` → ``BCE``/``KD``/``RKD``/``FitNets``/``MiniLM*``;
- ``nmtd``/``mtd`` with ``layers`` ``all`` (or unset) → the weighting: ``uniform`` → ``Uniform``, ``manual`` →
  ``Manual``, ``aw13`` → ``AW-13D``, ``aw25`` → ``AW-25D``, ``uw13`` → ``UW-13D``, ``uw25`` → ``UW-25D`` (unset:
  the method's default, ``mtd`` → ``UW-25D``, ``nmtd`` → ``Uniform``);
- ``nmtd``/``mtd`` with one layer → the layer: ``fusion4``/``fus4``/``mem4`` → ``F4``, ``av1`` → ``AV1``,
  ``va3`` → ``VA3`` (one term, so the weighting does not matter);
- several layers (the grammar of ``avkd.distill.losses.parse_layers``, parts separated by ``,`` or ``+``) → the
  parts joined with ``+`` (``fusion3,av4,va1`` → ``F3+AV4+VA1``, ``av1-4`` → ``AV1-4``, ``av`` → ``AV1-4``),
  followed by the weighting label unless it is uniform;
- ``loss_options.components`` of only ``cad`` / only ``vr`` (paper Table 2) appends `` w/o VR`` / `` w/o CAD``;
- no config (model artifact missing) or no ``method`` (e.g. a teacher) → the evaluation's label.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from avkd.artifacts import Artifact, ArtifactWriter, atomic_write_text, load_artifact, register_kind
from avkd.errors import ArtifactError, UsageError
from avkd.report_emotion import build_emotion_report, is_emotion_evaluation

KIND = "report"
register_kind(KIND, 1)

EVALUATION_KIND = "evaluation"
MODEL_KIND = "model"
FEATURES_KIND = "lrs2-features"
DEFAULT_TITLE = "Audio-visual synchronisation: accuracy by context length"

#: Reference §6: LRS2 test, 1,243 clips, ±1 frame. ``params`` in millions, ``accuracy`` in **percent** as
#: published (runs carry fractions), keyed by the context length K in frames.
PUBLISHED: list[dict[str, Any]] = [
    {
        "name": "SyncNet",
        "params": 13.6,
        "accuracy": {5: 75.8, 7: 82.3, 9: 87.6, 11: 91.8, 13: 94.5, 15: 96.1},
        "source": "literature row printed by MTDVocaLiST test_stu.py",
    },
    {
        "name": "PM (Perfect Match)",
        "params": 13.6,
        "accuracy": {5: 88.1, 7: 93.8, 9: 96.4, 11: 97.9, 13: 98.7, 15: 99.1},
        "source": "literature row printed by MTDVocaLiST test_stu.py",
    },
    {
        "name": "AVST",
        "params": 42.4,
        "accuracy": {5: 92.0, 7: 95.5, 9: 97.7, 11: 98.8, 13: 99.3, 15: 99.6},
        "source": "literature row printed by MTDVocaLiST test_stu.py",
    },
    {
        "name": "VocaLiST (paper)",
        "params": 80.1,
        "accuracy": {5: 92.8, 7: 96.7, 9: 98.4, 11: 99.3, 13: 99.6, 15: 99.8},
        "source": "VocaLiST paper",
    },
    {
        "name": "VocaLiST (repro)",
        "params": 80.106561,
        "accuracy": {5: 92.44, 7: 96.52, 9: 98.27, 11: 99.13, 13: 99.53, 15: 99.76},
        "source": "MTDVocaLiST pretrained/repro_Vocalist_eval_result.log (2022-12-26)",
    },
    {
        "name": "MTDVocaLiST",
        "params": 13.280961,
        "accuracy": {5: 91.46, 7: 95.74, 9: 97.99, 11: 98.95, 13: 99.46, 15: 99.68},
        "source": "MTDVocaLiST pretrained/pure_MTDVocaLiST_eval_result.log (2024-01-21)",
    },
]

PUBLISHED_TAG = "(published, LRS2)"

_METHOD_LABELS = {
    "bce": "BCE",
    "kd": "KD",
    "rkd": "RKD",
    "fitnets": "FitNets",
    "fitnet": "FitNets",
    "minilm": "MiniLM*",
    "nmtd": "NMTD",
    "mtd": "MTD",
}
_WEIGHTING_LABELS = {
    "uniform": "Uniform",
    "manual": "Manual",
    "aw13": "AW-13D",
    "aw25": "AW-25D",
    "uw13": "UW-13D",
    "uw25": "UW-25D",
}
_BLOCKS = {"fusion": "F", "fus": "F", "f": "F", "mem": "F", "av": "AV", "va": "VA"}
_LAYER_RE = re.compile(r"^(fusion|fus|mem|av|va|f)_?(\d+(?:-\d+)?)?$")
_LOSS_NAMES = {"val/mtd": "MTD", "val/last_mtd": "Last-MTD", "val/fitnets": "FitNets"}


# ---------------------------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One evaluation (a row of the table) and what its model artifact says about the run behind it.

    ``accuracy`` holds fractions in [0, 1] keyed by K (None = not a number); ``parameters`` is a count (not
    millions). ``config`` and ``history`` come from the model artifact and are None / empty when it is missing.
    """

    label: str
    eval_id: str
    model_id: str | None
    parameters: int | None
    accuracy: dict[int, float | None]
    config: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    eval_path: str = ""
    model_path: str | None = None
    #: ``ok``, ``missing``, ``changed (now <id>)``, ``no artifact`` (a bare weights file) or ``unknown``.
    model_status: str = "ok"
    clips: int | None = None
    split: str | None = None
    limit: int | None = None
    #: The evaluator's counting: "avkd" or "reference" (the official script's; see avkd.evaluate.reference_protocol).
    protocol: str = "avkd"
    data_id: str | None = None
    variant: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def frames(self) -> list[int]:
        return sorted(self.accuracy)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (K keys as strings); :meth:`from_json` inverts it exactly."""
        data = asdict(self)
        data["accuracy"] = {str(k): v for k, v in sorted(self.accuracy.items())}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        values = dict(data)
        values["accuracy"] = {int(k): v for k, v in data["accuracy"].items()}
        return cls(**values)


def variant_label(config: dict[str, Any] | None, fallback: str) -> str:
    """The paper's Fig. 3 label of a run from its model config (rules in the module docstring)."""
    if not config:
        return fallback
    section = config.get("distill") if isinstance(config.get("distill"), dict) else {}
    method = config.get("method", section.get("method"))
    if not method:
        return fallback
    method = str(method).lower()
    if method not in ("nmtd", "mtd"):
        return _METHOD_LABELS.get(method, str(config.get("method", section.get("method"))))
    # Unset weighting / layers (configs written by hand) mean the defaults: mtd uw25, nmtd uniform (losses.py).
    weighting = _weighting_label(config.get("weighting", section.get("weighting")))
    weighting = weighting or ("UW-25D" if method == "mtd" else "Uniform")
    layers = _layer_labels(config.get("layers", section.get("layers")))
    if not layers:
        label = weighting
    elif len(layers) == 1 and "-" not in layers[0]:
        label = layers[0]
    else:
        joined = "+".join(layers)
        label = joined if weighting == "Uniform" else f"{joined} {weighting}"
    return label + _components_suffix(config)


def _components_suffix(config: dict[str, Any]) -> str:
    """Paper Table 2 ablations: ``loss_options.components`` = ``["cad"]`` → " w/o VR", ``["vr"]`` → " w/o CAD"."""
    options = config.get("loss_options")
    components = options.get("components") if isinstance(options, dict) else None
    if not components:
        return ""
    chosen = {components} if isinstance(components, str) else set(components)
    if chosen == {"cad"}:
        return " w/o VR"
    if chosen == {"vr"}:
        return " w/o CAD"
    return ""


def _weighting_label(value: Any) -> str | None:
    if value is None or value == "":
        return None
    key = re.sub(r"[^a-z0-9]", "", str(value).lower())
    key = key[:-1] if re.fullmatch(r"[au]w\d+d", key) else key
    return _WEIGHTING_LABELS.get(key, str(value))


def _layer_labels(value: Any) -> list[str]:
    """``"fusion3+av4+va1"`` → ``["F3", "AV4", "VA1"]``; ``"all"``/None → ``[]``; unknown parts upper-cased."""
    if value is None:
        return []
    parts = value if isinstance(value, list | tuple) else re.split(r"[+,\s]+", str(value))
    labels = []
    for part in parts:
        text = str(part).strip().lower()
        if not text or text == "all":
            continue
        match = _LAYER_RE.match(text)
        if match is None:
            labels.append(str(part).strip().upper())
        else:
            block, number = match.groups()
            labels.append(_BLOCKS[block] + (number or "1-4"))
    return labels


def is_layer_variant(run: Run) -> bool:
    """True for layer-selection / weighting runs (method ``nmtd`` or ``mtd``), the bars of Fig. 3."""
    return str(_method(run) or "").lower() in ("nmtd", "mtd")


def is_bce(run: Run) -> bool:
    """True for the BCE-only baseline: method ``bce``, or no method and an evaluation label ``BCE``."""
    method = _method(run)
    if method is not None:
        return str(method).lower() == "bce"
    return run.label.strip().lower() in ("bce", "l_bce")


def _method(run: Run) -> Any:
    if not run.config:
        return None
    section = run.config.get("distill") if isinstance(run.config.get("distill"), dict) else {}
    return run.config.get("method", section.get("method"))


def load_runs(evaluations: Iterable[str | Path]) -> list[Run]:
    """One :class:`Run` per evaluation artifact, in the order given."""
    return [run for _, run in _load(evaluations)]


def _load(evaluations: Iterable[str | Path]) -> list[tuple[Artifact, Run]]:
    paths = [p.path if isinstance(p, Artifact) else Path(p) for p in evaluations]
    if not paths:
        raise UsageError("avkd report: give at least one evaluation artifact")
    return [_load_one(path) for path in paths]


def _load_one(path: Path) -> tuple[Artifact, Run]:
    art = load_artifact(path, kind=EVALUATION_KIND)
    summary = _read_summary(art)
    manifest = art.manifest
    label = str(summary.get("label") or manifest.get("label") or path.name)
    frames = [int(k) for k in summary.get("frames") or []]
    raw = summary.get("accuracy") or {}
    frames = sorted(set(frames) | {int(k) for k in raw})
    accuracy: dict[int, float | None] = {}
    for k in frames:
        value = raw.get(str(k), raw.get(k))
        accuracy[k] = None if value is None or not math.isfinite(float(value)) else float(value)
    parameters = summary.get("parameters", art.metrics.get("parameters"))
    clips = summary.get("clips_evaluated", art.metrics.get("clips"))
    inputs = manifest.get("inputs", [])
    model_ref = summary.get("model") or next((i for i in inputs if i.get("kind") == MODEL_KIND), None)
    data_ref = next((i for i in inputs if i.get("kind") == FEATURES_KIND), None)
    run = Run(
        label=label,
        eval_id=art.id,
        model_id=(model_ref or {}).get("id"),
        parameters=int(parameters) if parameters is not None else None,
        accuracy=accuracy,
        eval_path=str(path),
        model_path=(model_ref or {}).get("path"),
        clips=int(clips) if clips is not None else None,
        split=art.config.get("split"),
        limit=art.config.get("limit"),
        protocol=art.config.get("protocol", "avkd"),
        data_id=(data_ref or {}).get("id"),
    )
    _attach_model(run, model_ref)
    run.variant = variant_label(run.config, run.label)
    return art, run


def _read_summary(art: Artifact) -> dict[str, Any]:
    """``accuracy.json``, or (if it is gone) the same facts from the manifest's metrics."""
    file = art.file("accuracy.json")
    if file.is_file():
        try:
            return json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{file}: unreadable ({exc})") from None
    metrics = art.metrics
    if "accuracy" not in metrics:
        raise ArtifactError(f"{art.path}: evaluation holds neither accuracy.json nor accuracy metrics")
    return {
        "label": art.manifest.get("label"),
        "parameters": metrics.get("parameters"),
        "accuracy": metrics["accuracy"],
        "clips_evaluated": metrics.get("clips"),
    }


def _attach_model(run: Run, ref: dict[str, Any] | None) -> None:
    """Read config and training history from the model artifact the evaluation names, if it is still there."""
    if ref is None:
        run.model_status = "unknown"
        run.notes.append(f"{run.label}: the evaluation does not name its model")
        return
    if ref.get("id") is None:
        run.model_status = "no artifact"
        run.notes.append(
            f"{run.label}: evaluated from a bare weights file {ref.get('path')} (no model artifact)"
        )
        return
    try:
        model = load_artifact(ref["path"], kind=MODEL_KIND)
    except ArtifactError as exc:
        run.model_status = "missing"
        run.notes.append(
            f"{run.label}: model artifact {ref['id']} missing ({exc}); row from the evaluation only"
        )
        return
    if model.id != ref["id"]:
        run.model_status = f"changed (now {model.id})"
        run.notes.append(
            f"{run.label}: model at {ref['path']} is now {model.id}, not the evaluated {ref['id']}; "
            "its config and logs are not used"
        )
        return
    run.config = model.config
    if run.parameters is None:
        run.parameters = model.metrics.get("parameters")
    logs = model.manifest.get("logs") or "metrics.jsonl"
    run.history = _read_history(model.file(logs), run)


def _read_history(file: Path, run: Run) -> list[dict[str, Any]]:
    """``metrics.jsonl`` rows (one per epoch); unreadable lines are skipped with a note."""
    if not file.is_file():
        return []
    rows = []
    bad = 0
    for line in file.read_text().splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
    if bad:
        run.notes.append(f"{run.label}: {bad} unreadable line(s) in {file} skipped")
    return rows


def union_frames(runs: Sequence[Run]) -> list[int]:
    """All context lengths K that any run was evaluated at, ascending."""
    return sorted({k for run in runs for k in run.accuracy})


# ------------------------------------------------------------------------------------- loss ratios


def loss_ratios(history: Sequence[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Each ``val/*`` loss divided by its maximum over epochs: key → [(epoch, ratio), ...] (paper Fig. 4).

    Non-numeric or non-finite values are left out; a key whose maximum is not positive cannot be normalised and
    is dropped. A repeated epoch keeps its last row (a resumed run). Keys come in the order MTD, Last-MTD,
    FitNets, then the others alphabetically.
    """
    by_epoch: dict[int, dict[str, Any]] = {}
    for index, row in enumerate(history):
        epoch = row.get("epoch", index + 1)
        by_epoch[int(epoch)] = row
    keys = {k for row in by_epoch.values() for k in row if isinstance(k, str) and k.startswith("val/")}
    order = [k for k in _LOSS_NAMES if k in keys] + sorted(keys - set(_LOSS_NAMES))
    result: dict[str, list[tuple[int, float]]] = {}
    for key in order:
        points = []
        for epoch in sorted(by_epoch):
            value = by_epoch[epoch].get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                points.append((epoch, float(value)))
        if not points:
            continue
        peak = max(v for _, v in points)
        if peak <= 0:
            continue
        result[key] = [(e, v / peak) for e, v in points]
    return result


def loss_name(key: str) -> str:
    """Display name of a monitor loss key: ``val/mtd`` → ``MTD``, ``val/last_mtd`` → ``Last-MTD``."""
    return _LOSS_NAMES.get(key, key.removeprefix("val/"))


# ------------------------------------------------------------------------------------------ tables


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def format_millions(parameters: float | None, already_millions: bool = False) -> str:
    """Parameter count in millions: two decimals from 1M up, three significant digits below."""
    if parameters is None:
        return "–"
    m = parameters if already_millions else parameters / 1e6
    return f"{m:.2f}" if m >= 1 else f"{m:.3g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table_markdown(runs: Sequence[Run], frames: Sequence[int]) -> str:
    """Table 1 layout: one row per run, accuracy in % (2 decimals) per K, params (M), clips and artifact ids."""
    head = "| run | " + " | ".join(f"K{k}" for k in frames) + " | params (M) | clips | evaluation | model |"
    rule = "|---|" + "---:|" * len(frames) + "---:|---:|---|---|"
    lines = [head, rule]
    for run in runs:
        cells = [_pct(run.accuracy.get(k)) for k in frames]
        model = f"`{run.model_id}`" if run.model_id else "–"
        if run.model_status != "ok":
            model += f" ({run.model_status})"
        clips = "–" if run.clips is None else str(run.clips)
        lines.append(
            f"| {_cell(run.label)} | "
            + " | ".join(cells)
            + f" | {format_millions(run.parameters)} | {clips} | `{run.eval_id}` | {_cell(model)} |"
        )
    return "\n".join(lines) + "\n"


def _as_published(value: float) -> str:
    """A published number at the precision it was printed with (one or two decimals): 92.0, 91.46, 13.6."""
    text = f"{value:.2f}"
    return text[:-1] if text.endswith("0") else text


def published_markdown(frames: Sequence[int]) -> str:
    """The reference §6 rows as a separate table (numbers as printed, in %)."""
    head = "| model | params (M) | " + " | ".join(f"K{k}" for k in frames) + " | source |"
    rule = "|---|---:|" + "---:|" * len(frames) + "---|"
    lines = [head, rule]
    for row in PUBLISHED:
        cells = [_as_published(row["accuracy"][k]) if k in row["accuracy"] else "–" for k in frames]
        lines.append(
            f"| {row['name']} {PUBLISHED_TAG} | {_as_published(row['params'])} | "
            + " | ".join(cells)
            + f" | {row['source']} |"
        )
    return "\n".join(lines) + "\n"


def _comparability_notes(runs: Sequence[Run]) -> list[str]:
    notes = []
    data = {r.data_id for r in runs if r.data_id}
    if len(data) > 1:
        notes.append(
            "the runs were evaluated on different feature artifacts ("
            + ", ".join(f"`{d}`" for d in sorted(data))
            + "); their numbers are not directly comparable"
        )
    for run in runs:
        if run.split not in (None, "test"):
            notes.append(f"{run.label}: evaluated on split {run.split!r}, not 'test'")
        if run.limit is not None:
            notes.append(f"{run.label}: only the first {run.limit} clips were evaluated")
    protocols = {r.protocol for r in runs}
    if len(protocols) > 1:
        notes.append(
            "the runs were counted under different protocols ("
            + ", ".join(f"{r.label}: {r.protocol}" for r in runs)
            + "); their numbers are not directly comparable"
        )
    elif protocols == {"reference"}:
        notes.append(
            "counted with the official script's arithmetic (--protocol reference: N−5 windows, scored zero "
            "padding, −1000 sentinels averaged in), as the published rows are"
        )
    return notes


# ----------------------------------------------------------------------------------------- figures


def _display_labels(runs: Sequence[Run], attr: str = "label") -> list[str]:
    """Labels for legends; a label shared by several runs gets its evaluation id prefix appended."""
    names = [getattr(r, attr) for r in runs]
    return [
        f"{name} [{run.eval_id[:6]}]" if names.count(name) > 1 else name
        for name, run in zip(names, runs, strict=True)
    ]


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
        points = [(k, 100 * v) for k, v in sorted(run.accuracy.items()) if v is not None]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, linewidth=2, markersize=7, label=label, **_run_style(i))
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
            ax.plot(
                [run.parameters / 1e6],
                [100 * value],
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
    weights = list(_WEIGHTING_LABELS.values())
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
    if run.variant in _WEIGHTING_LABELS.values():
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
    groups = [_layer_group(r) for r in chosen]
    fig = Figure(figsize=(max(6.5, 0.75 * len(chosen) + 2.5), 5.2), dpi=_DPI)
    ax = fig.add_subplot()
    positions = list(range(len(chosen)))
    bars = ax.bar(positions, values, color=[_GROUP_COLOURS[g] for g in groups], edgecolor="black", width=0.7)
    low, high = min(values), max(values)
    spread = max(high - low, 1.0)
    bottom = max(0.0, math.floor((low - 0.5 * spread) / 5) * 5)
    ax.set_ylim(bottom, high + 0.15 * (high - bottom) + 0.5)  # room for the value labels
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(
            f"{value:.2f}",
            (bar.get_x() + bar.get_width() / 2, value),
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


# ------------------------------------------------------------------------------------------ report


def _figures(
    runs: Sequence[Run], frames: Sequence[int], workdir: Path, notes: list[str]
) -> dict[str, str | None]:
    """Draw every figure that applies; return name → file (None when skipped, with the reason in ``notes``)."""
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
        if plot_loss_ratio(runs, workdir / "loss_ratio.png"):
            figures["loss_ratio"] = "loss_ratio.png"
        else:
            notes.append(
                "loss_ratio.png (Fig. 4) not drawn: no run's training log has validation monitor losses (val/*)"
            )
    return figures


_FIGURE_CAPTIONS = {
    "accuracy_vs_frames": "Accuracy against context length K; published LRS2 rows dashed with hollow markers.",
    "size_vs_accuracy": "Model size against accuracy (paper Fig. 2): runs filled, published numbers hollow.",
    "layers": "Accuracy at K5 of layer-selection and weighting strategies (paper Fig. 3).",
    "loss_ratio": "Validation losses normalised by their maximum over epochs (paper Fig. 4).",
}


def render_markdown(
    title: str,
    runs: Sequence[Run],
    frames: Sequence[int],
    figures: dict[str, str | None],
    notes: Sequence[str],
) -> str:
    """The whole ``report.md``."""
    tolerance = "±1 frame"
    parts = [
        f"# {title}",
        "",
        "Accuracy (%) of finding the true audio offset among 31 candidates (±15 frames), counted correct within "
        f"{tolerance}, for each context length K (video frames at 25 fps). Each row names the evaluation and model "
        "artifacts it comes from (`avkd artifacts show PATH` prints their lineage).",
        "",
        "## Runs",
        "",
        table_markdown(runs, frames).rstrip(),
        "",
        "## Published reference numbers " + PUBLISHED_TAG,
        "",
        "Not runs of this toolkit: numbers reported on the LRS2 test set (1,243 clips, ±1 frame) as listed in the "
        "MTDVocaLiST repository, for comparison only.",
        "",
        published_markdown(
            [k for k in frames if any(k in p["accuracy"] for p in PUBLISHED)] or [5, 7, 9, 11, 13, 15]
        ).rstrip(),
        "",
        "## Figures",
        "",
    ]
    drawn = [(name, file) for name, file in figures.items() if file]
    if drawn:
        for name, file in drawn:
            parts += [f"![{_FIGURE_CAPTIONS[name]}]({file})", "", f"*{_FIGURE_CAPTIONS[name]}*", ""]
    else:
        parts += ["No figures were drawn (see the notes).", ""]
    if notes:
        parts += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(parts)


def build_report(
    evaluations: Sequence[str | Path],
    out: str | Path,
    title: str | None = None,
    overwrite: bool = False,
) -> Artifact:
    """Write a ``report`` artifact (tables, JSON and figures) from evaluation artifacts, rows in the order given."""
    heads = [load_artifact(path, kind="evaluation") for path in evaluations]
    emotion = [is_emotion_evaluation(a) for a in heads]
    if any(emotion):
        if not all(emotion):
            raise UsageError("report: sync and emotion (mosei) evaluations cannot share one report")
        return build_emotion_report(heads, out, title or "avkd emotion report", overwrite=overwrite)
    loaded = _load(evaluations)
    arts = [a for a, _ in loaded]
    runs = [r for _, r in loaded]
    title = title or DEFAULT_TITLE
    frames = union_frames(runs)
    notes = [note for run in runs for note in run.notes] + _comparability_notes(runs)
    config = {"title": title}
    with ArtifactWriter(out, KIND, config, inputs=arts, overwrite=overwrite) as writer:
        figures = _figures(runs, frames, writer.workdir, notes)
        payload = {
            "title": title,
            "units": {
                "runs.accuracy": "fraction in [0, 1], keyed by K; null = not a number",
                "runs.parameters": "count",
                "published.accuracy": "percent as published, keyed by K",
                "published.params": "millions",
            },
            "frames": frames,
            "runs": [run.to_json() for run in runs],
            "published": [
                {**row, "accuracy": {str(k): v for k, v in row["accuracy"].items()}, "tag": PUBLISHED_TAG}
                for row in PUBLISHED
            ],
            "loss_ratio": {
                run.eval_id: {key: [list(p) for p in pts] for key, pts in ratios.items()}
                for run in runs
                if (ratios := loss_ratios(run.history))
            },
            "figures": figures,
            "notes": notes,
        }
        atomic_write_text(writer.path("report.json"), json.dumps(payload, indent=2) + "\n")
        atomic_write_text(writer.path("report.md"), render_markdown(title, runs, frames, figures, notes))
        metrics = {
            "runs": len(runs),
            "frames": frames,
            "figures": sorted(name for name, file in figures.items() if file),
        }
        return writer.commit(metrics=metrics)
