"""The ``avkd`` entry point: command groups, and one-line errors with exit codes."""

from __future__ import annotations

import os
import sys

import typer

from avkd import __version__
from avkd.cli import (
    artifacts,
    bench,
    data,
    demo,
    distill,
    doctor,
    evaluate,
    export,
    imports,
    lse,
    mfh,
    preprocess,
    pretrain,
    report,
    sync,
    train,
)
from avkd.core.artifacts import set_command_line
from avkd.core.errors import AvkdError
from avkd.core.progress import mute
from avkd.core.world import world_from_env

app = typer.Typer(
    name="avkd",
    help="Audio-visual knowledge distillation: preprocess, train, distill, evaluate, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(preprocess.app, name="preprocess")
app.add_typer(train.app, name="train")
app.command("pretrain")(pretrain.pretrain)
app.command("distill")(distill.distill)
app.command("evaluate")(evaluate.evaluate)
app.command("export")(export.export)
app.command("bench")(bench.bench)
app.command("report")(report.report)
app.command("sync")(sync.sync)
app.command("lse")(lse.lse)
app.add_typer(imports.app, name="import")
app.add_typer(artifacts.app, name="artifacts")
app.command("demo")(demo.demo)
app.command("doctor")(doctor.doctor)
app.add_typer(mfh.app, name="mfh")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"avkd {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """avkd command line."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI behind one error boundary: whatever goes wrong is one line ``error: <file>: <reason>`` on
    stderr and an exit code (1 failure, 2 usage, 75 pre-empted, 130 interrupted), never a traceback.

    :class:`AvkdError` carries its own message and code; an ``OSError`` names its file; anything else is an
    internal error, reported in one line (``AVKD_TRACEBACK=1`` shows the traceback for a bug report).
    """
    set_command_line(["avkd", *(sys.argv[1:] if argv is None else argv)])
    try:
        if not world_from_env().is_main:
            # One voice per job under torchrun / srun: rank 0 prints and logs; the others say only what fails.
            mute()
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of the process
        # Standalone mode: Typer prints its own usage errors (exit 2) and help; what a command raises comes here.
        app(args=argv, prog_name="avkd", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        return _error("interrupted", 130)
    except AvkdError as exc:
        return _error(str(exc), exc.exit_code)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or exc}", 1)
    except Exception as exc:
        if os.environ.get("AVKD_TRACEBACK"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        return _error(
            f"internal error: {type(exc).__name__}: {first} (rerun with AVKD_TRACEBACK=1 and report it)", 1
        )
    return 0


def _error(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
