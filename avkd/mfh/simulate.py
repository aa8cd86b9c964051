"""``avkd mfh simulate``: the MFH paper's synthetic Gaussian study, reproduced without the official code's bugs
(docs/mfh.md).

Three experiments on the data of :mod:`avkd.mfh.gauss`, each over ``runs`` seeds:

- **exp1** (Fig. 2): γ rises with the overlap ``o``, α = β fall. The hypothesis predicts that the KD student's
  gain Δ = KD − no-KD rises with γ, while the teacher's accuracy stays about flat;
- **exp2** (Fig. 3): α rises with ``k`` (x^a gains decisive features of its own), γ falls. The teacher improves a
  lot, yet Δ does not rise with it;
- **table2** (Table 2): for c shared latents, the regular teacher (all of x^a) against a *modality-general*
  teacher that sees only c channels of x^a, chosen at random (without replacement), the ground truth, or by
  Algorithm 1 (:func:`alg1_channels`); each teacher's KD student against the no-KD student.

Per run (seed): one hyperplane, training and test sets, and initial weights, shared by every model of the run
that they fit, so that a difference between two numbers of a run is the models', not the draw's. Teachers,
no-KD and KD students are linear, trained full batch with SGD (lr 0.1, 1000 epochs, CE; KD students CE + KL at
temperature 1), and their test accuracy after the last epoch is reported (docs/mfh.md §3). All models of an
experiment are trained together, vectorised over runs, settings and channel modes (:mod:`avkd.mfh.linear`).

**The official code's bugs, fixed** (docs/mfh.md §5), each with a switch that puts it back for comparison:

1. KL reduction. ``nn.KLDivLoss()`` defaults to ``mean``, which divides by the two classes too, so the official
   KD term is half the KL. avkd uses ``batchmean`` (``kl_reduction="mean"`` reproduces the official weight).
   With the full KL the student follows the teacher more, for better and for worse: over the default 10 runs,
   experiment 1's Δ goes from −3.11 (γ = 0) to +4.15 (γ = 1) instead of −1.68 to +2.72 with ``mean``, about 1.8
   times as steep; the trends are the same (docs/mfh.md §7).
2. The Table 2 script's regular-KD baseline calls ``train_kd(x2, x1, ...)``: its teacher sees x^b and its student
   learns on x^a (and is tested on x^b). avkd's regular KD feeds the teacher x^a and trains the student on x^b
   (``swap_regular_kd=True`` reproduces the swap). The swapped student is tested on inputs it was not trained
   on, so the "regular KD" column, and with it the gain of modality-general KD over it, means nothing: at
   c = 25 and 30 the swap raises "regular KD" by 1.1-1.5 points and the gain falls from +1.80 / +1.25 to
   +0.28 / +0.12.
3. Random channels were drawn with replacement (``np.random.randint``), so the "random" teacher saw fewer than
   c distinct channels. avkd draws without replacement (``random_with_replacement=True`` reproduces it);
   duplicated channels carry no new information, so with replacement the random teacher is 0.6-2.2 points
   weaker.

Standard deviations are sample standard deviations (ddof 1, as elsewhere in avkd); the official scripts print
``np.std`` (ddof 0), smaller by a factor √((n−1)/n), 0.95 for 10 runs.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor

from avkd.core.artifacts import MFH_SIMULATION, Artifact, ArtifactWriter, atomic_write_text
from avkd.core.config import bounded, to_dict, validate
from avkd.mfh import linear
from avkd.mfh.figures import draw_figures
from avkd.mfh.gauss import Layout, exp1_layout, exp2_layout, hyperplane, make_draws, table2_layout
from avkd.mfh.linear import (
    Reduction,
    accuracy,
    draw_permutations,
    init_linear,
    logits,
    min_max,
    top_channels,
)
from avkd.mfh.published import (
    PAPER_FIG2,
    PAPER_FIG3,
    PAPER_TABLE2,
    RERUN_EXP1,
    RERUN_EXP2,
    RERUN_TABLE2_C5,
    SOURCES,
)
from avkd.report.aggregate import stat

__all__ = [
    "EXPERIMENTS",
    "MODES",
    "VECTORISED",
    "Engine",
    "SimulateConfig",
    "public_result",
    "run_exp1",
    "run_exp2",
    "run_simulation",
    "run_table2",
    "simulate_mfh",
    "simulation_markdown",
    "torch_threads",
]

EXPERIMENTS = ("exp1", "exp2", "table2")
#: Table 2's ways of choosing the modality-general teacher's channels of x^a.
MODES = ("random", "gt", "alg1")
#: Seed-sequence tags that keep the experiments' random streams apart.
_TAGS = {"exp1": 1, "exp2": 2, "table2": 3}


def _within(low: int, high: int) -> Callable[[Any], str | None]:
    def check(values: Sequence[int]) -> str | None:
        if not values:
            return "must not be empty"
        if len(set(values)) != len(values):
            return "must not repeat a value"
        bad = [v for v in values if not low <= v <= high]
        return f"has {bad[0]}, outside [{low}, {high}]" if bad else None

    return check


def _experiments(values: Sequence[str]) -> str | None:
    if not values:
        return "must name at least one of " + ", ".join(EXPERIMENTS)
    return "must not repeat an experiment" if len(set(values)) != len(values) else None


def _below_one(value: float) -> str | None:
    return None if 0 <= value < 1 else "must be in [0, 1)"


@dataclass
class SimulateConfig:
    """``avkd mfh simulate``'s settings; the defaults are the official scripts' (docs/mfh.md §2-§4) with its bugs
    fixed (module docstring)."""

    experiments: list[Literal["exp1", "exp2", "table2"]] = field(
        default_factory=lambda: list(EXPERIMENTS), metadata={"check": _experiments}
    )
    runs: int = bounded(10, ge=1)
    seed: int = bounded(0, ge=0)
    n_train: int = bounded(200, ge=2)
    n_test: int = bounded(1000, ge=1)
    epochs: int = bounded(1000, ge=1)
    lr: float = bounded(0.1, gt=0)
    ce_weight: float = bounded(1.0, ge=0)
    kd_weight: float = bounded(1.0, ge=0)
    kl_reduction: Literal["batchmean", "mean"] = "batchmean"
    #: exp1's overlaps o (γ = o / (20 − o)), exp2's k (α = k / (k + 10)), Table 2's c (γ = c / (10 + c)).
    overlaps: list[int] = field(
        default_factory=lambda: [0, 2, 4, 6, 8, 10], metadata={"check": _within(0, 10)}
    )
    ks: list[int] = field(default_factory=lambda: [0, 10, 20, 30, 40], metadata={"check": _within(0, 40)})
    cs: list[int] = field(default_factory=lambda: [5, 10, 15, 20, 25, 30], metadata={"check": _within(1, 40)})
    #: Algorithm 1: M permutations per channel; the joint training's epochs, lr and momentum.
    permutations: int = bounded(100, ge=1)
    joint_epochs: int = bounded(1000, ge=1)
    joint_lr: float = bounded(0.01, gt=0)
    joint_momentum: float = bounded(0.9, check=_below_one)
    #: The official bugs, back on for comparison only (module docstring, items 2 and 3).
    swap_regular_kd: bool = False
    random_with_replacement: bool = False


# ------------------------------------------------------------------------------------------------ engines


class Engine(Protocol):
    """The computations an experiment needs, on problems stacked along the first axis (:mod:`avkd.mfh.linear`);
    :data:`VECTORISED` batches them, :class:`avkd.mfh.naive.NaiveEngine` loops."""

    def fit(
        self,
        x: Tensor,
        y: Tensor,
        w0: Tensor,
        b0: Tensor,
        *,
        epochs: int,
        lr: float,
        teacher_logits: Tensor | None = None,
        ce_weight: float = 1.0,
        kd_weight: float = 1.0,
        reduction: Reduction = "batchmean",
    ) -> tuple[Tensor, Tensor]: ...

    def fit_joint(
        self,
        xa: Tensor,
        xb: Tensor,
        y: Tensor,
        init_a: tuple[Tensor, Tensor],
        init_b: tuple[Tensor, Tensor],
        *,
        epochs: int,
        lr: float,
        momentum: float,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]: ...

    def side_salience(
        self, x: Tensor, w: Tensor, b: Tensor, own_logits: Tensor, fixed_logits: Tensor, perms: Tensor
    ) -> Tensor: ...


class _Vectorised:
    """:mod:`avkd.mfh.linear`'s batched computations."""

    def fit(self, x: Tensor, y: Tensor, w0: Tensor, b0: Tensor, **options: Any) -> tuple[Tensor, Tensor]:
        return linear.fit(x, y, w0, b0, **options)

    def fit_joint(
        self,
        xa: Tensor,
        xb: Tensor,
        y: Tensor,
        init_a: tuple[Tensor, Tensor],
        init_b: tuple[Tensor, Tensor],
        **options: Any,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return linear.fit_joint(xa, xb, y, init_a, init_b, **options)

    def side_salience(
        self, x: Tensor, w: Tensor, b: Tensor, own_logits: Tensor, fixed_logits: Tensor, perms: Tensor
    ) -> Tensor:
        return linear.salience(x, w, fixed_logits, own_logits, perms)


VECTORISED: Engine = _Vectorised()


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with ``threads`` intra-op threads, then restore the caller's count. One thread is the fastest for
    these tiny matmuls: the official script takes 59 s with 1 thread and 9 min with 2 (docs/mfh.md §8)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------- aggregation


def _t(values: Any) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(values))


