"""CMU-MOSEI sentiment metrics: MulT's ``eval_mosei_senti`` plus the seed paper's 7-class accuracy / F1
(docs/reference/mult-mosei.md §2.2, §5.4, §5.5.1-2). Pure numpy; no scikit-learn dependency.

Definitions (what is computed, and which choice was made where the reference leaves one)
----------------------------------------------------------------------------------------
1. **7 classes** = :func:`label7` (re-exported from :mod:`avkd.data.mosei.ingest`): ``round(clip(y, -3, 3)) + 3`` with
   numpy's half-to-even rounding, exactly MulT's ``multiclass_acc`` (``-3.4 -> 0``, ``-0.5 -> 3``, ``0.5 -> 3``,
   ``2.5 -> 5``, ``3.7 -> 6``). The SDK's ``cmumosei_round`` bins (§2.2) are not used.
2. **Predicted class**: from ``scores`` (a regressor, MulT's default) ``label7(scores)``; from ``logits`` (N, 7)
   (a 7-way classifier, the seed paper's setting, §5.5.3) the argmax (first index on ties).
3. **Continuous prediction** (for MAE, Pearson corr and the binary metrics): ``scores`` as given (unclipped, as
   MulT's MAE); for ``logits`` the **expected value** ``sum_k softmax(logits)_k * (k - 3)`` — it uses the whole
   distribution, so MAE/corr stay informative when the argmax is mostly one class.
4. **acc7 / f1_weighted / f1_macro** over the 7-class labels. F1 follows scikit-learn's ``f1_score`` with
   ``labels=None, zero_division=0``: per-class ``F1 = 2TP / (2TP + FP + FN)`` over the classes present in the true
   OR the predicted labels; ``weighted`` averages them weighted by true support, ``macro`` unweighted (so classes
   absent from both sides do not count). The seed paper's "F1" is taken to be ``f1_weighted`` (§5.5.2).
5. **Binary, MulT's reported convention** (``exclude_zero=True``, train.py l.257): only samples with true score
   ``!= 0``; truth ``y > 0``, prediction ``pred > 0`` (a prediction of exactly 0 counts as negative).
   ``acc2`` = accuracy, ``f1_binary`` = a support-weighted F1 over the two classes (MulT's "F1" is binary). Which
   support weights it depends on the protocol (item 9). NaN if every true score is 0.
   **Second variant** (the SDK's pre-2019 "negative vs non-negative", later papers' "Has0"): all samples, truth
   ``y >= 0``, prediction ``pred >= 0`` -> ``acc2_nonneg``, ``f1_binary_nonneg`` (weighted by true support under
   both protocols: MulT does not compute it).
6. **MAE** = ``mean |pred - y|`` (unclipped); **corr** = Pearson (``np.corrcoef``), NaN when either side is
   constant or ``n < 2``.
7. **Majority baseline** ``majority_acc7``: accuracy on the test labels of always predicting the most frequent
   7-class label of ``train_labels`` when given (``majority_from = "train"``), else of the test labels themselves
   (``"test"``, an optimistic upper bound on a constant predictor). Ties go to the lower class index.
8. **acc5** is MulT's ``mult_a5`` (§2.2): ``round(clip(pred, -2, 2)) == round(clip(y, -2, 2))``. It is computed
   as ``clip(class - 3, -2, 2)`` on the 7-class labels of item 1-2, which is the same number: rounding is monotone
   and keeps the integer bounds, so it commutes with the clipping. It is the same under both protocols.
9. **Protocol** (``protocol=``, recorded in the result). ``"avkd"`` (the default) computes the binary F1 in
   scikit-learn's argument order, ``f1(truth, pred)``, so its weights are the *true* classes' supports.
   ``"reference"`` is MulT's ``eval_mosei_senti`` (§2.2, ``src/eval_metrics.py``): it calls
   ``f1_score(pred > 0, truth > 0, average='weighted')`` with the arguments swapped, so its weights are the
   *predicted* classes' supports. The per-class F1 ``2TP / (2TP + FP + FN)`` is symmetric under the swap; only
   the weights change. Everything else MulT computes was checked against its code and is already the same under
   both: acc7 (``np.round`` of ``clip(-3, 3)`` on both sides, half to even), acc5, the non-zero mask (truth
   ``!= 0``, its final test call's ``exclude_zero=True``), acc2 (``accuracy_score`` is symmetric), unclipped MAE
   and ``np.corrcoef``. For a regressor (``scores=``) ``"reference"`` therefore equals ``eval_mosei_senti`` on
   ``(scores, y)`` exactly. For a 7-way classifier (``logits=``), which MulT has no code for, the protocol
   changes the convention, not the predictions: the classes are still the argmax (item 2) and the binary
   metrics, MAE and corr still use the expected value (item 3). Where every true score is 0, MulT's script
   fails (it indexes with an empty float array); both protocols give NaN there.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from avkd.data.mosei.labels import label7

__all__ = [
    "NUM_CLASSES",
    "PROTOCOLS",
    "EmotionMetrics",
    "binary_metrics",
    "emotion_metrics",
    "f1_scores",
    "label7",
    "protocol_problem",
]

NUM_CLASSES = 7
#: The metric conventions (module docstring, item 9): avkd's own and MulT's ``eval_mosei_senti``.
PROTOCOLS = ("avkd", "reference")


def protocol_problem(name: Any) -> str | None:
    """What is wrong with a protocol name in a config (None: nothing), checked before any work."""
    return None if name in PROTOCOLS else f"is not a protocol: expected {' or '.join(PROTOCOLS)}"


@dataclass
class EmotionMetrics:
    """MOSEI sentiment metrics (module docstring). Fractions in [0, 1]; NaN where undefined."""

    acc7: float
    #: MulT's mult_a5 (module docstring, item 8).
    acc5: float
    f1_weighted: float
    f1_macro: float
    acc2: float
    f1_binary: float
    acc2_nonneg: float
    f1_binary_nonneg: float
    mae: float
    corr: float
    histogram: list[int]
    predicted_histogram: list[int]
    majority_acc7: float
    majority_class: int
    majority_from: str
    n: int
    n_nonzero: int
    prediction_from: str
    #: "avkd" or "reference" (module docstring, item 9).
    protocol: str

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict; NaN floats become ``None``."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            out[key] = value
        return out


def f1_scores(y_true: Any, y_pred: Any) -> tuple[float, float]:
    """``(weighted, macro)`` F1 of integer labels, as scikit-learn's ``f1_score(labels=None, zero_division=0)``.

    Classes = those present in ``y_true`` or ``y_pred``; per class ``2TP / (2TP + FP + FN)``.
    """
    t = np.asarray(y_true).reshape(-1)
    p = np.asarray(y_pred).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"f1_scores: y_true has {t.size} labels but y_pred has {p.size}")
    if t.size == 0:
        return math.nan, math.nan
    classes = np.union1d(t, p)
    f1 = np.empty(classes.size)
    support = np.empty(classes.size)
    for i, c in enumerate(classes):
        tp = np.sum((t == c) & (p == c))
        fp = np.sum((t != c) & (p == c))
        fn = np.sum((t == c) & (p != c))
        denom = 2 * tp + fp + fn  # > 0: c occurs on at least one side
        f1[i] = 2 * tp / denom if denom else 0.0
        support[i] = np.sum(t == c)
    weighted = float(np.sum(f1 * support) / support.sum())
    macro = float(f1.mean())
    return weighted, macro


def binary_metrics(truth: np.ndarray, pred: np.ndarray, swapped: bool = False) -> tuple[float, float]:
    """``(accuracy, weighted F1)`` of two boolean arrays; NaN for empty input.

    ``swapped`` weights the F1 by the predicted classes' supports, as MulT's ``f1_score(pred, truth)`` does
    (module docstring, item 9); the accuracy does not depend on the order.
    """
    if truth.size == 0:
        return math.nan, math.nan
    acc = float(np.mean(truth == pred))
    first, second = (pred, truth) if swapped else (truth, pred)
    weighted, _ = f1_scores(first.astype(np.int64), second.astype(np.int64))
    return acc, weighted


def _acc5(true_class: np.ndarray, pred_class: np.ndarray) -> float:
    """MulT's mult_a5 from 7-class labels: both clipped to [-2, 2] (module docstring, item 8)."""
    return float(np.mean(np.clip(true_class - 3, -2, 2) == np.clip(pred_class - 3, -2, 2)))


