"""Model registry: models are built by name, so a config file and a command-line flag name the same thing.

timm-style, over the one registry mechanism of :mod:`avkd.core.registry`: a model family decorates its
entrypoints (functions or classes) with :func:`register_model`; callers use :func:`build_model` and
:func:`list_models`::

    @register_model
    def vocalist(width: int = 512, **kwargs) -> nn.Module: ...

    build_model("vocalist", width=200)
    list_models("voca*")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from avkd.core.registry import Registry

__all__ = ["MODELS", "build_model", "is_model", "list_models", "model_entrypoint", "register_model"]

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")

#: ``@register_model`` or ``@register_model(name="x")``.
register_model = MODELS.register


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of registered models matching the fnmatch ``pattern`` (case-sensitive)."""
    return sorted(MODELS.names(pattern))


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model."""
    return name in MODELS


def model_entrypoint(name: str) -> Callable[..., nn.Module]:
    """The entrypoint registered as ``name``; ``UsageError`` if there is none."""
    return MODELS.get(name)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name``; unknown names and arguments are ``UsageError``."""
    return MODELS.build(name, **kwargs)