def _stats(row: dict[str, Any], name: str, values: Sequence[float]) -> None:
    """``row[name]`` = the mean over runs, ``row[name + "_std"]`` = the sample sd (None below two runs)."""
    s = stat(float(v) for v in values)
    # Rounded to 1e-4 points: enough for any difference a reader compares, without float noise in the JSON.
    row[name] = None if s.mean is None else round(s.mean, 4)
    row[f"{name}_std"] = None if s.sd is None else round(s.sd, 4)


def _slope(xs: Sequence[float], ys: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``ys`` (runs, settings) against ``xs`` for each run."""
    x = np.asarray(xs, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0:
        return np.full(ys.shape[0], np.nan)
    x = x - x.mean()
    return ((ys - ys.mean(axis=1, keepdims=True)) @ x) / (x @ x)


# ----------------------------------------------------------------------------------------- experiments


def _sweep(
    name: str,
    layouts: Sequence[Layout],
    keys: Sequence[dict[str, Any]],
    config: SimulateConfig,
    engine: Engine,
) -> dict[str, Any]:
    """Experiments 1 and 2: one regular teacher on x^a, a no-KD and a KD student on x^b, per setting and run."""
    runs, settings = config.runs, len(layouts)
    da, db = layouts[0].dim_a, layouts[0].dim_b
    parts: dict[str, list[Any]] = {
        k: [] for k in ("xa", "xb", "y", "xa_t", "xb_t", "y_t", "wt", "bt", "ws", "bs")
    }
    for run in range(runs):
        rng = np.random.default_rng([config.seed, _TAGS[name], run])
        plane = hyperplane(rng)
        train = make_draws(rng, config.n_train, layouts, plane)
        test = make_draws(rng, config.n_test, layouts, plane)
        wt, bt = init_linear(rng, da)
        ws, bs = init_linear(rng, db)
        parts["xa"].append([d.xa for d in train])
        parts["xa_t"].append([d.xa for d in test])
        # x^b and y do not depend on the setting (gauss module docstring): one no-KD student per run serves all.
        parts["xb"].append(train[0].xb)
        parts["xb_t"].append(test[0].xb)
        parts["y"].append(train[0].y)
        parts["y_t"].append(test[0].y)
        for key, value in (("wt", wt), ("bt", bt), ("ws", ws), ("bs", bs)):
            parts[key].append(value)
    n, n_test = config.n_train, config.n_test
    # Problems in run-major order: index run * settings + setting.
    xa = _t(np.stack(parts["xa"])).reshape(runs * settings, n, da)
    xa_t = _t(np.stack(parts["xa_t"])).reshape(runs * settings, n_test, da)
    xb, xb_t = _t(np.stack(parts["xb"])), _t(np.stack(parts["xb_t"]))
    y, y_t = _t(np.stack(parts["y"])), _t(np.stack(parts["y_t"]))

    def each(t: Tensor) -> Tensor:  # a per-run tensor repeated for every setting of the run
        return t.repeat_interleave(settings, dim=0)

    wt, bt = each(_t(np.stack(parts["wt"]))), each(_t(np.stack(parts["bt"])))
    ws, bs = _t(np.stack(parts["ws"])), _t(np.stack(parts["bs"]))
    train_opts = {"epochs": config.epochs, "lr": config.lr}
    w_t, b_t = engine.fit(xa, each(y), wt, bt, ce_weight=config.ce_weight, **train_opts)
    teacher = accuracy(xa_t, each(y_t), w_t, b_t).reshape(runs, settings)
    w_n, b_n = engine.fit(xb, y, ws, bs, ce_weight=config.ce_weight, **train_opts)
    no_kd = accuracy(xb_t, y_t, w_n, b_n)
    w_k, b_k = engine.fit(
        each(xb),
        each(y),
        each(ws),
        each(bs),
        teacher_logits=logits(xa, w_t, b_t),
        ce_weight=config.ce_weight,
        kd_weight=config.kd_weight,
        reduction=config.kl_reduction,
        **train_opts,
    )
    kd = accuracy(each(xb_t), each(y_t), w_k, b_k).reshape(runs, settings)
    teacher_np, no_kd_np, kd_np = teacher.numpy(), no_kd.numpy(), kd.numpy()
    delta = kd_np - no_kd_np[:, None]
    rows = []
    for s, (layout, key) in enumerate(zip(layouts, keys, strict=True)):
        row: dict[str, Any] = {
            **key,
            "gamma": layout.gamma,
            "alpha": layout.alpha,
            "beta": layout.beta,
            "n": runs,
        }
        _stats(row, "teacher", teacher_np[:, s])
        _stats(row, "no_kd", no_kd_np)
        _stats(row, "kd", kd_np[:, s])
        _stats(row, "delta", delta[:, s])
        row["runs"] = {
            "teacher": teacher_np[:, s].tolist(),
            "no_kd": no_kd_np.tolist(),
            "kd": kd_np[:, s].tolist(),
        }
        rows.append(row)
    axis = "gamma" if name == "exp1" else "alpha"
    xs = [r[axis] for r in rows]
    trends: dict[str, Any] = {}
    for what, values in (("delta", delta), ("teacher", teacher_np)):
        _stats(trends, f"{what}_per_{axis}", _slope(xs, values))
    return {"rows": rows, "trends": trends}


def run_exp1(config: SimulateConfig, engine: Engine = VECTORISED) -> dict[str, Any]:
    """Experiment 1 (Fig. 2): rows per overlap o with γ, α, β and the mean ± sd of teacher, no-KD, KD and Δ."""
    layouts = [exp1_layout(o) for o in config.overlaps]
    return _sweep("exp1", layouts, [{"o": o} for o in config.overlaps], config, engine)


def run_exp2(config: SimulateConfig, engine: Engine = VECTORISED) -> dict[str, Any]:
    """Experiment 2 (Fig. 3): rows per k with γ, α, β and the mean ± sd of teacher, no-KD, KD and Δ."""
    layouts = [exp2_layout(k) for k in config.ks]
    return _sweep("exp2", layouts, [{"k": k} for k in config.ks], config, engine)


def _gather(x: Tensor, channels: Tensor) -> Tensor:
    """x (B, N, d), channels (B, c) -> (B, N, c)."""
    return torch.gather(x, 2, channels.unsqueeze(1).expand(-1, x.shape[1], -1))


def _table2_c(c: int, config: SimulateConfig, engine: Engine) -> dict[str, Any]:
    layout = table2_layout(c)
    runs, da, db = config.runs, layout.dim_a, layout.dim_b
    sets = ("xa", "xb", "y", "fa", "fb", "fy", "ta", "tb", "ty")  # tagging, fresh and test sets
    parts: dict[str, list[Any]] = {k: [] for k in (*sets, "random")}
    inits: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in ("reg", "ja", "jb", "st", "mg")}
    for run in range(runs):
        rng = np.random.default_rng([config.seed, _TAGS["table2"], c, run])
        tag = make_draws(rng, config.n_train, [layout], None)[0]  # trains the regular teacher and Algorithm 1
        test = make_draws(rng, config.n_test, [layout], None)[0]
        fresh = make_draws(rng, config.n_train, [layout], None)[0]  # trains the students and MG teachers
        for key, d in (("reg", da), ("ja", da), ("jb", db), ("st", db), ("mg", c)):
            inits[key].append(init_linear(rng, d))
        if config.random_with_replacement:  # the official quirk (module docstring, item 3)
            chosen = rng.integers(0, da, c)
        else:
            chosen = rng.choice(da, c, replace=False)
        parts["random"].append(np.sort(chosen))
        for keys, d in ((sets[0:3], tag), (sets[3:6], fresh), (sets[6:9], test)):
            for key, values in zip(keys, (d.xa, d.xb, d.y), strict=True):
                parts[key].append(values)
    xa, xb, y, fa, fb, fy, ta, tb, ty = (_t(np.stack(parts[k])) for k in sets)
    w0 = {k: (_t(np.stack([w for w, _ in v])), _t(np.stack([b for _, b in v]))) for k, v in inits.items()}
    train_opts = {"epochs": config.epochs, "lr": config.lr, "ce_weight": config.ce_weight}
    kd_opts = {**train_opts, "kd_weight": config.kd_weight, "reduction": config.kl_reduction}

    # The regular teacher sees all of x^a.
    w_r, b_r = engine.fit(xa, y, *w0["reg"], **train_opts)
    teacher = accuracy(ta, ty, w_r, b_r)

    # Algorithm 1 (docs/mfh.md §4): joint training, then permutation salience of every channel on both sides.
    wa, ba, wb, bb = engine.fit_joint(
        xa,
        xb,
        y,
        w0["ja"],
        w0["jb"],
        epochs=config.joint_epochs,
        lr=config.joint_lr,
        momentum=config.joint_momentum,
    )
    za, zb = logits(xa, wa, ba), logits(xb, wb, bb)
    raw_a, raw_b = [], []
    for run in range(runs):
        seed = (config.seed, _TAGS["table2"], c, run)
        perms_a = draw_permutations((*seed, 0), config.permutations, da, config.n_train)
        perms_b = draw_permutations((*seed, 1), config.permutations, db, config.n_train)
        raw_a.append(engine.side_salience(xa[run], wa[run], ba[run], za[run], zb[run], perms_a))
        raw_b.append(engine.side_salience(xb[run], wb[run], bb[run], zb[run], za[run], perms_b))
    sal_a, sal_b = min_max(torch.stack(raw_a)), min_max(torch.stack(raw_b))
    shared = set(layout.shared)
    alg1 = top_channels(sal_a, c)
    recovery_a = [100.0 * len(shared & set(r.tolist())) / c for r in alg1]
    recovery_b = [100.0 * len(shared & set(r.tolist())) / c for r in top_channels(sal_b, c)]

    # Students on the fresh set: no KD, and KD from the regular teacher.
    w_n, b_n = engine.fit(fb, fy, *w0["st"], **train_opts)
    no_kd = accuracy(tb, ty, w_n, b_n)
    if config.swap_regular_kd:  # the official bug (module docstring, item 2): teacher on x^b, student on x^a
        if da != db:
            raise ValueError("swap_regular_kd needs x^a and x^b of one size")
        w_k, b_k = engine.fit(fa, fy, *w0["st"], teacher_logits=logits(fb, w_r, b_r), **kd_opts)
    else:
        w_k, b_k = engine.fit(fb, fy, *w0["st"], teacher_logits=logits(fa, w_r, b_r), **kd_opts)
    kd = accuracy(tb, ty, w_k, b_k)

    # Modality-general teachers on c channels of x^a, one per mode, and their KD students: all modes at once,
    # problems in mode-major order (index mode * runs + run).
    modes = len(MODES)
    gt = torch.arange(c).expand(runs, c)
    channels = torch.cat([_t(np.stack(parts["random"])), gt, alg1])  # (modes·runs, c)

    def each(t: Tensor) -> Tensor:
        return t.repeat(modes, *([1] * (t.dim() - 1)))

    sel_train, sel_test = _gather(each(fa), channels), _gather(each(ta), channels)
    w_m, b_m = engine.fit(sel_train, each(fy), each(w0["mg"][0]), each(w0["mg"][1]), **train_opts)
    mg_teacher = accuracy(sel_test, each(ty), w_m, b_m).reshape(modes, runs)
    w_g, b_g = engine.fit(
        each(fb),
        each(fy),
        each(w0["st"][0]),
        each(w0["st"][1]),
        teacher_logits=logits(sel_train, w_m, b_m),
        **kd_opts,
    )
    mg_kd = accuracy(each(tb), each(ty), w_g, b_g).reshape(modes, runs)

    teacher_np, no_kd_np, kd_np = teacher.numpy(), no_kd.numpy(), kd.numpy()
    row: dict[str, Any] = {
        "c": c,
        "gamma": layout.gamma,
        "alpha": layout.alpha,
        "beta": layout.beta,
        "n": runs,
    }
    _stats(row, "teacher", teacher_np)
    _stats(row, "no_kd", no_kd_np)
    _stats(row, "kd", kd_np)
    _stats(row, "delta", kd_np - no_kd_np)
    details: dict[str, Any] = {
        "teacher": teacher_np.tolist(),
        "no_kd": no_kd_np.tolist(),
        "kd": kd_np.tolist(),
    }
    for m, mode in enumerate(MODES):
        _stats(row, mode, mg_kd[m].numpy())  # the modality-general KD student's accuracy
        _stats(row, f"{mode}_teacher", mg_teacher[m].numpy())
        _stats(row, f"{mode}_delta", mg_kd[m].numpy() - kd_np)  # its gain over regular KD
        details[mode] = mg_kd[m].tolist()
        details[f"{mode}_teacher"] = mg_teacher[m].tolist()
        details[f"{mode}_channels"] = channels[m * runs : (m + 1) * runs].tolist()
    _stats(row, "alg1_recovery", recovery_a)
    _stats(row, "alg1_recovery_b", recovery_b)
    details["alg1_recovery"] = recovery_a
    details["alg1_recovery_b"] = recovery_b
    row["runs"] = details
    row["salience_a"] = sal_a.mean(dim=0).tolist()  # mean over runs of the normalised salience per channel
    row["salience_b"] = sal_b.mean(dim=0).tolist()
    return row


def run_table2(config: SimulateConfig, engine: Engine = VECTORISED) -> dict[str, Any]:
    """The Table 2 variant: a row per c with the regular teacher, no-KD and regular-KD students, and for each mode
    of :data:`MODES` the modality-general teacher (``<mode>_teacher``), its KD student (``<mode>``) and the gain
    over regular KD (``<mode>_delta``); ``alg1_recovery`` (``_b``): % of the true shared channels among
    Algorithm 1's top c on x^a (x^b)."""
    return {"rows": [_table2_c(c, config, engine) for c in config.cs]}


def run_simulation(
    config: SimulateConfig,
    engine: Engine = VECTORISED,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the configured experiments; ``{"exp1": {"rows", "trends"}, "exp2": ..., "table2": {"rows"},
    "seconds": {...}}`` (accuracies in percent)."""
    validate(config)
    runners = {"exp1": run_exp1, "exp2": run_exp2, "table2": run_table2}
    result: dict[str, Any] = {"seconds": {}}
    for name in config.experiments:
        start = time.perf_counter()
        result[name] = runners[name](config, engine)
        seconds = time.perf_counter() - start
        result["seconds"][name] = seconds
        if log is not None:
            settings = len(result[name]["rows"])
            log(f"mfh {name}: {settings} settings × {config.runs} runs in {seconds:.1f} s")
    return result


# ------------------------------------------------------------------------------------------------ report


def _pm(row: dict[str, Any], key: str, digits: int = 2, signed: bool = False) -> str:
    mean, sd = row.get(key), row.get(f"{key}_std")
    if mean is None:
        return "–"
    text = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    return text if sd is None else f"{text} ± {sd:.{digits}f}"


def _num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _near(
    rows: Sequence[dict[str, Any]], key: str, value: float, tol: float = 0.011
) -> dict[str, Any] | None:
    return next((r for r in rows if abs(r[key] - value) <= tol), None)


def _sweep_markdown(name: str, rows: Sequence[dict[str, Any]], trends: dict[str, Any]) -> list[str]:
    axis, knob, figure = ("gamma", "o", "Fig. 2") if name == "exp1" else ("alpha", "k", "Fig. 3")
    paper, rerun = (PAPER_FIG2, RERUN_EXP1) if name == "exp1" else (PAPER_FIG3, RERUN_EXP2)
    symbol = "γ" if axis == "gamma" else "α"
    lines = [
        f"| {knob} | γ | α | β | teacher | no-KD | KD | Δ = KD − no-KD | Δ paper ({figure}) | Δ official rerun |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        p, r = _near(paper, axis, row[axis]), _near(rerun, axis, row[axis])
        lines.append(
            f"| {row[knob]} | {row['gamma']:.2f} | {row['alpha']:.2f} | {row['beta']:.2f} | {_pm(row, 'teacher')} "
            f"| {_pm(row, 'no_kd')} | {_pm(row, 'kd')} | {_pm(row, 'delta', signed=True)} "
            f"| {_num(p['kd'] - p['no_kd'] if p else None, 1, signed=True)} "
            f"| {_num(r['delta'] if r else None, signed=True)} |"
        )
    lines += [
        "",
        f"Published: {symbol} | teacher, no-KD, KD (paper {figure}) | teacher, no-KD, KD (official rerun)",
        "",
        f"| {symbol} | paper teacher | paper no-KD | paper KD | rerun teacher | rerun no-KD | rerun KD |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in paper:
        r = _near(rerun, axis, p[axis]) or {}
        lines.append(
            f"| {p[axis]:.2f} | {p['teacher']:.1f} | {p['no_kd']:.1f} | {p['kd']:.1f} | {_num(r.get('teacher'))} "
            f"| {_num(r.get('no_kd'))} | {_num(r.get('kd'))} |"
        )
    d_slope, d_sd = trends.get(f"delta_per_{axis}"), trends.get(f"delta_per_{axis}_std")
    t_slope, t_sd = trends.get(f"teacher_per_{axis}"), trends.get(f"teacher_per_{axis}_std")
    if d_slope is not None and t_slope is not None:

        def sd(value: float | None) -> str:
            return "" if value is None else f" ± {value:.2f}"

        lines += [
            "",
            f"Least-squares slope against {symbol}, per run, mean ± sd over runs: Δ {d_slope:+.2f}{sd(d_sd)}, "
            f"teacher {t_slope:+.2f}{sd(t_sd)} points per unit {symbol}.",
        ]
    return lines


def _table2_markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = [
        "| c | γ | regular teacher | no-KD | regular KD | MG teacher random / gt / Alg. 1 "
        "| MG-KD random / gt / Alg. 1 | MG-KD − regular KD random / gt / Alg. 1 | Alg. 1 recovery x^a / x^b (%) |",
        "|---:|---:|---:|---:|---:|---|---|---|---|",
    ]
    for row in rows:
        teachers = " / ".join(_pm(row, f"{m}_teacher") for m in MODES)
        students = " / ".join(_pm(row, m) for m in MODES)
        gains = " / ".join(_pm(row, f"{m}_delta", signed=True) for m in MODES)
        recovery = f"{_pm(row, 'alg1_recovery', 0)} / {_pm(row, 'alg1_recovery_b', 0)}"
        lines.append(
            f"| {row['c']} | {row['gamma']:.2f} | {_pm(row, 'teacher')} | {_pm(row, 'no_kd')} | {_pm(row, 'kd')} "
            f"| {teachers} | {students} | {gains} | {recovery} |"
        )
    lines += [
        "",
        "Published (paper Table 2; the modality-general teacher there uses the ground-truth channels):",
        "",
        "| γ | regular teacher | MG teacher | no-KD | regular KD | MG-KD | MG-KD − regular KD |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in PAPER_TABLE2:
        lines.append(
            f"| {p['gamma']:.2f} | {p['teacher']:.2f} | {p['mg_teacher']:.2f} | {p['no_kd']:.2f} | {p['kd']:.2f} "
            f"| {p['mg_kd']:.2f} | {p['mg_kd'] - p['kd']:+.2f} |"
        )
    r = RERUN_TABLE2_C5
    mg = " / ".join(f"{r['mg_teacher'][m]:.1f}" for m in MODES)
    gain = " / ".join(f"{r['mg_kd_minus_kd'][m]:+.2f}" for m in MODES)
    low, high = r["alg1_recovery_range"]
    lines += [
        "",
        f"Official rerun at c = {r['c']} (γ = {r['gamma']:.2f}, 2 runs, with the swapped regular-KD baseline): "
        f"regular teacher {r['teacher']:.1f}; MG teacher random / gt / Alg. 1 {mg}; MG-KD − regular KD {gain}; "
        f"Alg. 1 recovered {100 * low:.0f}-{100 * high:.0f} % of the shared x^a channels over all c.",
    ]
    return lines


def simulation_markdown(result: dict[str, Any], config: SimulateConfig) -> str:
    """report.md: each experiment's table (mean ± sample sd over runs, %) beside the published numbers."""
    lines = [
        "# MFH synthetic study (avkd mfh simulate)",
        "",
        f"{config.runs} runs (seed {config.seed}), {config.n_train} training / {config.n_test} test samples, "
        f"linear models, full-batch SGD lr {config.lr:g} for {config.epochs} epochs; KD = "
        f"{config.ce_weight:g}·CE + {config.kd_weight:g}·KL at temperature 1, KL reduction "
        f"{config.kl_reduction}. Accuracies in %, mean ± sample sd over runs. See docs/mfh.md.",
    ]
    quirks = [
        name
        for name, on in (
            ("KL reduction 'mean' (official)", config.kl_reduction == "mean"),
            ("swapped regular-KD inputs (official)", config.swap_regular_kd),
            ("random channels with replacement (official)", config.random_with_replacement),
        )
        if on
    ]
    if quirks:
        lines += ["", "**Official bugs put back for comparison:** " + "; ".join(quirks) + "."]
    if "exp1" in result:
        lines += ["", "## Experiment 1: γ rises (Fig. 2)", ""]
        lines += _sweep_markdown("exp1", result["exp1"]["rows"], result["exp1"]["trends"])
    if "exp2" in result:
        lines += ["", "## Experiment 2: α rises (Fig. 3)", ""]
        lines += _sweep_markdown("exp2", result["exp2"]["rows"], result["exp2"]["trends"])
    if "table2" in result:
        lines += ["", "## Table 2: modality-general teachers", ""]
        lines += _table2_markdown(result["table2"]["rows"])
    lines += ["", f"Sources: paper: {SOURCES['paper']}; official rerun: {SOURCES['rerun']}.", ""]
    return "\n".join(lines)


def _public_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without their per-run values and salience vectors (what ``--json`` prints)."""
    return [{k: v for k, v in row.items() if k not in ("runs", "salience_a", "salience_b")} for row in rows]


def simulate_mfh(
    config: SimulateConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    threads: int = 1,
    log: Callable[[str], None] | None = None,
    engine: Engine = VECTORISED,
) -> Artifact:
    """The ``avkd mfh simulate`` stage: run the study and write an ``mfh-simulation`` artifact with
    ``simulation.json`` (config, every row with its per-run values, the published numbers), ``report.md``, the
    figures ``fig2_gamma.png``, ``fig3_alpha.png``, ``table2.png``, ``salience.png`` and ``timings.json`` (a
    log: left out of the id)."""
    validate(config)
    with ArtifactWriter(
        out, MFH_SIMULATION, to_dict(config), overwrite=overwrite, logs=["timings.json"], resumable=False
    ) as writer:
        start = time.perf_counter()
        with torch_threads(threads):
            result = run_simulation(config, engine, log)
        total = time.perf_counter() - start
        notes: list[str] = []
        figures = draw_figures(result, writer.workdir, notes)
        payload = {
            "units": "accuracy in percent; *_std: sample sd over runs (ddof 1); alg1_recovery in percent",
            "config": to_dict(config),
            **{name: result[name] for name in EXPERIMENTS if name in result},
            "figures": figures,
            "notes": notes,
            "published": {
                "sources": SOURCES,
                "paper_fig2": PAPER_FIG2,
                "paper_fig3": PAPER_FIG3,
                "paper_table2": PAPER_TABLE2,
                "rerun_exp1": RERUN_EXP1,
                "rerun_exp2": RERUN_EXP2,
                "rerun_table2_c5": RERUN_TABLE2_C5,
            },
        }
        atomic_write_text(writer.path("simulation.json"), json.dumps(payload, indent=2) + "\n")
        markdown = simulation_markdown(result, config)
        if notes:
            markdown += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
        atomic_write_text(writer.path("report.md"), markdown)
        timings = {"seconds": {**result["seconds"], "total": total}, "threads": threads}
        atomic_write_text(writer.path("timings.json"), json.dumps(timings, indent=2) + "\n")
        metrics = {
            "runs": config.runs,
            "experiments": list(config.experiments),
            "seconds": round(total, 2),
        }
        return writer.commit(metrics=metrics)


def public_result(art: Artifact) -> dict[str, Any]:
    """What ``avkd mfh simulate --json`` prints beside the path, id and metrics: each experiment's rows (means and
    sds; no per-run values) and trends, read back from the artifact."""
    data = json.loads(art.file("simulation.json").read_text())
    out: dict[str, Any] = {}
    for name in EXPERIMENTS:
        section = data.get(name) or {}
        out[name] = _public_rows(section.get("rows", []))
        if "trends" in section:
            out[f"{name}_trends"] = section["trends"]
    out["files"] = sorted(art.files)
    return out
