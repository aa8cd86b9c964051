"""The report's data: sync evaluation artifacts read into :class:`Run` rows, with their model's config and
training log, the paper's Fig. 3 labels, and the Fig. 4 loss ratios. Runs that share a label (one recipe, several
seeds) become one :class:`RunMean` row (:func:`table_rows`, :mod:`avkd.report.aggregate`).

Label derivation for Fig. 3 (:func:`variant_label`), from the model manifest's config (top-level ``method``,
``weighting``, ``layers``; a ``distill`` section is also looked at):

- ``method`` ``bce``/``kd``/``rkd``/``fitnets``/``minilm`` → ``BCE``/``KD``/``RKD``/``FitNets``/``MiniLM*``;
- ``nmtd``/``mtd`` with ``layers`` ``all`` (or unset) → the weighting: ``uniform`` → ``Uniform``, ``manual`` →
  ``Manual``, ``aw13`` → ``AW-13D``, ``aw25`` → ``AW-25D``, ``uw13`` → ``UW-13D``, ``uw25`` → ``UW-25D`` (unset:
  the method's default, ``mtd`` → ``UW-25D``, ``nmtd`` → ``Uniform``);
- ``nmtd``/``mtd`` with one layer → the layer: ``fusion4``/``fus4``/``mem4`` → ``F4``, ``av1`` → ``AV1``,
  ``va3`` → ``VA3`` (one term, so the weighting does not matter);
- several layers (the grammar of ``avkd.losses.layers.parse_layers``, parts separated by ``,`` or ``+``) → the
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

from avkd.core.artifacts import EVALUATION, EXPORT, LRS2_FEATURES, MODEL, Artifact, load_artifact
from avkd.core.errors import ArtifactError, UsageError
from avkd.losses.layers import BLOCKS, parse_layers
from avkd.report.aggregate import Stat, group_rows, stat

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
WEIGHTING_LABELS = {
    "uniform": "Uniform",
    "manual": "Manual",
    "aw13": "AW-13D",
    "aw25": "AW-25D",
    "uw13": "UW-13D",
    "uw25": "UW-25D",
}
#: Figure labels of the blocks (the paper writes F for the fusion block, avkd's ``mem``).
_BLOCKS = {"mem": "F", "av": "AV", "va": "VA"}
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
    #: 10^9 multiply-adds of one (video, audio) window through encode_video + encode_audio + fuse, and the
    #: evaluation's scored windows per second (machine-dependent); None for evaluations that did not record them
    #: (:mod:`avkd.evaluate.cost`).
    gmacs_per_window: float | None = None
    windows_per_second: float | None = None

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


@dataclass
class RunMean(Run):
    """One table row for several runs that share a label and the :func:`run_facts` (seeds of one recipe):
    ``accuracy`` holds the means per K, ``stats`` the mean, sample sd and count per K, ``members`` the runs.

    The other fields are the first member's (the facts they share, its config for the figures' variant label);
    ``history`` stays empty (each member's own log is plotted).
    """

    stats: dict[int, Stat] = field(default_factory=dict)
    members: list[Run] = field(default_factory=list)

    def summary_json(self) -> dict[str, Any]:
        """The aggregate as the report's JSON holds it: the members' ids and seeds, mean, sd and n per K."""
        return {
            "label": self.label,
            "n": len(self.members),
            "evaluations": [r.eval_id for r in self.members],
            "models": [r.model_id for r in self.members],
            "seeds": [seed_of(r) for r in self.members],
            "parameters": self.parameters,
            "split": self.split,
            "protocol": self.protocol,
            "data_id": self.data_id,
            "accuracy": {str(k): s.to_json() for k, s in sorted(self.stats.items())},
        }


def seed_of(run: Run) -> int | None:
    """The training seed the run's model config records (``loop.seed``; None when unknown)."""
    loop = (run.config or {}).get("loop")
    seed = loop.get("seed") if isinstance(loop, dict) else None
    return seed if isinstance(seed, int) else None


def run_facts(run: Run) -> dict[str, Any]:
    """What runs sharing a label must agree on to be averaged (:mod:`avkd.report.aggregate`): the features,
    split, protocol and clip limit (the numbers' test set and counting) and the parameter count (the model)."""
    return {
        "features": run.data_id,
        "split": run.split,
        "protocol": run.protocol,
        "limit": run.limit,
        "parameters": run.parameters,
    }


def mean_run(runs: Sequence[Run]) -> RunMean:
    """The :class:`RunMean` of ``runs`` (which share a label and :func:`run_facts`)."""
    first = runs[0]
    frames = sorted({k for r in runs for k in r.accuracy})
    stats = {k: stat(r.accuracy.get(k) for r in runs) for k in frames}
    clips = {r.clips for r in runs}
    speeds = [r.windows_per_second for r in runs if r.windows_per_second is not None]
    return RunMean(
        label=first.label,
        eval_id=first.eval_id,
        model_id=first.model_id,
        parameters=first.parameters,
        accuracy={k: s.mean for k, s in stats.items()},
        config=first.config,
        eval_path=first.eval_path,
        model_path=first.model_path,
        model_status="ok" if all(r.model_status == "ok" for r in runs) else "see the members",
        clips=first.clips if len(clips) == 1 else None,
        split=first.split,
        limit=first.limit,
        protocol=first.protocol,
        data_id=first.data_id,
        variant=first.variant,
        gmacs_per_window=first.gmacs_per_window,  # the same model, so the same count
        windows_per_second=sum(speeds) / len(speeds) if speeds else None,
        stats=stats,
        members=list(runs),
    )


def table_rows(runs: Sequence[Run]) -> tuple[list[Run], list[str]]:
    """The report table's rows: a label seen once is its run, several runs sharing a label and the facts are
    one :class:`RunMean`, in first-seen order; plus the notes of labels kept apart (:func:`group_rows`)."""
    groups, notes = group_rows(runs, lambda r: r.label, run_facts)
    return [group[0] if len(group) == 1 else mean_run(group) for group in groups], notes


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
    return WEIGHTING_LABELS.get(key, str(value))


def _layer_labels(value: Any) -> list[str]:
    """``"fusion3+av4+va1"`` → ``["F3", "AV4", "VA1"]``; ``"all"``/None → ``[]``; unparsable parts upper-cased.

    Each part (separated by ``+``, ``,`` or spaces) is read with :func:`avkd.losses.layers.parse_layers`, the
    grammar ``--layers`` uses, and written as its block and layer range (``av`` → ``AV1-4``).
    """
    if value is None:
        return []
    parts = value if isinstance(value, list | tuple) else re.split(r"[+,\s]+", str(value))
    labels = []
    for part in parts:
        text = str(part).strip()
        if not text or text.lower() == "all":
            continue
        try:
            pairs = parse_layers(text)
        except UsageError:
            labels.append(text.upper())
            continue
        for block in BLOCKS:
            layers = [layer for b, layer in pairs if b == block]
            if layers:
                span = f"{layers[0]}" if len(layers) == 1 else f"{layers[0]}-{layers[-1]}"
                labels.append(_BLOCKS[block] + span)
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
    return [run for _, run in load_evaluations(evaluations)]


def load_evaluations(evaluations: Iterable[str | Path]) -> list[tuple[Artifact, Run]]:
    paths = [p.path if isinstance(p, Artifact) else Path(p) for p in evaluations]
    if not paths:
        raise UsageError("avkd report: give at least one evaluation artifact")
    return [_load_one(path) for path in paths]


def _load_one(path: Path) -> tuple[Artifact, Run]:
    art = load_artifact(path, kind=EVALUATION)
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
    # The inputs name the model artifact with its path; results name a bare weights file (no input) by path.
    model_ref = (
        next((i for i in inputs if i.get("kind") == MODEL), None)
        or _through_export(next((i for i in inputs if i.get("kind") == EXPORT), None))
        or summary.get("model")
    )
    data_ref = next((i for i in inputs if i.get("kind") == LRS2_FEATURES), None)
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
        gmacs_per_window=_finite(summary.get("gmacs_per_window", art.metrics.get("gmacs_per_window"))),
        windows_per_second=_finite(art.metrics.get("windows_per_second")),
    )
    _attach_model(run, model_ref)
    run.variant = variant_label(run.config, run.label)
    return art, run


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _through_export(ref: dict[str, Any] | None) -> dict[str, Any] | None:
    """The model artifact an evaluated ONNX export was made from (its first ``model`` input), so the row gets that
    model's config and logs; None when there is no export input or it is gone."""
    if ref is None:
        return None
    try:
        export = load_artifact(ref["path"], kind=EXPORT, verify=False)
    except (ArtifactError, KeyError):
        return None
    return next((i for i in export.manifest.get("inputs", []) if i.get("kind") == MODEL), None)


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
        model = load_artifact(ref["path"], kind=MODEL)
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
