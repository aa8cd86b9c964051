"""Model registry: models are built by name, so a config file and a command-line flag name the same thing.

timm-style: a model family decorates its entrypoint functions with :func:`register_model`; callers use
:func:`build_model` and :func:`list_models`::

    @register_model
    def vocalist(width: int = 512, **kwargs) -> nn.Module: ...

    @register_model(name="mtdvocalist")
    def _mtd(**kwargs) -> nn.Module: ...

    build_model("vocalist", width=200)
    list_models("voca*")
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any, TypeVar, overload

from torch import nn

from avkd.errors import UsageError

__all__ = ["build_model", "is_model", "list_models", "model_entrypoint", "register_model"]

F = TypeVar("F", bound=Callable[..., nn.Module])

_ENTRYPOINTS: dict[str, Callable[..., nn.Module]] = {}


def _qualified(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


@overload
def register_model(fn: F, *, name: str | None = None) -> F: ...
@overload
def register_model(fn: None = None, *, name: str | None = None) -> Callable[[F], F]: ...
def register_model(fn: F | None = None, *, name: str | None = None) -> F | Callable[[F], F]:
    """Register a model entrypoint under ``name`` (default: the function's name).

    Usable bare (``@register_model``) or with arguments (``@register_model(name="x")``). Registering a
    different function under a taken name raises ``ValueError``; re-registering the same function (a module
    reload) replaces it silently.
    """

    def decorator(f: F) -> F:
        key = name or f.__name__
        old = _ENTRYPOINTS.get(key)
        if old is not None and _qualified(old) != _qualified(f):
            raise ValueError(f"model name {key!r} is already registered by {_qualified(old)}")
        _ENTRYPOINTS[key] = f
        return f

    return decorator(fn) if fn is not None else decorator


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of registered models matching the fnmatch ``pattern`` (case-sensitive)."""
    return sorted(n for n in _ENTRYPOINTS if fnmatchcase(n, pattern))


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model."""
    return name in _ENTRYPOINTS


def model_entrypoint(name: str) -> Callable[..., nn.Module]:
    """The entrypoint function registered as ``name``; ``UsageError`` if there is none."""
    try:
        return _ENTRYPOINTS[name]
    except KeyError:
        known = ", ".join(list_models()) or "(none)"
        raise UsageError(f"unknown model {name!r}; known: {known}") from None


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name`` with keyword arguments ``kwargs``.

    Unknown names and arguments the entrypoint does not accept raise :class:`~avkd.errors.UsageError` (a
    config or ``--set`` mistake), checked against the signature before building so that a ``TypeError`` from
    inside a constructor is not mistaken for a usage error.
    """
    fn = model_entrypoint(name)
    try:
        inspect.signature(fn).bind(**kwargs)
    except TypeError as e:
        raise UsageError(f"bad arguments for model {name!r}: {e}") from None
    return fn(**kwargs)
