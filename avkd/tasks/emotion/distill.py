"""``avkd distill --task emotion``: the video-only MulT student from a frozen MulT teacher (the seed paper's methods).

Objective, equation 1 of the seed paper (docs/reference/mult-mosei.md §5.3): ``α·CE(student, label7) + β·L_KD`` with the teacher frozen
(eval, ``torch.no_grad``, only the internals the method needs); the methods are
:data:`avkd.tasks.emotion.methods.METHODS` (docs/reference/mult-mosei.md §5.4, Table 1 rows).

``config_id`` (1-5, §5.2) picks the student's transformers and the distilled pairs; the teacher artifact must be the
branch that configuration names. CRD draws, for each sample, K negatives from other classes; the draw is a pure
function of (seed, epoch, sample), so a resumed run sees the same negatives.

AVSiam on either side (:mod:`avkd.models.avsiam_emotion`): ``student_model="avsiam_emotion"`` makes the student
an AVSiam over the features' maps (the maps sized to the features' lengths; trained video-only, like the seed's
student, unless ``student_kwargs.train_mode`` says otherwise), and an ``avsiam_emotion`` teacher artifact is run
audio-visually (its fusion head: a teacher sees every modality it has, as the complete MulT does), whatever
eval mode it was saved with. Methods that read logits or the ``hidden`` features (none, crd-final,
crd-penultimate) work with it; the attention-map methods need MulT's crossmodal blocks, so with an AVSiam they
stop before any work with one line naming the method and the taps the model lacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from avkd.core.artifacts import MOSEI_FEATURES, Artifact, load_artifact
from avkd.core.errors import UsageError
from avkd.data.mosei.dataset import MoseiDataset
from avkd.data.mosei.labels import label7
from avkd.evaluate.classify import emotion_metrics
from avkd.losses.base import build_loss
from avkd.losses.emotion import CRDBatch, contrast_indices
from avkd.models.attention import Tapped, TapRequest
from avkd.models.avsiam_emotion import AVSiamEmotion
from avkd.models.device import resolve_device
from avkd.models.io import ModelSpec, count_parameters, load_model, model_inputs, save_weights
from avkd.models.mult import STUDENT_CONFIGS
from avkd.tasks.emotion.config import EMOTION_INPUTS, EmotionDistillConfig
from avkd.tasks.emotion.methods import METHODS
from avkd.tasks.emotion.train import EpochShuffle, predict
from avkd.train.checkpoint import seed_everything
from avkd.train.loop import fit_stage

__all__ = ["ContrastSamples", "EmotionDistillTask", "distill_emotion"]


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
    """The video-only student, its distillation loss (if the method has one) and the frozen teacher."""

    best_keys = ("val_acc7", "val_f1")

    def __init__(self, config: EmotionDistillConfig, teacher: nn.Module, features: Artifact) -> None:
        method = METHODS.get(config.method)
        if config.config_id not in STUDENT_CONFIGS:
            raise UsageError(
                f"--config-id {config.config_id}: choose 1..5 (docs/reference/mult-mosei.md §5.2)"
            )
        self.config = config
        train = MoseiDataset(features, config.train_split)
        self.spec = ModelSpec(
            config.student_model, {**_student_defaults(config, teacher, features), **config.student_kwargs}
        )
        seed_everything(config.loop.seed)
        self.student = self.spec.build()
        if model_inputs(self.student)[: len(EMOTION_INPUTS)] != EMOTION_INPUTS:
            raise UsageError(
                f"student {config.student_model!r} takes ({', '.join(model_inputs(self.student))}), not this "
                f"task's ({', '.join(EMOTION_INPUTS)})"
            )
        # A student that runs part of itself per forward (AVSiam: one head) says so, for DDP.
        self.find_unused_parameters = bool(getattr(self.student, "find_unused_parameters", False))
        self.teacher = teacher.eval().requires_grad_(False)
        if isinstance(teacher, AVSiamEmotion):
            teacher.eval_mode = "av"  # a teacher sees every modality it has (module docstring)
        self.loss_fn: nn.Module | None = None
        if method.loss is not None:
            # The distilled layers are the teacher's (and the student's): 5 for the reference MulT.
            options = {
                **method.options,
                "config": config.config_id,
                "num_layers": getattr(teacher, "layers", 5),
                **config.loss_options,
            }
            if method.loss == "crd":
                # The memory bank has one row per training sample; the attention sites' heads are sized from
                # the sequence lengths of these features (not MulT's 50/500/500 unless ingested so).
                lengths = tuple(int(features.config[f"{m}_len"]) for m in ("text", "audio", "vision"))
                options.setdefault("seq_lengths", lengths)
                options.update(n_data=len(train), nce_k=min(config.nce_k, len(train) - 1))
            self.loss_fn = build_loss(method.loss, **options)
            _check_taps(config.method, self.loss_fn.taps(), self.student, self.teacher)
            self.loss_fn.setup(student=self.student, teacher=self.teacher)
        self.uses_contrast = method.loss == "crd"
        base = ContrastSamples(train, self.loss_fn.nce_k if self.uses_contrast else 0, config.loop.seed)
        self.train = _Shuffled(base, config.loop.seed)
        self.val = MoseiDataset(features, config.val_split)
        self.train_labels = train.labels()
        if self.loss_fn is not None:
            self._probe(features)

    def _probe(self, features: Artifact) -> None:
        """Run the loss once on two samples, so that a teacher, student and features that cannot be distilled
        together (e.g. EDAM maps of different lengths: the EDAM-S proxies need text_len = vision_len / 10 and
        audio_len = vision_len, docs/reference/mult-mosei.md §5.5 item 4) fail now with one clear line, not after an epoch."""
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

    def summary(self) -> dict[str, Any]:
        return {
            "parameters": count_parameters(self.student),
            "teacher_parameters": count_parameters(self.teacher),
            "method": self.config.method,
            "config": self.config.config_id,
            "student_model": self.config.student_model,
        }

    def close(self) -> None:
        self.train.base.base.close()
        self.val.close()


def _student_defaults(config: EmotionDistillConfig, teacher: nn.Module, features: Artifact) -> dict[str, Any]:
    """The student's constructor arguments before ``student_kwargs``."""
    if config.student_model == "avsiam_emotion":
        # Maps as long as the features' sequences; trained on the modality it is evaluated on (video-only).
        lengths = {f"{m}_len": int(features.config[f"{m}_len"]) for m in ("audio", "vision")}
        return {**lengths, "train_mode": "v"}
    if config.student_model != "mult_student":
        return {}
    kwargs: dict[str, Any] = {
        "config": config.config_id,
        "proxy": "same" if config.method == "edam-t" else "edam_s",
    }
    # The student mirrors a MulT teacher's width, heads and depth unless told otherwise: the seed paper's student
    # is the teacher's architecture on video-only inputs (§5.2), and attention maps can only be compared head
    # for head and layer for layer. Another teacher (AVSiam) leaves mult_student's own defaults.
    for name in ("d", "num_heads", "layers"):
        if isinstance(getattr(teacher, name, None), int):
            kwargs[name] = getattr(teacher, name)
    return kwargs


