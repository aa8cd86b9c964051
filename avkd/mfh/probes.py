"""avkd's models cut at a tap, for the permutation salience and the freeze check of ``avkd mfh diagnose``.

A tap is where channels are permuted (:mod:`avkd.mfh.salience`) or frozen:

- ``input``: the model's input features, a channel being one feature of one input stream over all its time
  steps (MulT's ``vision`` are the 35 FACET features, docs/reference/mult-mosei.md §2.1). The emotion track
  only: the sync models' inputs are images and mel spectrograms, whose last axis is not a feature;
- ``last_hs`` (MulT) and ``pooled`` (VocaLiST), both also called ``fusion``: the fused representation that the
  head reads. MulT's ``last_hs`` is the concatenated last time steps of its modality streams (B, 2·d per query
  modality; the student's (B, 3·d)), VocaLiST's ``pooled`` the max over time of the fusion block ``mem`` (B, D);
- ``hidden``: the input of the last linear layer (both families).

The part of the forward after a layer tap is each family's head, called as the model calls it (in eval mode
its dropout is off), so the permuted copies only go through the head, not the whole network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from avkd.core.errors import UsageError
from avkd.models.mult import MulT, MulTStudent
from avkd.models.vocalist import SyncTransformer

__all__ = ["FUSION", "InputProbe", "LayerProbe", "build_probe", "frozen_model", "layer_taps"]

#: What ``fusion`` means for each family.
FUSION = {"mult": "last_hs", "vocalist": "pooled"}

_Head = Callable[[Tensor], Tensor]


def _family(model: nn.Module) -> str:
    if isinstance(model, MulT | MulTStudent):
        return "mult"
    if isinstance(model, SyncTransformer):
        return "vocalist"
    raise UsageError(f"mfh diagnose knows MulT and VocaLiST models, not {type(model).__name__}")


def _heads(model: nn.Module) -> dict[str, tuple[_Head, int]]:
    """Each layer tap's rest of the forward, to 2-D logits (a single sync logit becomes (B, 1)), and its width."""
    if _family(model) == "mult":
        # MulT's head: proj1 -> ReLU -> dropout -> proj2, + residual -> out_layer (avkd.models.mult, §1.2).
        return {
            "last_hs": (lambda h: model._head(h, None), model.proj1.in_features),
            "hidden": (model.out_layer, model.out_layer.in_features),
        }
    # VocaLiST's head: tanh(fc(pooled)) -> classifier (avkd.models.vocalist, §2.5).
    return {
        "pooled": (lambda p: model.classifier(torch.tanh(model.fc(p))), model.fc.in_features),
        "hidden": (model.classifier, model.classifier.in_features),
    }


def layer_taps(model: nn.Module) -> list[str]:
    """The taps ``model`` can be cut at: ``input`` (MulT only), ``fusion`` and its layer taps."""
    return (["input"] if _family(model) == "mult" else []) + ["fusion", *_heads(model)]


class InputProbe:
    """The model cut before its first layer: the input tensors it reads (taken from the first ``len(inputs)``
    items of a batch, in the task's order ``inputs``); the channels of the ``streams`` among them are scored."""

    def __init__(self, model: nn.Module, inputs: Sequence[str], streams: Sequence[str]) -> None:
        self.model = model
        self.inputs = tuple(inputs)
        self.reads = _reads(model)
        unknown = [s for s in streams if s not in self.reads]
        if unknown:
            raise UsageError(f"input stream {unknown[0]!r}: this model reads {', '.join(self.reads)}")
        self.permuted = tuple(self.reads.index(s) for s in streams)
        widths = _widths(model)
        self.names = [f"{s}[{c}]" for s in streams for c in range(widths[s])]

    def features(self, batch: Any) -> tuple[Tensor, ...]:
        device = next(self.model.parameters()).device
        return tuple(batch[self.inputs.index(r)].to(device) for r in self.reads)

    def logits(self, features: tuple[Tensor, ...]) -> Tensor:
        return _as_2d(self.model(**dict(zip(self.reads, features, strict=True))))


