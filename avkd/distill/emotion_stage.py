"""``avkd distill --task mosei``: the video-only MulT student from a frozen MulT teacher (the seed paper's methods).

Objective, equation 1 of the seed paper (reference §5.3): ``α·CE(student, label7) + β·L_KD`` with the teacher frozen
(eval, ``torch.no_grad``, only the internals the method needs). Methods (reference §5.4, Table 1 rows):

| method | L_KD |
|---|---|
| none | – (the student without KD) |
| crd-final, crd-penultimate | CRD on the logits / the input of the last linear layer (eq. 2) |
| crd-post-attention, crd-attention | CRD per distilled block and layer (eqs. 7, 9) |
| edam-s, edam-t | −Σ p_T log p_S on attention maps, student downsampled / teacher upsampled (eqs. 12, 13) |

``config`` (1-5, §5.2) picks the student's transformers and the distilled pairs; the teacher artifact must be the
branch that configuration names. CRD draws, for each sample, K negatives from other classes; the draw is a pure
function of (seed, epoch, sample), so a resumed run sees the same negatives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from avkd import config as cfg
from avkd.artifacts import Artifact, finished, load_artifact
from avkd.data.mosei import KIND as MOSEI_KIND
from avkd.data.mosei import MoseiDataset, label7
from avkd.distill.emotion_losses import CRDBatch, contrast_indices
from avkd.distill.losses import build_loss
from avkd.errors import UsageError
from avkd.evaluate.classify import emotion_metrics
from avkd.models.attention import Tapped
from avkd.models.io import KIND as MODEL_KIND
from avkd.models.io import ModelSpec, count_parameters, load_model, save_weights
from avkd.models.mult import STUDENT_CONFIGS
from avkd.train.checkpoint import seed_everything
from avkd.train.emotion import EpochShuffle, predict
from avkd.train.loop import LoopConfig, fit_to_artifact, resolve_device

#: method -> (loss registry name and options), None = no distillation term.
EMOTION_METHODS: dict[str, tuple[str, dict[str, Any]] | None] = {
    "none": None,
    "crd-final": ("crd", {"site": "final"}),
    "crd-penultimate": ("crd", {"site": "penultimate"}),
    "crd-post-attention": ("crd", {"site": "post-attention"}),
    "crd-attention": ("crd", {"site": "attention"}),
    "edam-s": ("edam_s", {}),
    "edam-t": ("edam_t", {}),
}


@dataclass
class EmotionDistillConfig:
    method: str = "edam-s"
    #: Student-teacher configuration 1-5 (reference §5.2); 5 = complete teacher, V_S←A_S and V_S←L_S distilled.
    config: int = 5
    #: Equation 1: α·CE + β·KD (RepDistiller's CRD setting α = 1, β = 0.8; reference §4.1).
    alpha: float = 1.0
    beta: float = 0.8
    #: CRD negatives per sample (reference §5.5 item 13: 4096, RepDistiller's 16384 exceeds MOSEI's train set).
    nce_k: int = 4096
    loss_options: dict[str, Any] = field(default_factory=dict)
    #: mult_student constructor arguments; the proxy defaults to EDAM-S's downsampling convs, except for
    #: edam-t, whose student keeps full-length proxies (the teacher's maps are upsampled instead).
    student_kwargs: dict[str, Any] = field(default_factory=dict)
    loop: LoopConfig = field(
        default_factory=lambda: LoopConfig(
            epochs=40, batch_size=24, lr=1e-3, grad_clip=0.8, select_metric="val_acc7", select_mode="max"
        )
    )
    train_split: str = "train"
    val_split: str = "valid"
    keep_checkpoint: bool = False


class ContrastSamples(Dataset):
    """MOSEI samples plus, for CRD, K negative sample indices from other classes, drawn per (seed, epoch, index)."""

    def __init__(self, base: MoseiDataset, k: int, seed: int) -> None:
        self.base, self.k, self.seed, self.epoch = base, k, seed, 0
        self.classes = label7(base.labels())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> Any:
        if self.k == 0:  # no CRD: an empty contrast keeps one batch layout for every method
            return (*self.base[index], torch.zeros(0, dtype=torch.int64))
        rng = np.random.default_rng([self.seed, self.epoch, index])
        contrast = contrast_indices(self.classes, self.k, rng, which=[index])[0]
        return (*self.base[index], torch.from_numpy(contrast))


class _Shuffled(EpochShuffle):
    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.base.set_epoch(epoch)


class EmotionDistillTask:
    def __init__(self, config: EmotionDistillConfig, teacher: nn.Module, features: Artifact) -> None:
        if config.method not in EMOTION_METHODS:
            raise UsageError(f"unknown method {config.method!r}; choose from {', '.join(EMOTION_METHODS)}")
        if config.config not in STUDENT_CONFIGS:
            raise UsageError(f"--config {config.config}: choose 1..5 (reference §5.2)")
        self.config = config
        train = MoseiDataset(features, config.train_split)
        # The student mirrors the teacher's width, heads and depth unless told otherwise: the seed paper's student
        # is the teacher's architecture on video-only inputs (§5.2), and attention maps can only be compared
        # head for head and layer for layer.
        kwargs: dict[str, Any] = {
            "config": config.config,
            "proxy": "same" if config.method == "edam-t" else "edam_s",
            "d": teacher.d,
            "num_heads": teacher.num_heads,
            "layers": teacher.layers,
        }
        kwargs.update(config.student_kwargs)
        self.spec = ModelSpec("mult_student", kwargs)
        seed_everything(config.loop.seed)
        self.student = self.spec.build()
        self.teacher = teacher.eval().requires_grad_(False)
        method = EMOTION_METHODS[config.method]
        self.loss_fn: nn.Module | None = None
        if method is not None:
            name, options = method
            # The distilled layers are the teacher's (and the student's): 5 for the reference MulT.
            options = {
                **options,
                "config": config.config,
                "num_layers": teacher.layers,
                **config.loss_options,
            }
            if name == "crd":
                options.update(n_data=len(train), nce_k=min(config.nce_k, len(train) - 1))
            self.loss_fn = build_loss(name, **options)
            self.loss_fn.setup(student=self.student, teacher=self.teacher)
        self.uses_contrast = method is not None and method[0] == "crd"
        base = ContrastSamples(train, self.loss_fn.nce_k if self.uses_contrast else 0, config.loop.seed)
        self.train = _Shuffled(base, config.loop.seed)
        self.val = MoseiDataset(features, config.val_split)
        self.train_labels = train.labels()
        if self.loss_fn is not None:
            self._probe(features)

    def _probe(self, features: Artifact) -> None:
        """Run the loss once on two samples, so that a teacher, student and features that cannot be distilled
        together (e.g. EDAM maps of different lengths: the EDAM-S proxies need text_len = vision_len / 10 and
        audio_len = vision_len, reference §5.5 item 4) fail now with one clear line, not after an epoch."""
        batch = [self.train[i] for i in range(min(2, len(self.train)))]
        collated = tuple(torch.stack([torch.as_tensor(b[j]) for b in batch]) for j in range(len(batch[0])))
        # Leave no trace: CRD's memory banks move on every forward, and the RNG must be where training expects.
        banks = {k: v.clone() for k, v in self.loss_fn.state_dict().items()}
        rng = torch.get_rng_state()
        was_training = self.student.training
        self.student.eval()
        try:
            with torch.no_grad():
                self.loss(collated, torch.device("cpu"))
        except ValueError as exc:
            raise UsageError(f"{features.path}: cannot distil with {self.config.method!r}: {exc}") from exc
        finally:
            self.loss_fn.load_state_dict(banks)
            torch.set_rng_state(rng)
            self.student.train(was_training)

    def modules(self) -> dict[str, nn.Module]:
        return {"student": self.student, **({"loss": self.loss_fn} if self.loss_fn is not None else {})}

    def param_groups(self) -> list[dict[str, Any]]:
        params = [
            *self.student.parameters(),
            *(self.loss_fn.parameters() if self.loss_fn is not None else []),
        ]
        return [{"params": [p for p in params if p.requires_grad]}]

    def train_dataset(self) -> Dataset:
        return self.train

    def loss(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        text, audio, vision, label, index, contrast = (t.to(device) for t in batch)
        classes = label7(label)
        if self.loss_fn is None:
            ce = F.cross_entropy(self.student(text, audio, vision).float(), classes)
            return self.config.alpha * ce, {"train/ce": float(ce.detach())}
        request = self.loss_fn.tap_request()
        # no_grad rather than inference_mode: CRD's embedding heads take the teacher's outputs as inputs of a
        # trained layer, and autograd may not save inference tensors. Either way no graph is built for the teacher.
        with torch.no_grad():
            teacher = (
                self.teacher(text, audio, vision, taps=request)
                if request
                else Tapped(self.teacher(text, audio, vision), {})
            )
        student = (
            self.student(text, audio, vision, taps=request)
            if request
            else Tapped(self.student(text, audio, vision), {})
        )
        ce = F.cross_entropy(student.logits.float(), classes)
        targets = CRDBatch(classes, index, contrast) if self.uses_contrast else classes
        terms = self.loss_fn(student, teacher, targets)
        kd = sum(terms.values())
        total = self.config.alpha * ce + self.config.beta * kd
        return total, {"train/ce": float(ce.detach()), "train/kd": float(kd.detach())}

    def validate(self, device: torch.device) -> dict[str, float]:
        logits, labels = predict(self.student, self.val, device, self.config.loop.batch_size)
        metrics = emotion_metrics(labels, logits=logits, train_labels=self.train_labels)
        return {"val_acc7": metrics.acc7, "val_f1": metrics.f1_weighted}

    def export(self, path: Path) -> None:
        save_weights(path, self.student, self.spec)


def distill_emotion(
    config: EmotionDistillConfig,
    teacher: str | Path,
    features: str | Path,
    out: str | Path,
    overwrite: bool = False,
    resume: bool = False,
    show_progress: bool = True,
) -> Artifact:
    """Distil the video-only student from a MulT ``model`` artifact on a ``mosei-features`` artifact."""
    out = Path(out)
    if (done := finished(out, MODEL_KIND, resume)) is not None:
        return done
    feats = load_artifact(features, kind=MOSEI_KIND)
    loaded = load_model(teacher)
    branch = loaded.spec.kwargs.get("branch", "complete")
    wanted = STUDENT_CONFIGS[config.config].teacher_branch if config.config in STUDENT_CONFIGS else None
    if loaded.spec.name != "mult" or (wanted is not None and branch != wanted):
        raise UsageError(
            f"{teacher}: configuration {config.config} distils from the MulT {wanted} branch, "
            f"this teacher is {loaded.spec.name} ({branch})"
        )
    task = EmotionDistillTask(config, loaded.model, feats)
    inputs = [feats] + ([loaded.artifact] if loaded.artifact else [])
    loaded.model.to(resolve_device(config.loop.device))
    metrics = {
        "parameters": count_parameters(task.student),
        "teacher_parameters": count_parameters(loaded.model),
        "method": config.method,
        "config": config.config,
    }
    return fit_to_artifact(
        task,
        config.loop,
        out,
        cfg.to_dict(config),
        inputs,
        keep_checkpoint=config.keep_checkpoint,
        overwrite=overwrite,
        resume=resume,
        show_progress=show_progress,
        metrics=metrics,
        best_keys=("val_acc7", "val_f1"),
    )