def _check_taps(method: str, taps: list[str], student: nn.Module, teacher: nn.Module) -> None:
    """One line, before any work, when a model lacks the taps a method reads (AVSiam has no MulT crossmodal
    attention maps), or when CRD on ``hidden`` would meet features of several widths (a mixed-mode AVSiam
    student: its fusion head's input is twice as wide as a one-modality head's)."""
    if not taps:
        return
    for who, model in (("teacher", teacher), ("student", student)):
        names = getattr(model, "tap_names", None)
        missing = TapRequest(*taps).unmatched(names()) if names is not None else []
        if missing:
            raise UsageError(
                f"--method {method}: the {who} ({type(model).__name__}) has no tap {missing[0]!r} "
                f"({len(missing)} of the {len(taps)} taps it reads are missing); with it use none, crd-final or "
                "crd-penultimate"
            )
    if "hidden" in taps and isinstance(student, AVSiamEmotion):
        widths = {student.head_parts(m)[1].in_features for m in (*student.train_modes(), student.eval_mode)}
        if len(widths) > 1:
            raise UsageError(
                f"--method {method}: the AVSiam student's train_mode {student.train_mode!r} gives 'hidden' "
                f"features of widths {sorted(widths)}; set student_kwargs.train_mode to one of av, a, v"
            )


def distill_emotion(
    config: EmotionDistillConfig,
    teacher: str | Path,
    features: str | Path,
    out: str | Path,
    overwrite: bool = False,
    resume: bool = False,
    show_progress: bool = True,
) -> Artifact:
    """Distil the video-only student from a MulT (or ``avsiam_emotion``) ``model`` artifact on a
    ``mosei-features`` artifact."""
    METHODS.get(config.method)  # an unknown method is a usage error before any work

    def build() -> tuple[EmotionDistillTask, list[Artifact]]:
        feats = load_artifact(features, kind=MOSEI_FEATURES)
        loaded = load_model(teacher, inputs=EMOTION_INPUTS)
        branch = loaded.spec.kwargs.get("branch", "complete")
        wanted = (
            STUDENT_CONFIGS[config.config_id].teacher_branch if config.config_id in STUDENT_CONFIGS else None
        )
        if isinstance(loaded.model, AVSiamEmotion):
            pass  # any config: the methods that apply read no MulT block
        elif loaded.spec.name != "mult" or (wanted is not None and branch != wanted):
            raise UsageError(
                f"{teacher}: configuration {config.config_id} distils from the MulT {wanted} branch (or an "
                f"avsiam_emotion teacher), this teacher is {loaded.spec.name} ({branch})"
            )
        task = EmotionDistillTask(config, loaded.model, feats)
        loaded.model.to(resolve_device(config.loop.device))
        return task, [feats] + ([loaded.artifact] if loaded.artifact else [])

    return fit_stage(out, config, build, overwrite=overwrite, resume=resume, show_progress=show_progress)
