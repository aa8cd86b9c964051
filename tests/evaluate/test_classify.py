"""Tests of the MOSEI sentiment metrics (docs/reference/mult-mosei.md §2.2, §5.5.1-2): every metric against hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from avkd.evaluate.classify import EmotionMetrics, emotion_metrics, f1_scores, label7
from avkd.report.tables import emotion_metrics_table


def test_acc7_rounding_edges_and_histograms() -> None:
    y = [-3.4, -0.5, 0.5, 2.5, 3.7]
    # clip -> [-3, -0.5, 0.5, 2.5, 3]; half-to-even round -> [-3, -0, 0, 2, 3]; +3 -> [0, 3, 3, 5, 6]
    assert label7(np.array(y)).tolist() == [0, 3, 3, 5, 6]
    scores = [-3.0, -0.5, 1.5, 2.6, 2.5]
    # -> [-3, -0, 2, 3, 2] -> classes [0, 3, 5, 6, 5]; matches at positions 0, 1 -> 2/5
    m = emotion_metrics(y, scores=scores)
    assert m.acc7 == pytest.approx(0.4)
    assert m.histogram == [1, 0, 0, 2, 0, 1, 1]
    assert m.predicted_histogram == [1, 0, 0, 1, 0, 2, 1]
    assert m.n == 5 and m.prediction_from == "scores"
    # perfect: -2.6 -> 0, 0.4 -> 3, -0.4 -> 3, 2.4 -> 5, 2.6 -> 6
    assert emotion_metrics(y, scores=[-2.6, 0.4, -0.4, 2.4, 2.6]).acc7 == 1.0


def test_weighted_vs_macro_f1_unbalanced_three_classes() -> None:
    t = [0] * 6 + [1] * 3 + [2]
    p = [0, 0, 0, 0, 0, 1, 1, 1, 0, 0]
    # class 0: TP 5, FP 2 (idx 8, 9), FN 1 (idx 5) -> 10/13;  class 1: TP 2, FP 1, FN 1 -> 4/6
    # class 2: TP 0, FN 1 -> 0.  weighted = (6*10/13 + 3*2/3 + 1*0)/10;  macro = (10/13 + 2/3 + 0)/3
    weighted, macro = f1_scores(t, p)
    assert weighted == pytest.approx((6 * 10 / 13 + 3 * 2 / 3) / 10)
    assert macro == pytest.approx((10 / 13 + 2 / 3) / 3)
    # same toy through emotion_metrics: classes 0, 1, 2 are scores -3, -2, -1
    m = emotion_metrics(np.array(t) - 3.0, scores=np.array(p) - 3.0)
    assert (m.f1_weighted, m.f1_macro) == pytest.approx((weighted, macro))
    assert m.acc7 == pytest.approx(7 / 10)
    # a class only predicted counts in macro (sklearn's labels=None): class 0 -> 2/3, class 1 -> 0
    assert f1_scores([0, 0], [0, 1]) == pytest.approx((2 / 3, 1 / 3))


def test_f1_matches_sklearn_on_random_labels() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(20):
        t = rng.integers(0, 7, size=50)
        p = np.minimum(rng.integers(0, 7, size=50), rng.integers(2, 7))
        ours = f1_scores(t, p)
        ref = (
            metrics.f1_score(t, p, average="weighted", zero_division=0),
            metrics.f1_score(t, p, average="macro", zero_division=0),
        )
        assert ours == pytest.approx(ref)
    # The default protocol's binary F1: truth first (MulT swaps them: tests/evaluate/test_classify_protocol.py)
    y = rng.normal(size=200).round(1)
    s = rng.normal(size=200)
    nz = y != 0
    m = emotion_metrics(y, scores=s)
    assert m.f1_binary == pytest.approx(metrics.f1_score(y[nz] > 0, s[nz] > 0, average="weighted"))
    assert m.acc2 == pytest.approx(metrics.accuracy_score(y[nz] > 0, s[nz] > 0))


def test_binary_metrics_exclude_zeros_and_nonneg_variant() -> None:
    y = [-1.0, 0.0, 0.0, 2.0, 1.0, 0.5, -2.0]
    scores = [-0.5, 1.0, -1.0, 0.0, 0.5, -0.7, -0.3]
    m = emotion_metrics(y, scores=scores)
    # MulT: non-zero truths idx 0, 3, 4, 5, 6: truth>0 [F, T, T, T, F]; pred>0 [F, F, T, F, F] (0.0 -> F)
    # correct idx 0, 4, 6 -> 3/5. class F (support 2): TP 2, FP 2, FN 0 -> 4/6; class T (support 3): TP 1, FN 2 -> 2/4
    assert m.n_nonzero == 5
    assert m.acc2 == pytest.approx(3 / 5)
    assert m.f1_binary == pytest.approx((2 * 4 / 6 + 3 * 2 / 4) / 5)
    # non-negative vs negative, all 7: truth>=0 [F,T,T,T,T,T,F]; pred>=0 [F,T,F,T,T,F,F] -> correct 5/7
    # class F (support 2): TP 2, FP 2 -> 4/6; class T (support 5): TP 3, FN 2 -> 6/8
    assert m.acc2_nonneg == pytest.approx(5 / 7)
    assert m.f1_binary_nonneg == pytest.approx((2 * 4 / 6 + 5 * 6 / 8) / 7)


def test_binary_undefined_when_all_truths_zero() -> None:
    m = emotion_metrics([0.0, 0.0], scores=[0.3, -0.2])
    assert m.n_nonzero == 0 and math.isnan(m.acc2) and math.isnan(m.f1_binary)
    assert m.to_json()["acc2"] is None
    assert m.acc2_nonneg == pytest.approx(1 / 2)  # truth>=0 [T, T]; pred>=0 [T, F]


def test_mae_and_corr() -> None:
    m = emotion_metrics([1.0, 2.0, 3.0, 4.0], scores=[1.0, 3.0, 2.0, 5.0])
    assert m.mae == pytest.approx((0 + 1 + 1 + 1) / 4)
    # deviations y [-1.5,-.5,.5,1.5], s [-1.75,.25,-.75,2.25]: cov 5.5, ss_y 5, ss_s 8.75
    assert m.corr == pytest.approx(5.5 / math.sqrt(5 * 8.75))
    # MAE is on unclipped scores (5 vs 3 -> 2) while acc7 clips (both class 6)
    m = emotion_metrics([3.0, -3.0], scores=[5.0, -3.0])
    assert m.mae == pytest.approx(1.0) and m.acc7 == 1.0
    # constant prediction -> corr undefined
    assert math.isnan(emotion_metrics([1.0, 2.0], scores=[0.5, 0.5]).corr)


def test_majority_baseline_with_and_without_train_labels() -> None:
    y = [0.0, 0.0, 1.0, 1.0, 1.0, -2.0]  # classes [3, 3, 4, 4, 4, 1]
    m = emotion_metrics(y, scores=y)
    assert (m.majority_class, m.majority_from) == (4, "test")
    assert m.majority_acc7 == pytest.approx(3 / 6)
    m = emotion_metrics(y, scores=y, train_labels=[0.0, 0.0, 0.0, 2.6, -1.0])  # classes [3, 3, 3, 6, 2]
    assert (m.majority_class, m.majority_from) == (3, "train")
    assert m.majority_acc7 == pytest.approx(2 / 6)
    m = emotion_metrics(y, scores=y, train_labels=[-2.0, 1.0])  # tie 1 vs 4 -> lower index 1
    assert m.majority_class == 1 and m.majority_acc7 == pytest.approx(1 / 6)


def test_logits_argmax_class_and_expected_value() -> None:
    y = [-3.0, 0.0, 2.0]
    p = np.array(
        [
            [0.6, 0.2, 0.05, 0.05, 0.05, 0.025, 0.025],  # argmax 0; E = -1.8-.4-.05+0+.05+.05+.075 = -2.075
            [1 / 7] * 7,  # uniform: argmax 0 (first on ties); E = 0
            [0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 0.4],  # argmax 6; E = -.15-.1-.05+0+.1+.6+1.2 = 1.6
        ]
    )
    logits = np.log(p) + 5.0  # softmax is shift-invariant
    m = emotion_metrics(y, logits=logits)
    assert m.prediction_from == "logits"
    assert m.acc7 == pytest.approx(1 / 3)  # true classes [0, 3, 5] vs predicted [0, 0, 6]
    assert m.predicted_histogram == [2, 0, 0, 0, 0, 0, 1]
    assert m.mae == pytest.approx((0.925 + 0.0 + 0.4) / 3)
    # non-zero truths idx 0, 2: truth>0 [F, T]; E>0 [F, T]
    assert m.acc2 == 1.0 and m.f1_binary == 1.0
    # torch tensors are accepted and give the same answer
    mt = emotion_metrics(torch.tensor(y), logits=torch.tensor(logits))
    assert mt.to_json() == m.to_json()


def test_logits_and_scores_agree_on_classes() -> None:
    y = np.array([-2.2, -0.4, 0.6, 1.4, 2.9])
    classes = [1, 3, 4, 4, 6]
    logits = np.full((5, 7), -10.0)
    logits[np.arange(5), classes] = 10.0
    a = emotion_metrics(y, logits=logits)
    b = emotion_metrics(y, scores=np.array(classes) - 3.0)
    for key in ("acc7", "f1_weighted", "f1_macro", "histogram", "predicted_histogram"):
        assert getattr(a, key) == pytest.approx(getattr(b, key))


def test_mult_shaped_labels_are_flattened() -> None:
    y = np.array([1.0, -1.0, 2.0]).reshape(3, 1, 1)
    m = emotion_metrics(y, scores=np.array([1.0, -1.0, 2.0]).reshape(3, 1))
    assert m.acc7 == 1.0 and m.n == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of logits"),
        ({"logits": np.zeros((3, 7)), "scores": np.zeros(3)}, "exactly one of logits"),
        ({"logits": np.zeros((3, 5))}, r"logits must have shape \(N, 7\), got \(3, 5\)"),
        ({"logits": np.zeros(7)}, r"logits must have shape \(N, 7\)"),
        ({"logits": np.zeros((2, 7))}, "logits has 2 rows but y_true_continuous has 3"),
        ({"scores": np.zeros(4)}, "scores has 4 values but y_true_continuous has 3"),
        ({"scores": np.zeros((3, 2))}, r"scores must have shape \(N,\) or \(N, 1, ...\), got \(3, 2\)"),
        ({"scores": [0.0, math.nan, 1.0]}, "scores contains 1 non-finite"),
        ({"scores": np.zeros(3), "train_labels": []}, "train_labels is empty"),
    ],
)
def test_bad_inputs_raise_value_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        emotion_metrics([0.0, 1.0, 2.0], **kwargs)


def test_bad_truth_raises_value_error() -> None:
    with pytest.raises(ValueError, match="y_true_continuous is empty"):
        emotion_metrics([], scores=[])
    with pytest.raises(ValueError, match=r"y_true_continuous must have shape"):
        emotion_metrics(np.zeros((2, 2)), scores=np.zeros(2))
    with pytest.raises(ValueError, match="y_true_continuous must be an array"):
        emotion_metrics(1.0, scores=[1.0])
    with pytest.raises(ValueError, match="y_true_continuous contains 1 non-finite"):
        emotion_metrics([math.inf, 0.0], scores=[0.0, 0.0])


def test_to_json_and_markdown() -> None:
    m = emotion_metrics([1.0, -1.0, 0.0, 2.0], scores=[0.8, -1.2, 0.1, 1.0], train_labels=[0.0])
    assert isinstance(m, EmotionMetrics)
    d = m.to_json()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["histogram"] == [0, 0, 1, 1, 1, 1, 0] and d["n"] == 4 and d["majority_from"] == "train"
    table = emotion_metrics_table(m, "student | EDAM")
    lines = table.splitlines()
    assert len(lines) == 3 and lines[0].startswith("| model | n | Acc7 %")
    # classes true [4, 2, 3, 5] vs predicted [4, 2, 3, 4] -> 75.00; majority class 3 (0.0) -> 25.00
    assert "student \\| EDAM" in lines[2] and "| 75.00 |" in lines[2]
    assert "25.00 (class +0, train)" in lines[2]
    assert lines[0].count("|") == lines[1].count("|") == lines[2].count("|") - 1
