"""The avsiam task (alias ``clips``): AVSiam on labelled clip corpora in the VGGSound layout (``clips-features``).

Its stages: ``train`` fine-tunes an avsiam model for classification (:func:`~avkd.tasks.avsiam.finetune.finetune_avsiam`;
``avkd train teacher --task avsiam`` trains from scratch, ``avkd train avsiam --init PRETRAINED`` from a model of
``avkd pretrain --method avsiam``); ``evaluate`` is the clips evaluation (retrieval both ways and accuracy under
audio-visual, audio-only and video-only inputs, :mod:`avkd.evaluate.avsiam`); ``report`` its two tables
(:mod:`avkd.report.avsiam`); ``demo`` the chain on a synthetic corpus (:mod:`avkd.tasks.avsiam.demo`).

No distillation method is defined for clips yet (:data:`METHODS` is empty), so ``avkd distill --task avsiam`` is a
one-line usage error rather than a stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from avkd.core.artifacts import CLIPS_FEATURES, Artifact
from avkd.core.errors import UsageError
from avkd.core.registry import Registry
from avkd.evaluate.avsiam import ClipsEvalConfig, evaluate_clips_artifact
from avkd.losses.methods import Method, method_table
from avkd.report.avsiam import build_avsiam_report
from avkd.tasks.avsiam.config import AVSiamFinetuneConfig
from avkd.tasks.avsiam.demo import AVSiamDemoConfig, run_avsiam_demo
from avkd.tasks.avsiam.finetune import finetune_avsiam
from avkd.tasks.base import LOOP_FLAGS, Task, register_task

__all__ = ["METHODS", "NO_DISTILLATION", "AVSiamTask"]

#: The avsiam task's distillation methods: none yet.
METHODS: Registry[Method] = method_table("avsiam", [])

NO_DISTILLATION = (
    "avkd distill --task avsiam: the avsiam task has no distillation methods yet; pre-train with "
    "`avkd pretrain --method avsiam` and fine-tune with `avkd train avsiam --init MODEL`"
)


def refuse_distillation(*args: Any, **kwargs: Any) -> Artifact:
    """The avsiam task's distill stage: a usage error (:data:`METHODS` is empty)."""
    raise UsageError(NO_DISTILLATION)


@register_task
class AVSiamTask(Task):
    name = "avsiam"
    aliases = ("clips",)
    features_kind = CLIPS_FEATURES
    methods = METHODS
    configs: ClassVar[dict[str, type]] = {
        "train": AVSiamFinetuneConfig,
        "evaluate": ClipsEvalConfig,
        "demo": AVSiamDemoConfig,
    }
    flags: ClassVar[dict[str, dict[str, str]]] = {
        "train": {**LOOP_FLAGS, "workers": "loop.num_workers"},
        "evaluate": {"split": "split", "device": "device", "per_class": "per_class"},
        "demo": {"seed": "corpus.seed", "seeds": "seeds", "deterministic": "deterministic"},
    }
    selection_metric = "val_acc"
    demo_folder = "avkd-demo-avsiam"

    train_stage = staticmethod(finetune_avsiam)
    distill_stage = staticmethod(refuse_distillation)
    evaluate_stage = staticmethod(evaluate_clips_artifact)
    report_stage = staticmethod(build_avsiam_report)
    demo_stage = staticmethod(run_avsiam_demo)
    evaluation_table = "metrics.md"

    def config(
        self,
        stage: str,
        config_file: str | Path | None = None,
        sets: Any = (),
        flags: Any = None,
    ) -> Any:
        # There is no distill config to resolve: say why before any flag is looked at.
        if stage == "distill":
            raise UsageError(NO_DISTILLATION)
        return super().config(stage, config_file, sets, flags)

    def report_json(self, report: Artifact) -> dict[str, Any]:
        payload = json.loads((report.path / "report.json").read_text())
        return {"runs": payload["runs"], "aggregates": payload["aggregates"]}
