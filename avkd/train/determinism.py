"""Deterministic training: the same command on the same machine gives the same weights, hence the same ids.

What is already reproducible without this: every sample is a pure function of (seed, epoch, index), the
initial weights and dropout masks come from the seed, and the DataLoader has its own generator
(:mod:`avkd.train.loop`). What is not: kernels that accumulate in a run-dependent order. On CUDA that is cuDNN's
algorithm choice (``benchmark``) and its non-deterministic convolution backward, cuBLAS's split reductions, and
atomic adds (``index_add_``, scatter, the backward of embedding lookups); on the CPU, oneDNN's convolution
backward may split its reduction over threads. :func:`deterministic_mode` switches all of them to their
deterministic versions for the duration of a run and restores the previous settings afterwards (a library
must not leave global state behind; the tests run many stages in one process).

Same machine means the same thread count as well: a CPU reduction split over 2 threads sums in another order
than over 16, so the intra-op thread count is recorded with the run (``torch_threads`` in its metrics).
A kernel without a deterministic version makes the run fail with torch's error naming it, rather than drift
silently; ``--no-deterministic`` is the way out.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

__all__ = ["CUBLAS_WORKSPACE", "deterministic_mode"]

#: cuBLAS's deterministic workspace setting (CUDA >= 10.2; torch's "Reproducibility" notes). Read when the
#: first cuBLAS handle is made, so it is set before any CUDA work of the run.
CUBLAS_WORKSPACE = ":4096:8"


@contextlib.contextmanager
def deterministic_mode(enabled: bool = True) -> Iterator[None]:
    """Deterministic kernels inside the block when ``enabled`` (else a no-op); the old settings come back after."""
    if not enabled:
        yield
        return
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.backends.mkldnn.deterministic,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.mkldnn.deterministic = True
    try:
        yield
    finally:
        algorithms, warn_only, cudnn_det, cudnn_bench, mkldnn_det, workspace = saved
        torch.use_deterministic_algorithms(algorithms, warn_only=warn_only)
        torch.backends.cudnn.deterministic = cudnn_det
        torch.backends.cudnn.benchmark = cudnn_bench
        torch.backends.mkldnn.deterministic = mkldnn_det
        if workspace is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = workspace
