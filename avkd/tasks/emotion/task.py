"""The emotion task: 7-class emotion on CMU-MOSEI (MulT teacher, video-only students)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from avkd.core.artifacts import MOSEI_FEATURES, Artifact
from avkd.report.emotion import build_emotion_report
from avkd.tasks.base import RunOptions, Task, register_task
from avkd.tasks.emotion.config import EmotionDistillConfig, EmotionEvalConfig, EmotionTrainConfig
from avkd.tasks.emotion.demo import EmotionDemoConfig, run_emotion_demo
from avkd.tasks.emotion.distill import distill_emotion
from avkd.tasks.emotion.evaluate import evaluate_emotion_artifact
from avkd.tasks.emotion.methods import METHODS
from avkd.tasks.emotion.train import train_emotion_teacher

__all__ = ["EmotionTask"]

_LOOP = {
    "epochs": "loop.epochs",
    "batch_size": "loop.batch_size",
    "lr": "loop.lr",
    "device": "loop.device",
    "seed": "loop.seed",
}


@register_task
class EmotionTask(Task):
    name = "emotion"
    aliases = ("mosei",)
    description = "7-class emotion on CMU-MOSEI (MulT teacher, video-only students with CRD / EDAM)"
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
            **_LOOP,
            "model": "model.name",
            "branch": "model.kwargs.branch",
            "workers": "loop.num_workers",
        },
        "distill": {**_LOOP, "method": "method", "config_id": "config_id"},
        "evaluate": {"split": "split", "device": "device"},
        "demo": {"seed": "corpus.seed"},
    }
    selection_metric = "val_acc7"
    demo_folder = "avkd-demo-emotion"

    def train(self, config: EmotionTrainConfig, features: Path, out: Path, run: RunOptions) -> Artifact:
        return train_emotion_teacher(
            config, features, out, overwrite=run.overwrite, resume=run.resume, show_progress=run.show_progress
        )

    def distill(
        self, config: EmotionDistillConfig, teacher: Path, features: Path, out: Path, run: RunOptions
    ) -> Artifact:
        return distill_emotion(
            config,
            teacher,
            features,
            out,
            overwrite=run.overwrite,
            resume=run.resume,
            show_progress=run.show_progress,
        )

    def evaluate(
        self,
        config: EmotionEvalConfig,
        model: Path,
        features: Path,
        out: Path,
        label: str | None,
        run: RunOptions,
    ) -> Artifact:
        return evaluate_emotion_artifact(config, model, features, out, label=label, overwrite=run.overwrite)

    def evaluation_text(self, evaluation: Artifact) -> str:
        return (evaluation.path / "metrics.md").read_text().rstrip()

    def report(
        self, evaluations: Sequence[Artifact], out: Path, title: str | None, run: RunOptions
    ) -> Artifact:
        return build_emotion_report(evaluations, out, title or "avkd emotion report", overwrite=run.overwrite)

    def report_text(self, report: Artifact) -> str:
        return (report.path / "report.md").read_text().rstrip()

    def demo(self, out: Path, config: EmotionDemoConfig, fresh: bool, show_progress: bool) -> dict[str, Any]:
        return run_emotion_demo(out, config, fresh=fresh, show_progress=show_progress)
