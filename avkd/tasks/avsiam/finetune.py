"""``avkd train avsiam``: AVSiam fine-tuning for classification on a ``clips-features`` artifact, from a
pre-training artifact (``--init``) or from scratch.

Facts: docs/reference/avsiam-mfh-syncnet.md §1.8 (the released ``traintest_ft_base.py``).

* **Mixed modalities** (``modalities="mixed"``, the released ``ftmode=mm_grad``): each iteration draws p ~ U(0, 1);
  p > 0.5 trains the audio-visual fusion head, p < 0.25 the audio-only head, otherwise the video-only head (so
  half the iterations are single-modality). Here p is a pure function of (seed, epoch, step of the epoch)
  (:func:`modality_for_step`), so a resumed run, or any rank of a data-parallel one, draws the same.
  ``modalities="av"`` trains the fusion head every iteration (the comparison).
* **Heads**: the parameters whose names contain ``head`` learn at lr × ``head_lr`` (§1.8: 10 for VGGSound).
* **Loss**: cross-entropy with label smoothing 0.1 (§1.8). A multi-label corpus (AudioSet, BCE in the release) is
  refused in one line: not in this slice.
* **Init**: the encoder and fusion weights of a pre-training ``model`` artifact, loaded strictly; the heads are
  new for the corpus's class count, and the reconstruction decoder is left out (not used by classification).
* **Frames**: one stored frame per clip per epoch, drawn from (seed, epoch) as in pre-training
  (:class:`~avkd.tasks.avsiam.pretrain.PretrainClips`). Held-out scoring after each epoch averages the logits of
  every stored frame (the released evaluation), under av (selects the epoch), audio-only and video-only inputs.

Not reproduced: mixup, SpecAugment masking and the averaging of the weights of epochs 10-15 (§1.8).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from avkd.core.artifacts import CLIPS_FEATURES, MODEL, Artifact, load_artifact
from avkd.core.errors import UsageError
from avkd.data.clips.dataset import ClipDataset
from avkd.data.clips.store import ClipStore
from avkd.evaluate.avsiam import classification_metrics, clip_outputs
from avkd.models.io import LoadedModel, ModelSpec, load_model
from avkd.tasks.avsiam.config import AVSiamFinetuneConfig
from avkd.tasks.avsiam.pretrain import PretrainClips, check_sizes
from avkd.train.checkpoint import seed_everything
from avkd.train.loop import ModelTrainTask, fit_stage

__all__ = [
    "CODES",
    "AVSiamFinetuneTask",
    "FinetuneClips",
    "finetune_avsiam",
    "head_param_groups",
    "modality_for_step",
]

#: Forward modes by the code that travels with each sample.
CODES = ("av", "a", "v")


def modality_for_step(seed: int, epoch: int, step: int, modalities: str = "mixed") -> str:
    """The forward mode of one iteration (§1.8): p ~ U(0, 1) from (seed, epoch, step); p > 0.5 ``av``,
    p < 0.25 ``a``, otherwise ``v``. ``modalities="av"``: always ``av``."""
    if modalities == "av":
        return "av"
    p = float(np.random.default_rng([seed, epoch, step]).random())
    return "av" if p > 0.5 else "a" if p < 0.25 else "v"


def head_param_groups(model: torch.nn.Module, lr: float, head_lr: float) -> list[dict[str, Any]]:
    """Two optimiser groups: the parameters whose names contain ``head`` at ``lr · head_lr``, the rest at ``lr``
    (§1.8)."""
    named = list(model.named_parameters())
    heads = [p for n, p in named if "head" in n]
    rest = [p for n, p in named if "head" not in n]
    return [{"params": rest, "lr": lr}, {"params": heads, "lr": lr * head_lr}]


class FinetuneClips(PretrainClips):
    """:class:`PretrainClips` items plus the code of their iteration's mode (:data:`CODES`): sample ``i`` of
    epoch ``e`` belongs to step ``i // batch_size``, whose mode is :func:`modality_for_step` (the loop's step s
    is samples s·B .. s·B+B-1 on every rank)."""

    def __init__(self, clips: ClipDataset, seed: int, batch_size: int, modalities: str) -> None:
        self.batch_size, self.modalities = batch_size, modalities
        super().__init__(clips, seed)

    def mode(self, index: int) -> str:
        return modality_for_step(self.seed, self.epoch, index // self.batch_size, self.modalities)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        fbank, frame, label = super().__getitem__(index)
        return fbank, frame, label, torch.tensor(CODES.index(self.mode(index)))


def _init_from(pre: LoadedModel, spec: ModelSpec) -> torch.nn.Module:
    """A model of ``spec`` with the pre-trained model's weights for everything but the heads (fresh) and the
    decoder (left out); every other weight must be there, with its shape."""
    model = spec.build()
    state = {
        k: v for k, v in pre.model.state_dict().items() if "head" not in k and not k.startswith("decoder.")
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if "head" not in k]
    if missing or unexpected:
        what = f"{len(missing)} missing (e.g. {missing[:1]})" if missing else f"{len(unexpected)} unexpected"
        where = pre.artifact.path if pre.artifact is not None else "--init"
        raise UsageError(f"{where}: its weights do not fit {spec.name}({spec.kwargs}): {what}")
    return model


class AVSiamFinetuneTask(ModelTrainTask):
    """Classification fine-tuning (the fit loop's TrainTask)."""

    best_keys = ("acc", "val_acc", "val_acc_audio_only", "val_acc_video_only")
    # Only one head (and, for av/a iterations, one side) has a gradient in a given iteration.
    find_unused_parameters = True

    def __init__(self, config: AVSiamFinetuneConfig, artifact: Artifact, init: Artifact | None) -> None:
        self.config = config
        kwargs: dict[str, Any] = {}
        pre = load_model(init.path) if init is not None else None
        if init is not None and pre is not None:  # (both or neither)
            if pre.spec.name != "avsiam":
                raise UsageError(f"{init.path}: a {pre.spec.name!r} model, not a pre-trained avsiam")
            drop = ("num_classes", "decoder", "decoder_depth")
            kwargs = {k: v for k, v in pre.spec.kwargs.items() if k not in drop}
            if config.size is not None and config.size != kwargs.get("size"):
                raise UsageError(f"size {config.size!r}: {init.path} is a {kwargs.get('size')!r} avsiam")
        size = kwargs.setdefault("size", config.size or "toy")
        check_sizes(size, artifact)
        self.store = ClipStore(artifact)
        try:
            train = ClipDataset(self.store, config.train_split)
            self.val = ClipDataset(self.store, config.val_split)
        except UsageError:
            self.store.close()
            raise
        if train.multi_label:
            self.store.close()
            raise UsageError(f"{artifact.path}: a multi-label corpus; fine-tuning here is single-label only")
        self.spec = ModelSpec("avsiam", {**kwargs, "num_classes": train.num_classes, "decoder": False})
        seed_everything(config.loop.seed)
        self.model = _init_from(pre, self.spec) if pre is not None else self.spec.build()
        self.init = init
        self.train = FinetuneClips(train, config.loop.seed, config.loop.batch_size, config.modalities)

    def param_groups(self) -> list[dict[str, Any]]:
        return head_param_groups(self.model, self.config.loop.lr, self.config.head_lr)

    def summary(self) -> dict[str, Any]:
        return {
            **super().summary(),
            "modalities": self.config.modalities,
            "init": self.init.id if self.init is not None else None,
        }

    def loss(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        audio, video, labels = batch[0].to(device), batch[1].to(device), batch[2].to(device)
        mode = CODES[int(batch[3][0])]  # one mode per step: every sample of the batch carries the same code
        logits = self.model(audio if mode != "v" else None, video if mode != "a" else None, mode=mode)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.config.label_smoothing)
        logs = {"acc": float((logits.argmax(dim=1) == labels).float().mean())}
        # Epoch means of these are the share of the epoch's iterations in each mode.
        logs.update({f"mode_{c}": float(c == mode) for c in CODES})
        return loss, logs

    def validate(self, device: torch.device) -> dict[str, float]:
        outputs = clip_outputs(self.model, self.val, device, self.config.loop.batch_size)
        metrics = classification_metrics(outputs, multi_label=False)
        return {
            "epoch": self.train.epoch + 1,  # ``--set loop.select_metric=epoch`` keeps the last epoch
            "val_acc": metrics["acc_av"],
            "val_acc_audio_only": metrics["acc_audio_only"],
            "val_acc_video_only": metrics["acc_video_only"],
            "val_loss": float(F.cross_entropy(outputs["logits_av"], outputs["labels"])),
        }

    def close(self) -> None:
        self.store.close()


def finetune_avsiam(
    config: AVSiamFinetuneConfig,
    features: str | Path,
    out: str | Path,
    init: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    show_progress: bool = True,
) -> Artifact:
    """Fine-tune AVSiam on a ``clips-features`` artifact (from the pre-trained ``model`` artifact ``init``, or
    from scratch) into a ``model`` artifact: the epoch with the best held-out audio-visual accuracy; per-epoch
    losses and accuracies (av, audio-only, video-only) in ``metrics.jsonl``."""

    def build() -> tuple[AVSiamFinetuneTask, list[Artifact]]:
        feats = load_artifact(features, kind=CLIPS_FEATURES)
        pre = load_artifact(init, kind=MODEL) if init is not None else None
        return AVSiamFinetuneTask(config, feats, pre), [feats, *([pre] if pre is not None else [])]

    return fit_stage(out, config, build, overwrite=overwrite, resume=resume, show_progress=show_progress)
