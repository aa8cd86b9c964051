"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s bench``, ``nox -s demo``.

Sessions run in the current environment (``venv_backend = "none"``): a fresh virtualenv per session would
download torch (several GB) each time. Install once with ``pip install -e '.[dev]'``.
"""

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
