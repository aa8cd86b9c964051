"""The sync task: audio-visual synchronisation on LRS2-style clips (VocaLiST teacher, MTDVocaLiST students)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from avkd.core.artifacts import LRS2_FEATURES, Artifact
from avkd.report.sync import build_sync_report, report_runs, report_table
from avkd.tasks.base import LOOP_FLAGS, Task, register_task
from avkd.tasks.sync.config import DistillConfig, SyncEvalConfig, SyncTrainConfig
from avkd.tasks.sync.demo import DemoConfig, run_demo
from avkd.tasks.sync.distill import distill_sync
from avkd.tasks.sync.evaluate import evaluate_sync_artifact
from avkd.tasks.sync.methods import METHODS
from avkd.tasks.sync.train import train_sync_teacher

__all__ = ["SyncTask"]


@register_task
class SyncTask(Task):
    name = "sync"
    features_kind = LRS2_FEATURES
    methods = METHODS
    configs: ClassVar[dict[str, type]] = {
        "train": SyncTrainConfig,
        "distill": DistillConfig,
        "evaluate": SyncEvalConfig,
        "demo": DemoConfig,
    }
    flags: ClassVar[dict[str, dict[str, str]]] = {
        "train": {
            **LOOP_FLAGS,
            "model": "model.name",
            "width": "model.width",
            "objective": "objective",
            "workers": "loop.num_workers",
            "samples_per_epoch": "samples_per_epoch",
        },
        "distill": {
            **LOOP_FLAGS,
            "method": "method",
            "weighting": "weighting",
            "layers": "layers",
            "student": "student.name",
            "width": "student.width",
            "samples_per_epoch": "samples_per_epoch",
        },
        "evaluate": {
            "split": "split",
            "frames": "frames",
            "device": "device",
            "limit": "limit",
            "save_scores": "save_scores",
            "protocol": "protocol",
        },
        "demo": {
            "utterances": "utterances",
            "workers": "workers",
            "seed": "seed",
            "seeds": "seeds",
            "deterministic": "deterministic",
        },
    }
    selection_metric = "val_f1"
    demo_folder = "avkd-demo"

    train_stage = staticmethod(train_sync_teacher)
    distill_stage = staticmethod(distill_sync)
    evaluate_stage = staticmethod(evaluate_sync_artifact)
    report_stage = staticmethod(build_sync_report)
    demo_stage = staticmethod(run_demo)
    evaluation_table = "accuracy.md"

    def describe_model(self, model: Artifact) -> str:
        # A model trained with an embedding objective (--objective pm | contrastive) is selected by val_acc.
        if "best_val_f1" not in model.metrics and "best_val_acc" in model.metrics:
            m = model.metrics
            return (
                f"{model.path}: {m['parameters']:,} parameters, best val_acc {m['best_val_acc']:.4f} at epoch "
                f"{m.get('best_epoch')}; id {model.id}"
            )
        return super().describe_model(model)

    def report_text(self, report: Artifact) -> str:
        return report_table(report).rstrip()

    def report_json(self, report: Artifact) -> dict[str, Any]:
        payload = json.loads((report.path / "report.json").read_text())
        return {
            "runs": [
                {
                    "label": r.label,
                    "variant": r.variant,
                    "evaluation": r.eval_id,
                    "model": r.model_id,
                    "model_status": r.model_status,
                    "parameters": r.parameters,
                    "accuracy": {str(k): v for k, v in r.accuracy.items()},
                }
                for r in report_runs(report)
            ],
            # Reports written before seeds were an axis have no aggregates.
            "aggregates": payload.get("aggregates", []),
        }
