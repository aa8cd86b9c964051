"""Which training process this is, from the launcher's environment (no torch: the command line reads it at start-up).

torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; Slurm's ``srun`` with
one task per GPU sets ``SLURM_PROCID``, ``SLURM_NTASKS`` and ``SLURM_LOCALID``, and the master is the first host of
``SLURM_JOB_NODELIST``. Joining the process group is :func:`avkd.models.distributed.init_world`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from avkd.core.errors import UsageError

__all__ = ["World", "first_host", "slurm_rendezvous", "world_from_env"]


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 is the one that writes)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    #: Where the size came from: ``single``, ``torchrun`` or ``slurm``.
    launcher: str = "single"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list: ``gpu[03-05,07],cpu1`` → ``gpu03``; ``node7`` → ``node7``.

    Slurm's compressed syntax is a prefix and a bracketed list of numbers or ranges (zero padding kept). This
    is what ``scontrol show hostnames | head -n1`` prints, without needing ``scontrol`` inside a container.
    """
    first = re.split(r",(?![^\[]*\])", nodelist.strip())[0]
    match = re.fullmatch(r"([^\[]*)\[([^\]]+)\](.*)", first)
    if match is None:
        return first
    prefix, spec, suffix = match.groups()
    return prefix + spec.split(",")[0].split("-")[0] + suffix


def _int_env(env: dict[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise UsageError(f"environment variable {name}={env[name]!r} is not an integer") from None


def world_from_env(env: dict[str, str] | None = None) -> World:
    """Read the launcher's variables (torchrun first: inside ``srun torchrun`` its workers see both)."""
    env = dict(os.environ if env is None else env)
    if "RANK" in env and "WORLD_SIZE" in env:
        return World(
            _int_env(env, "RANK"),
            _int_env(env, "WORLD_SIZE"),
            _int_env(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0,
            "torchrun",
        )
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env and _int_env(env, "SLURM_NTASKS") > 1:
        # A job step of several tasks (srun --ntasks N): each task is one rank. One task (a plain sbatch
        # script, or the batch shell itself) is a world of one.
        return World(
            _int_env(env, "SLURM_PROCID"),
            _int_env(env, "SLURM_NTASKS"),
            _int_env(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0,
            "slurm",
        )
    return World()


def slurm_rendezvous(w: World) -> None:
    # torch's env:// init reads these; under srun nobody else sets them. The port is derived from the job id
    # so that two jobs sharing a node do not collide; MASTER_PORT in the job script overrides it.
    os.environ.setdefault("RANK", str(w.rank))
    os.environ.setdefault("WORLD_SIZE", str(w.size))
    os.environ.setdefault("LOCAL_RANK", str(w.local_rank))
    nodelist = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST")
    if "MASTER_ADDR" not in os.environ:
        if not nodelist:
            raise UsageError("srun with several tasks but no SLURM_JOB_NODELIST: set MASTER_ADDR")
        os.environ["MASTER_ADDR"] = first_host(nodelist)
    job = os.environ.get("SLURM_JOB_ID", "0")
    os.environ.setdefault("MASTER_PORT", str(20000 + int(job) % 20000 if job.isdigit() else 29500))
