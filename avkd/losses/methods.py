"""A distillation method: a registered loss with its options, the weighting that combines it with the student's
own loss, and (for VocaLiST's CAD/VR losses) the layers it distils. One table of methods per task
(:mod:`avkd.tasks.sync.methods`, :mod:`avkd.tasks.emotion.methods`), each a registry, so a method is spelled
the same way on the command line, in a config file and in a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from avkd.core.registry import Registry

__all__ = ["Method", "method_table"]


@dataclass(frozen=True)
class Method:
    """What ``avkd distill --method NAME`` trains with.

    ``loss`` is a name in the loss registry, or None for the student alone (no teacher pass at all);
    ``options`` are that loss's keyword arguments; ``weighting`` is the default weighting (None: the task's
    fixed objective); ``layers`` the default CAD/VR layer selection (None: the loss takes no layers).
    """

    name: str
    loss: str | None
    description: str
    options: dict[str, Any] = field(default_factory=dict)
    weighting: str | None = None
    layers: str | None = None


def method_table(task: str, methods: list[Method]) -> Registry[Method]:
    """A registry of ``methods`` under their names (the order is the order of the paper's tables)."""
    table: Registry[Method] = Registry(f"{task} distillation method")
    for method in methods:
        table.register_object(method.name, method)
    return table
