"""Runs read for a report (``avkd.report.runs``): the Fig. 4 loss ratios and the layer/weighting variant labels."""

from __future__ import annotations

from typing import Any

import pytest

from avkd.report.runs import loss_ratios, variant_label

#: A distillation's validation log (metrics.jsonl): monitor losses next to the other numbers.
HISTORY = [
    {"epoch": 1, "train_loss": 1.0, "val_f1": 0.6, "val/mtd": 4.0, "val/last_mtd": 2.0, "val/fitnets": 0.5},
    {"epoch": 2, "train_loss": 0.8, "val_f1": 0.7, "val/mtd": 2.0, "val/last_mtd": 1.5, "val/fitnets": 0.4},
    {"epoch": 3, "train_loss": 0.7, "val_f1": 0.8, "val/mtd": 1.0, "val/last_mtd": 0.5, "val/fitnets": 0.45},
]


def test_loss_ratio_is_value_over_max_across_epochs() -> None:
    ratios = loss_ratios(HISTORY)
    assert list(ratios) == ["val/mtd", "val/last_mtd", "val/fitnets"]  # val_f1 etc. are not monitor losses
    assert ratios["val/mtd"] == [(1, 4.0 / 4.0), (2, 2.0 / 4.0), (3, 1.0 / 4.0)]
    assert ratios["val/last_mtd"] == [(1, 2.0 / 2.0), (2, 1.5 / 2.0), (3, 0.5 / 2.0)]
    # pytest 9.2's approx refuses nested sequences: compare the epochs exactly and the ratios approximately.
    assert [epoch for epoch, _ in ratios["val/fitnets"]] == [1, 2, 3]
    assert [ratio for _, ratio in ratios["val/fitnets"]] == pytest.approx([1.0, 0.8, 0.9])
    assert loss_ratios([{"epoch": 1, "val_loss": 0.3}]) == {}
    assert loss_ratios([{"epoch": 1, "val/x": 0.0}, {"epoch": 2, "val/x": None}]) == {}


@pytest.mark.parametrize(
    ("config", "label"),
    [
        ({"method": "nmtd", "layers": "fusion4", "weighting": "uniform"}, "F4"),
        ({"method": "nmtd", "layers": "av2"}, "AV2"),
        ({"method": "nmtd", "layers": "va3"}, "VA3"),
        ({"method": "mtd", "weighting": "uw25", "layers": "all"}, "UW-25D"),
        ({"method": "mtd", "weighting": "uw13", "layers": "all"}, "UW-13D"),
        ({"method": "nmtd", "weighting": "aw13", "layers": "all"}, "AW-13D"),
        ({"method": "nmtd", "weighting": "AW-25D", "layers": "all"}, "AW-25D"),
        ({"method": "nmtd", "weighting": "uniform", "layers": "all"}, "Uniform"),
        ({"method": "nmtd", "weighting": "uniform", "layers": "fusion3+av4+va1"}, "F3+AV4+VA1"),
        ({"method": "mtd", "weighting": "uw25", "layers": "av1-4"}, "AV1-4 UW-25D"),
        ({"method": "nmtd", "weighting": "uniform", "layers": "mem4,av"}, "F4+AV1-4"),
        ({"method": "mtd"}, "UW-25D"),
        (
            {"method": "nmtd", "layers": "fusion4", "loss_options": {"components": ["cad"]}},
            "F4 w/o VR",
        ),  # unset weighting/layers: the method's defaults
        ({"method": "nmtd", "weighting": None, "layers": None}, "Uniform"),
        ({"method": "bce", "weighting": "uniform", "layers": "all"}, "BCE"),
        ({"method": "fitnets"}, "FitNets"),
        ({"method": "minilm"}, "MiniLM*"),
        ({"model": {"name": "vocalist", "width": 512}, "loop": {}}, "teacher-eval"),
        (None, "teacher-eval"),
    ],
)
def test_variant_labels(config: dict[str, Any] | None, label: str) -> None:
    assert variant_label(config, "teacher-eval") == label