def _reads(model: nn.Module) -> tuple[str, ...]:
    # The video-only student ignores text and audio (avkd.models.mult): permuting them would score 0 at a cost.
    return ("vision",) if isinstance(model, MulTStudent) else ("text", "audio", "vision")


def _widths(model: nn.Module) -> dict[str, int]:
    if isinstance(model, MulTStudent):
        return {"vision": model.orig_d_v}
    return dict(zip(("text", "audio", "vision"), model.orig_dims, strict=True))


class LayerProbe:
    """The model cut at a layer tap: ``features`` runs the forward to the tap (recorded with the model's taps),
    ``logits`` runs its head on (possibly permuted or frozen) tap values."""

    permuted = (0,)

    def __init__(self, model: nn.Module, inputs: Sequence[str], tap: str) -> None:
        self.model = model
        self.inputs = tuple(inputs)
        self.tap = tap
        self.head, width = _heads(model)[tap]
        self.names = [f"{tap}[{c}]" for c in range(width)]

    def features(self, batch: Any) -> tuple[Tensor, ...]:
        device = next(self.model.parameters()).device
        args = [batch[i].to(device) for i in range(len(self.inputs))]
        return (self.model(*args, taps=[self.tap]).taps[self.tap],)

    def logits(self, features: tuple[Tensor, ...]) -> Tensor:
        return _as_2d(self.head(features[0]))


def _as_2d(z: Tensor) -> Tensor:
    return z.unsqueeze(1) if z.dim() == 1 else z


def build_probe(
    model: nn.Module, inputs: Sequence[str], tap: str, streams: Sequence[str] | None = None
) -> InputProbe | LayerProbe:
    """The probe of ``model`` at ``tap`` (module docstring); ``streams``: the input streams an ``input`` tap
    scores (default: every input the model reads)."""
    family = _family(model)
    if tap == "fusion":
        tap = FUSION[family]
    if tap == "input":
        if family != "mult":
            raise UsageError(
                "tap 'input': the sync models' inputs are images and spectrograms without feature channels; "
                "use a layer tap (fusion, pooled, hidden)"
            )
        wanted = [s for s in (streams or _reads(model)) if s in _reads(model)]
        return InputProbe(model, inputs, wanted or list(_reads(model)))
    if tap not in _heads(model):
        raise UsageError(f"tap {tap!r}: this {family} model has taps {', '.join(layer_taps(model))}")
    return LayerProbe(model, inputs, tap)


class _Frozen(nn.Module):
    """A model whose channels ``channels`` at a probe's tap are replaced by ``values`` (their means over the
    split) on every forward: variant (B)'s ``my_freeze_new``, with the split's mean instead of the batch's (a
    fixed value, which does not depend on what else is in the batch)."""

    def __init__(
        self, probe: InputProbe | LayerProbe, channels: Sequence[int], values: Sequence[float]
    ) -> None:
        super().__init__()
        self.model = probe.model  # registered: .to() and .eval() reach it
        self.probe = probe
        self.channels = list(channels)
        self.values = [float(v) for v in values]

    def forward(self, *inputs: Tensor | None) -> Tensor:
        features = list(self.probe.features(inputs))
        first = 0
        for index in self.probe.permuted:
            width = features[index].shape[-1]
            picked = [
                (c - first, v)
                for c, v in zip(self.channels, self.values, strict=True)
                if first <= c < first + width
            ]
            if picked:
                tensor = features[index].clone()
                idx = torch.tensor([c for c, _ in picked], device=tensor.device)
                tensor[..., idx] = torch.tensor(
                    [v for _, v in picked], dtype=tensor.dtype, device=tensor.device
                )
                features[index] = tensor
            first += width
        return self.probe.logits(tuple(features))


def frozen_model(
    probe: InputProbe | LayerProbe, channels: Sequence[int], values: Sequence[float]
) -> nn.Module:
    """The probe's model with ``channels`` (indices into ``probe.names``) held at ``values``; the frozen model's
    forward takes the task's inputs, as the model's does, and returns 2-D logits."""
    return _Frozen(probe, channels, values)
