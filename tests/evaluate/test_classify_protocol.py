"""``emotion_metrics(protocol="reference")`` against a literal re-implementation of MulT's ``eval_mosei_senti``
(docs/reference/mult-mosei.md §2.2; MulT ``src/eval_metrics.py``), and the one place the two protocols differ: the
binary F1's argument order.

The re-implementation below follows the published function step by step, in numpy, with a hand-written weighted
F1 in scikit-learn's argument order ``(y_true, y_pred)`` that is then called with the arguments swapped, as MulT
calls ``f1_score(test_preds > 0, test_truth > 0, average='weighted')``. scikit-learn is not an avkd dependency.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from avkd.evaluate.classify import PROTOCOLS, emotion_metrics, protocol_problem
from avkd.report.tables import emotion_metrics_table


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """scikit-learn's ``f1_score(y_true, y_pred, average='weighted')``: per-label F1 over the labels of either
    side, averaged with the labels' supports in ``y_true`` as weights (0 when no label has support)."""
    labels = np.unique(np.concatenate([y_true, y_pred]))
    total, weights = 0.0, 0
    for label in labels:
        tp = int(np.sum((y_true == label) & (y_pred == label)))
        fp = int(np.sum((y_true != label) & (y_pred == label)))
        fn = int(np.sum((y_true == label) & (y_pred != label)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        support = int(np.sum(y_true == label))
        total += f1 * support
        weights += support
    return total / weights if weights else 0.0


def mult_eval_mosei_senti(results: np.ndarray, truths: np.ndarray, exclude_zero: bool = True) -> dict:
    """MulT's ``eval_mosei_senti``, literally: what it prints, returned instead. ``exclude_zero=True`` is what
    its final test call passes (train.py l.257)."""
    test_preds = np.asarray(results, dtype=np.float64).reshape(-1)
    test_truth = np.asarray(truths, dtype=np.float64).reshape(-1)
    # An index list built element by element: empty when every truth is 0, and then a float array that numpy
    # refuses as an index, so MulT's script stops there.
    non_zeros = np.array([i for i, e in enumerate(test_truth) if e != 0 or not exclude_zero])

    def multiclass_acc(preds: np.ndarray, truth: np.ndarray) -> float:
        return float(np.sum(np.round(preds) == np.round(truth)) / float(len(truth)))

    mae = float(np.mean(np.absolute(test_preds - test_truth)))
    corr = float(np.corrcoef(test_preds, test_truth)[0][1])
    mult_a7 = multiclass_acc(np.clip(test_preds, -3.0, 3.0), np.clip(test_truth, -3.0, 3.0))
    mult_a5 = multiclass_acc(np.clip(test_preds, -2.0, 2.0), np.clip(test_truth, -2.0, 2.0))
    binary_truth = test_truth[non_zeros] > 0
    binary_preds = test_preds[non_zeros] > 0
    f_score = weighted_f1(binary_preds, binary_truth)  # swapped, as in MulT
    accuracy = float(np.mean(binary_truth == binary_preds))
    return {"mae": mae, "corr": corr, "acc7": mult_a7, "acc5": mult_a5, "f1": f_score, "acc2": accuracy}


def mult_fields(m) -> dict:
    return {"mae": m.mae, "corr": m.corr, "acc7": m.acc7, "acc5": m.acc5, "f1": m.f1_binary, "acc2": m.acc2}


def prediction_sets() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Seeded (truth, prediction) sets: MOSEI-like truths in steps of 1/3 with many exact zeros, predictions
    from good to poor, some biased to one sign (where the F1 weights matter), some with exact zeros."""
    sets = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(40, 400))
        truth = np.clip(np.round(rng.normal(0.4, 1.3, size=n) * 3) / 3, -3, 3)
        truth[rng.random(n) < 0.15] = 0.0
        noise = rng.normal(0.0, [0.3, 0.8, 1.5, 2.5][seed % 4], size=n)
        bias = [0.0, 2.0, -1.8, 1.0][seed // 2 % 4]
        preds = 0.7 * truth + noise + bias
        if seed % 3 == 0:
            preds[rng.random(n) < 0.1] = 0.0  # exact zeros: not > 0, so negative
        if seed == 7:
            preds *= 2.5  # beyond ±3 (clipped for acc7/acc5, not for MAE)
        sets.append((f"seed{seed}", truth, preds))
    return sets


@pytest.mark.parametrize(
    ("name", "truth", "preds"), prediction_sets(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_reference_matches_eval_mosei_senti(name: str, truth: np.ndarray, preds: np.ndarray) -> None:
    expected = mult_eval_mosei_senti(preds, truth)
    got = mult_fields(emotion_metrics(truth, scores=preds, protocol="reference"))
    assert got == pytest.approx(expected, abs=1e-6, rel=0)


def test_the_swap_matters_and_only_the_binary_f1_differs() -> None:
    """On the biased sets the swap moves the F1 by more than 0.01; the default is then the unswapped F1."""
    moved = 0
    for _, truth, preds in prediction_sets():
        ours = emotion_metrics(truth, scores=preds)
        ref = emotion_metrics(truth, scores=preds, protocol="reference")
        nz = truth != 0
        unswapped = weighted_f1(truth[nz] > 0, preds[nz] > 0)
        assert ours.f1_binary == pytest.approx(unswapped, abs=1e-12)
        if abs(unswapped - mult_eval_mosei_senti(preds, truth)["f1"]) > 0.01:
            moved += 1
            assert abs(ours.f1_binary - ref.f1_binary) > 0.01
        a, b = ours.to_json(), ref.to_json()
        assert a.pop("protocol") == "avkd" and b.pop("protocol") == "reference"
        a.pop("f1_binary"), b.pop("f1_binary")
        assert a == b  # acc7, acc5, acc2, MAE, corr, the 7-class F1s and the non-negative variant agree
    assert moved >= 4


def test_swapped_f1_by_hand() -> None:
    # Truth 0.0 (last) is left out. Non-zero truths > 0: [T, T, T, T, F]; predictions > 0: [T, T, F, F, F]
    # (0.0 is not > 0). Class T: TP 2, FP 0, FN 2 -> F1 2/3; class F: TP 1, FP 2, FN 0 -> F1 1/2.
    # avkd (true support T 4, F 1): (4·2/3 + 1·1/2) / 5 = 19/30. MulT (predicted support T 2, F 3): 17/30.
    y = [1.0, 2.0, 0.5, 3.0, -1.0, 0.0]
    scores = [0.7, 1.2, 0.0, -0.4, -2.0, 2.0]
    ours = emotion_metrics(y, scores=scores)
    ref = emotion_metrics(y, scores=scores, protocol="reference")
    assert ours.f1_binary == pytest.approx(19 / 30)
    assert ref.f1_binary == pytest.approx(17 / 30)
    assert ours.acc2 == ref.acc2 == pytest.approx(3 / 5) and ref.n_nonzero == 5
    assert mult_eval_mosei_senti(np.array(scores), np.array(y))["f1"] == pytest.approx(17 / 30)
    assert weighted_f1(np.array([1, 1, 1, 1, 0]), np.array([1, 1, 0, 0, 0])) == pytest.approx(19 / 30)
    # acc5 clips to [-2, 2] before rounding: 3.0 vs -0.4 -> 2 vs -0; 0.0 vs 2.0 -> 0 vs 2; 0.5 vs 0.0 -> 0 vs 0
    # classes (truth, pred): (1, 1), (2, 1), (0, 0), (2, 0), (-1, -2), (0, 2) -> 2/6 match
    assert ref.acc5 == pytest.approx(2 / 6) and ours.acc5 == ref.acc5


def test_all_zero_truths() -> None:
    """MulT's script cannot index with an empty mask; both protocols give NaN binary metrics instead."""
    y = np.zeros(6)
    preds = np.array([0.5, -0.2, 0.0, 1.5, -2.6, 0.1])
    with pytest.raises(IndexError), np.errstate(invalid="ignore", divide="ignore"):  # corr of a constant: NaN
        mult_eval_mosei_senti(preds, y)
    ref = emotion_metrics(y, scores=preds, protocol="reference")
    assert math.isnan(ref.f1_binary) and math.isnan(ref.acc2) and ref.n_nonzero == 0
    # acc7 round(clip(p)): [0, -0, 0, 2, -3, 0] vs 0 -> 4/6; acc5 round(clip(p, -2, 2)): [0, -0, 0, 2, -2, 0] -> 4/6
    assert ref.acc7 == pytest.approx(4 / 6) and ref.acc5 == pytest.approx(4 / 6)
    assert ref.mae == pytest.approx(np.mean(np.abs(preds)))


def test_predictions_exactly_zero_count_as_negative() -> None:
    y = np.array([1.0, 2.0, -1.0, -0.5])
    preds = np.zeros(4)
    ref = emotion_metrics(y, scores=preds, protocol="reference")
    # preds > 0 all F; truth > 0 [T, T, F, F]. Class F: TP 2, FP 2 -> 2/3; class T: TP 0 -> 0.
    # MulT weights by predicted support (F 4, T 0): 2/3; avkd by true support (F 2, T 2): 1/3.
    assert ref.acc2 == 0.5 and ref.f1_binary == pytest.approx(2 / 3)
    assert emotion_metrics(y, scores=preds).f1_binary == pytest.approx(1 / 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = mult_eval_mosei_senti(preds, y)
    assert math.isnan(expected["corr"]) and math.isnan(ref.corr)  # a constant prediction has no correlation
    expected.pop("corr")
    got = mult_fields(ref)
    got.pop("corr")
    assert got == pytest.approx(expected, abs=1e-12)


def test_logits_keep_their_predictions_under_both_protocols() -> None:
    """A 7-way classifier: the classes are the argmax and the continuous prediction the expected value under
    both protocols; the reference protocol is MulT's arithmetic on each."""
    rng = np.random.default_rng(11)
    y = np.clip(np.round(rng.normal(0.5, 1.4, size=120) * 3) / 3, -3, 3)
    logits = rng.normal(size=(120, 7)) + 2.0 * np.eye(7)[np.clip(np.round(y).astype(int) + 3, 0, 6)]
    logits[:, 5] += 1.0  # biased to positive classes, so the swap shows
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    expected_value = prob @ (np.arange(7) - 3.0)
    as_class = np.argmax(logits, axis=1) - 3.0
    ref = emotion_metrics(y, logits=logits, protocol="reference")
    on_classes = mult_eval_mosei_senti(as_class, y)
    on_values = mult_eval_mosei_senti(expected_value, y)
    assert (ref.acc7, ref.acc5) == pytest.approx((on_classes["acc7"], on_classes["acc5"]), abs=1e-12)
    for key in ("f1", "acc2", "mae", "corr"):
        assert mult_fields(ref)[key] == pytest.approx(on_values[key], abs=1e-9)
    ours = emotion_metrics(y, logits=logits)
    assert ours.acc7 == ref.acc7 and ours.mae == ref.mae
    assert abs(ours.f1_binary - ref.f1_binary) > 0.01


def test_protocol_names() -> None:
    assert PROTOCOLS == ("avkd", "reference")
    assert emotion_metrics([1.0, -1.0], scores=[0.5, 0.5]).protocol == "avkd"
    with pytest.raises(ValueError, match=r"protocol 'mult': expected one of avkd, reference"):
        emotion_metrics([1.0, -1.0], scores=[0.5, 0.5], protocol="mult")
    assert protocol_problem("reference") is None
    assert protocol_problem("official") == "is not a protocol: expected avkd or reference"


def test_metrics_table_shows_acc5_and_the_protocol() -> None:
    m = emotion_metrics([1.0, 2.0, -1.0], scores=[1.0, 3.0, 0.0], protocol="reference")
    header, _, row = emotion_metrics_table(m, "t").splitlines()
    names, values = ([c.strip() for c in line.strip("|").split("|")] for line in (header, row))
    cells = dict(zip(names, values, strict=True))
    # acc7: 3 vs 2 and 0 vs -1 differ -> 1/3; acc5 clips 3 to 2, so only 0 vs -1 differs -> 2/3
    assert cells["Acc7 %"] == "33.33" and cells["Acc5 %"] == "66.67"
    assert cells["protocol"] == "reference"