def _as_vector(name: str, values: Any) -> np.ndarray:
    """1-D float64 copy of ``values``: shape (N,) or (N, 1, ..., 1) like MulT's (N, 1, 1) labels."""
    if hasattr(values, "detach"):  # torch tensor
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        raise ValueError(f"{name} must be an array of shape (N,), got a scalar")
    if arr.ndim > 1 and any(d != 1 for d in arr.shape[1:]):
        raise ValueError(f"{name} must have shape (N,) or (N, 1, ...), got {tuple(arr.shape)}")
    arr = arr.reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains {int(np.sum(~np.isfinite(arr)))} non-finite value(s)")
    return arr


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def emotion_metrics(
    y_true_continuous: Any,
    *,
    logits: Any = None,
    scores: Any = None,
    train_labels: Any = None,
    protocol: str = "avkd",
) -> EmotionMetrics:
    """All metrics of the module docstring for one test set.

    ``y_true_continuous``: (N,) (or (N, 1, 1)) sentiment scores. Exactly one of ``logits`` (N, 7) from a 7-way
    classifier or ``scores`` (N,) from a regressor. ``train_labels``: continuous train scores for the majority
    baseline (optional). ``protocol``: ``"avkd"`` or ``"reference"`` (MulT's ``eval_mosei_senti``, module
    docstring item 9). Raises ``ValueError`` on an unknown protocol, bad shapes, non-finite values or an empty set.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    y = _as_vector("y_true_continuous", y_true_continuous)
    n = y.size
    if n == 0:
        raise ValueError("y_true_continuous is empty: no samples to evaluate")
    if (logits is None) == (scores is None):
        raise ValueError("pass exactly one of logits= (N, 7) or scores= (N,)")

    if logits is not None:
        if hasattr(logits, "detach"):
            logits = logits.detach().cpu().numpy()
        lg = np.asarray(logits, dtype=np.float64)
        if lg.ndim != 2 or lg.shape[1] != NUM_CLASSES:
            raise ValueError(f"logits must have shape (N, {NUM_CLASSES}), got {tuple(lg.shape)}")
        if lg.shape[0] != n:
            raise ValueError(f"logits has {lg.shape[0]} rows but y_true_continuous has {n} values")
        if not np.all(np.isfinite(lg)):
            raise ValueError(f"logits contains {int(np.sum(~np.isfinite(lg)))} non-finite value(s)")
        pred_class = np.argmax(lg, axis=1).astype(np.int64)
        z = lg - lg.max(axis=1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=1, keepdims=True)
        pred = prob @ (np.arange(NUM_CLASSES, dtype=np.float64) - 3.0)
        prediction_from = "logits"
    else:
        pred = _as_vector("scores", scores)
        if pred.size != n:
            raise ValueError(f"scores has {pred.size} values but y_true_continuous has {n}")
        pred_class = np.asarray(label7(pred), dtype=np.int64)
        prediction_from = "scores"

    true_class = np.asarray(label7(y), dtype=np.int64)
    acc7 = float(np.mean(true_class == pred_class))
    f1_weighted, f1_macro = f1_scores(true_class, pred_class)

    nonzero = y != 0
    acc2, f1_binary = binary_metrics(y[nonzero] > 0, pred[nonzero] > 0, swapped=protocol == "reference")
    acc2_nonneg, f1_binary_nonneg = binary_metrics(y >= 0, pred >= 0)

    histogram = np.bincount(true_class, minlength=NUM_CLASSES)
    if train_labels is not None:
        train = _as_vector("train_labels", train_labels)
        if train.size == 0:
            raise ValueError("train_labels is empty: cannot pick a majority class")
        majority_class = int(np.argmax(np.bincount(np.asarray(label7(train)), minlength=NUM_CLASSES)))
        majority_from = "train"
    else:
        majority_class = int(np.argmax(histogram))
        majority_from = "test"

    return EmotionMetrics(
        acc7=acc7,
        acc5=_acc5(true_class, pred_class),
        f1_weighted=f1_weighted,
        f1_macro=f1_macro,
        acc2=acc2,
        f1_binary=f1_binary,
        acc2_nonneg=acc2_nonneg,
        f1_binary_nonneg=f1_binary_nonneg,
        mae=float(np.mean(np.abs(pred - y))),
        corr=_pearson(pred, y),
        histogram=[int(c) for c in histogram],
        predicted_histogram=[int(c) for c in np.bincount(pred_class, minlength=NUM_CLASSES)],
        majority_acc7=float(np.mean(true_class == majority_class)),
        majority_class=majority_class,
        majority_from=majority_from,
        n=int(n),
        n_nonzero=int(nonzero.sum()),
        prediction_from=prediction_from,
        protocol=protocol,
    )
