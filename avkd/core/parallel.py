"""Order-preserving parallel map over processes with a bounded number of tasks in flight."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple[Any, ...] = (),
    window: int | None = None,
) -> Iterator[R]:
    """Yield ``fn(item)`` in input order, computed by ``workers`` processes (in-process when ``workers <= 1``).

    At most ``window`` tasks (default ``4 * workers``) are in flight, so results of a 100k-item corpus never pile
    up in memory when the consumer (an HDF5 writer) is slower than the workers. Workers are spawned, not forked:
    forking a process that has already used torch's or OpenMP's thread pools can deadlock the child.
    """
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            yield fn(item)
        return
    window = window or 4 * workers
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_pool_worker, initargs=(initializer, initargs)
    ) as pool:
        pending: deque[Future[R]] = deque()
        iterator = iter(items)
        for item in iterator:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                break
        while pending:
            result = pending.popleft().result()
            for item in iterator:
                pending.append(pool.submit(fn, item))
                break
            yield result


def _init_pool_worker(initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]) -> None:
    """Each pool process uses one intra-op thread: the pool already has a process per core, and more threads
    would oversubscribe them. (Only pool processes: the in-process path leaves the caller's settings alone.)"""
    import torch

    torch.set_num_threads(1)
    if initializer is not None:
        initializer(*initargs)
