"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s bench``, ``nox -s demo``, ``nox -s compare``,
``nox -s delay``.

Sessions run in the current environment (``venv_backend = "none"``): a fresh virtualenv per session would
download torch (several GB) each time. Install once with ``pip install -e '.[dev]'``.
"""

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "tests"]

#: Every benchmark script (benchmarks/timing.py is their shared helper, not a benchmark).
BENCHMARKS = sorted(p for p in Path("benchmarks").glob("*.py") if p.name != "timing.py")


@nox.session
def tests(session: nox.Session) -> None:
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.run("ruff", "check", "avkd", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "avkd", "tests", "benchmarks", "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark in turn at its default (real) size (options after ``--`` go to every script)."""
    for script in BENCHMARKS:
        session.run("python", str(script), *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    session.run("avkd", "demo", *session.posargs)


#: The comparison chain in a fresh interpreter (library loggers keep their levels; nox's are DEBUG in-process).
COMPARE = """
import sys
from pathlib import Path
from avkd.tasks.sync.compare import CompareConfig, run_compare
result = run_compare(Path(sys.argv[1]), CompareConfig(syncnet=sys.argv[2] or None))
print(f"report: {result['report']}; SyncNet weights: {result['syncnet_weights']}")
"""


@nox.session
def compare(session: nox.Session) -> None:
    """One table of VocaLiST teacher, MTD student, SyncNet and a PM-trained SyncNet on the synthetic corpus
    (avkd.tasks.sync.compare). ``nox -s compare -- syncnet_v2.model`` (or ``AVKD_SYNCNET=...``) imports real
    SyncNet weights; without them SyncNet's row is a random-weight stand-in. Output: ``AVKD_COMPARE_OUT``
    (default ``avkd-demo/compare/``); a second run reuses every finished artifact."""
    weights = session.posargs[0] if session.posargs else os.environ.get("AVKD_SYNCNET", "")
    out = os.environ.get("AVKD_COMPARE_OUT", "avkd-demo/compare")
    session.run("python", "-c", COMPARE, out, weights)


@nox.session
def delay(session: nox.Session) -> None:
    """The delay test with a trained model (tests/evaluate/test_lse_trained.py): a thin SyncNet trained with
    Perfect Match on a synthetic corpus, then ``avkd lse`` and ``avkd sync`` on clips with a known audio delay
    (minutes of CPU, so the default test run skips it)."""
    session.run(
        "python", "-m", "pytest", "-q", "tests/evaluate/test_lse_trained.py", *session.posargs,
        env={"AVKD_TRAINED_DELAY": "1"},
    )  # fmt: skip
