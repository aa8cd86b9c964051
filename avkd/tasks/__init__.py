"""Tasks: each track of avkd with its configs, stages, evaluator, report section and demo (:mod:`avkd.tasks.base`).

Importing this package registers the built-in tasks, ``sync``, ``emotion`` (alias ``mosei``) and ``avsiam``
(alias ``clips``).
"""

from __future__ import annotations

from avkd.tasks.avsiam import task as _avsiam  # noqa: F401  (registration)
from avkd.tasks.base import (
    STAGES,
    TASKS,
    RunOptions,
    Task,
    get_task,
    register_task,
    task_for_features,
    task_of,
)
from avkd.tasks.emotion import task as _emotion  # noqa: F401  (registration)
from avkd.tasks.sync import task as _sync  # noqa: F401  (registration)

__all__ = [
    "STAGES",
    "TASKS",
    "RunOptions",
    "Task",
    "get_task",
    "register_task",
    "task_for_features",
    "task_of",
]
