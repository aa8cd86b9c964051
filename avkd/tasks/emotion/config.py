"""The emotion task's stage configurations: MulT teacher training, distillation and evaluation."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from avkd.core.config import bounded
from avkd.evaluate.classify import protocol_problem
from avkd.models.avsiam import MODES
from avkd.models.device import device_problem
from avkd.models.io import ModelSpec
from avkd.models.registry import model_entrypoint
from avkd.train.loop import LoopConfig

__all__ = [
    "EMOTION_INPUTS",
    "EmotionDistillConfig",
    "EmotionEvalConfig",
    "EmotionModelConfig",
    "EmotionTrainConfig",
    "emotion_loop",
]


def _modality_problem(value: Any) -> str | None:
    return None if value in MODES else f"must be one of {', '.join(MODES)} (or unset)"


#: What this task's models take (forward(text, audio, vision)): its stages refuse a model of another task.
EMOTION_INPUTS = ("text", "audio", "vision")


def emotion_loop(epochs: int = 40, device: str = "auto") -> LoopConfig:
    """MulT's recipe (docs/reference/mult-mosei.md §1.1): Adam 1e-3, batch 24, gradient clipping 0.8; checkpoints selected on the
    validation 7-class accuracy, the number the seed paper reports."""
    return LoopConfig(
        epochs=epochs,
        batch_size=24,
        lr=1e-3,
        grad_clip=0.8,
        select_metric="val_acc7",
        select_mode="max",
        device=device,
    )


#: The default model arguments: MulT's (``branch``, ``output_dim``).
MULT_KWARGS: dict[str, Any] = {"branch": "complete", "output_dim": 7}


@dataclass
class EmotionModelConfig:
    """A registered emotion model and its constructor arguments (e.g. {"branch": "video"} for MulT)."""

    name: str = "mult"
    kwargs: dict[str, Any] = field(default_factory=lambda: dict(MULT_KWARGS))

    def spec(self) -> ModelSpec:
        """The model to build. A section given in part keeps the default MulT arguments (config files and
        ``--set`` merge into them), so for another model those it does not take are left out when they still
        hold the default value (``--model avsiam_emotion`` needs no ``branch``); anything else reaches the
        constructor, which refuses what it does not know."""
        kwargs = dict(self.kwargs)
        if self.name != "mult":
            taken = inspect.signature(model_entrypoint(self.name)).parameters
            for key, value in MULT_KWARGS.items():
                if key not in taken and kwargs.get(key, object()) == value:
                    del kwargs[key]
        return ModelSpec(self.name, kwargs)


@dataclass
class EmotionTrainConfig:
    model: EmotionModelConfig = field(default_factory=EmotionModelConfig)
    loop: LoopConfig = field(default_factory=emotion_loop)
    train_split: str = "train"
    val_split: str = "val"
    keep_checkpoint: bool = False
    #: A pre-trained AVSiam ``model`` artifact (``avkd pretrain``) whose encoder and fusion weights initialise an
    #: ``avsiam_emotion`` model (:func:`avkd.models.avsiam_emotion.init_from_avsiam`); None: from scratch.
    init: str | None = None
    #: Learning rate of the parameters named ``head`` as a multiple of ``loop.lr`` (AVSiam's heads; the released
    #: fine-tuning uses 10, docs/reference/avsiam-mfh-syncnet.md §1.8). 1 = one rate for everything.
    head_lr: float = bounded(1.0, gt=0.0)


@dataclass
class EmotionDistillConfig:
    method: str = "edam-s"
    #: Student-teacher configuration 1-5 (docs/reference/mult-mosei.md §5.2); 5 = complete teacher, V_S←A_S and V_S←L_S distilled.
    config_id: int = bounded(5, ge=1, le=5)
    #: Equation 1: α·CE + β·KD (RepDistiller's CRD setting α = 1, β = 0.8; docs/reference/mult-mosei.md §4.1).
    alpha: float = bounded(1.0, ge=0.0)
    beta: float = bounded(0.8, ge=0.0)
    #: CRD negatives per sample (docs/reference/mult-mosei.md §5.5 item 13: 4096, RepDistiller's 16384 exceeds MOSEI's train set).
    nce_k: int = bounded(4096, ge=1)
    loss_options: dict[str, Any] = field(default_factory=dict)
    #: The student's registered model: ``mult_student`` (the seed paper's) or ``avsiam_emotion``.
    student_model: str = "mult_student"
    #: The student's constructor arguments. mult_student: the proxy defaults to EDAM-S's downsampling convs,
    #: except for edam-t, whose student keeps full-length proxies (the teacher's maps are upsampled instead);
    #: avsiam_emotion: the maps default to the features' lengths and training to video-only (``train_mode``).
    student_kwargs: dict[str, Any] = field(default_factory=dict)
    loop: LoopConfig = field(default_factory=emotion_loop)
    train_split: str = "train"
    val_split: str = "val"
    keep_checkpoint: bool = False


@dataclass
class EmotionEvalConfig:
    split: str = "test"
    batch_size: int = bounded(24, ge=1)
    device: str = bounded("cpu", check=device_problem)
    #: "avkd" (binary F1 in scikit-learn's argument order) or "reference" (MulT's eval_mosei_senti, which swaps
    #: them; docs/reference/mult-mosei.md §2.2, :mod:`avkd.evaluate.classify` item 9).
    protocol: str = bounded("avkd", check=protocol_problem)
    #: The inputs a model that can run on several (``avsiam_emotion``) reads: "av", "a" (audio only) or "v"
    #: (video only); None: its own ``eval_mode``. Refused for a model with one way to run (MulT).
    modality: str | None = bounded(None, check=_modality_problem)
