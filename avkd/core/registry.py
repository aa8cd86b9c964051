"""One name → thing mechanism for every pluggable part: models, losses, weightings, detectors, decoders, methods
and tasks, so that a config file and a command-line flag name the same thing and list the same choices.

timm-style: a family decorates its entrypoints (functions or classes) with ``register``; callers use ``build``,
``get`` and ``names``::

    MODELS = Registry("model")

    @MODELS.register
    def vocalist(width: int = 512) -> nn.Module: ...

    @MODELS.register(name="mtdvocalist")
    def _mtd(width: int = 200) -> nn.Module: ...

    MODELS.build("vocalist", width=200)      # arguments checked against the signature first
    MODELS.names("voca*")                    # ['vocalist']

A registry may also hold plain objects (``register_object``: the tasks, the distillation methods), looked up with
``get``. Unknown names, and arguments an entrypoint does not accept, are :class:`~avkd.core.errors.UsageError`:
a config or command-line mistake, named with the registry's choices.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from fnmatch import fnmatchcase
from typing import Any, Generic, TypeVar, overload

from avkd.core.errors import UsageError

__all__ = ["Registry"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _qualified(obj: Any) -> str:
    """A stable name for an entry: ``module.qualname``; a ``functools.partial`` by its function and arguments."""
    if isinstance(obj, functools.partial):
        return f"{_qualified(obj.func)}(*{obj.args!r}, **{obj.keywords!r})"
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _same(old: Any, new: Any) -> bool:
    """Whether ``new`` is ``old`` registered again (a module reload), not another entry under a taken name:
    callables and classes by their qualified names, values that compare (methods, dicts) by their values, other
    objects (task instances) by their class."""
    if old is new:
        return True
    if callable(old) or callable(new):
        return callable(old) and callable(new) and _qualified(old) == _qualified(new)
    if dataclasses.is_dataclass(old) or type(old).__eq__ is not object.__eq__:
        return bool(old == new)
    return _qualified(type(old)) == _qualified(type(new))


class Registry(Generic[T]):
    """Names → entries of one kind (``what``: "model", "loss", ...), with aliases."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, Any] = {}
        self._aliases: dict[str, str] = {}

    # ------------------------------------------------------------------------------------------- registering
    def _add(self, key: str, entry: Any, aliases: Iterable[str]) -> None:
        if key in self._aliases:
            raise ValueError(f"{self.what} name {key!r} is already an alias of {self._aliases[key]!r}")
        old = self._entries.get(key)
        # Re-registering the same entrypoint (a module reload) replaces it; another one under a taken name is a bug.
        if old is not None and not _same(old, entry):
            raise ValueError(f"{self.what} name {key!r} is already registered by {_qualified(old)}")
        self._entries[key] = entry
        for alias in aliases:
            taken = self._aliases.get(alias, key)
            if alias in self._entries or taken != key:
                raise ValueError(f"{self.what} alias {alias!r} is already taken")
            self._aliases[alias] = key

    @overload
    def register(self, fn: F, *, name: str | None = None, aliases: Iterable[str] = ()) -> F: ...
    @overload
    def register(
        self, fn: None = None, *, name: str | None = None, aliases: Iterable[str] = ()
    ) -> Callable[[F], F]: ...
    def register(
        self, fn: F | None = None, *, name: str | None = None, aliases: Iterable[str] = ()
    ) -> F | Callable[[F], F]:
        """Register an entrypoint under ``name`` (default: its ``__name__``); bare or with arguments.

        A class is an entrypoint too (its constructor's signature is checked), and so is a
        ``functools.partial`` that fixes some of a class's arguments (one class, several registered variants).
        """

        def decorator(f: F) -> F:
            self._add(name or f.__name__, f, tuple(aliases))
            return f

        return decorator(fn) if fn is not None else decorator

    def register_object(self, name: str, entry: T, aliases: Iterable[str] = ()) -> T:
        """Register a plain object (a task, a method) under ``name``."""
        self._add(name, entry, tuple(aliases))
        return entry

    # ------------------------------------------------------------------------------------------------ lookup
    def canonical(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases; UsageError if there is none."""
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        known = ", ".join(self.names()) or "(none)"
        raise UsageError(f"unknown {self.what} {name!r}; known: {known}")

    def get(self, name: str) -> T:
        """The entry registered as ``name`` (or an alias of it)."""
        return self._entries[self.canonical(name)]

    def __iter__(self) -> Iterator[str]:
        """The registered names, in registration order."""
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or name in self._aliases)

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching the fnmatch ``pattern``, in registration order (aliases not listed)."""
        return [n for n in self._entries if fnmatchcase(n, pattern)]

    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    def check_arguments(self, name: str, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        """The entrypoint of ``name`` after checking that it accepts ``args`` and ``kwargs``.

        Checked against the signature before anything is built, so that a ``TypeError`` raised inside a
        constructor is never mistaken for a usage error.
        """
        entry = self.get(name)
        signature = inspect.signature(entry)
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            accepted = [
                p.name
                for p in signature.parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
            raise UsageError(
                f"bad arguments for {self.what} {self.canonical(name)!r}: {exc} "
                f"(it takes {', '.join(accepted) or 'no arguments'})"
            ) from None
        return entry

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the entrypoint registered as ``name`` with ``args`` and ``kwargs`` (checked first)."""
        return self.check_arguments(name, *args, **kwargs)(*args, **kwargs)
