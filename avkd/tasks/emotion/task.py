"""The emotion task: 7-class emotion on CMU-MOSEI (MulT teacher, video-only students)."""

from __future__ import annotations

from typing import ClassVar

from avkd.core.artifacts import MOSEI_FEATURES
from avkd.report.emotion import build_emotion_report
from avkd.tasks.base import LOOP_FLAGS, Task, register_task
from avkd.tasks.emotion.config import EmotionDistillConfig, EmotionEvalConfig, EmotionTrainConfig
from avkd.tasks.emotion.demo import EmotionDemoConfig, run_emotion_demo
from avkd.tasks.emotion.distill import distill_emotion
from avkd.tasks.emotion.evaluate import evaluate_emotion_artifact
from avkd.tasks.emotion.methods import METHODS
from avkd.tasks.emotion.train import train_emotion_teacher

__all__ = ["EmotionTask"]


@register_task
class EmotionTask(Task):
    name = "emotion"
    aliases = ("mosei",)
    features_kind = MOSEI_FEATURES
    methods = METHODS
    configs: ClassVar[dict[str, type]] = {
        "train": EmotionTrainConfig,
        "distill": EmotionDistillConfig,
        "evaluate": EmotionEvalConfig,
        "demo": EmotionDemoConfig,
    }
    flags: ClassVar[dict[str, dict[str, str]]] = {
        "train": {
            **LOOP_FLAGS,
            "model": "model.name",
            "branch": "model.kwargs.branch",
            "workers": "loop.num_workers",
        },
        "distill": {**LOOP_FLAGS, "method": "method", "config_id": "config_id"},
        "evaluate": {"split": "split", "device": "device", "protocol": "protocol"},
        "demo": {"seed": "corpus.seed", "seeds": "seeds", "deterministic": "deterministic"},
    }
    selection_metric = "val_acc7"
    demo_folder = "avkd-demo-emotion"

    train_stage = staticmethod(train_emotion_teacher)
    distill_stage = staticmethod(distill_emotion)
    evaluate_stage = staticmethod(evaluate_emotion_artifact)
    report_stage = staticmethod(build_emotion_report)
    demo_stage = staticmethod(run_emotion_demo)
    evaluation_table = "metrics.md"
