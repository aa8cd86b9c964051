"""The ``avkd`` entry point: command groups, and one-line errors with exit codes."""

from __future__ import annotations

import sys

import typer

from avkd import __version__
from avkd.cli import (
    artifacts,
    data,
    demo,
    distill,
    doctor,
    evaluate,
    imports,
    preprocess,
    report,
    sync,
    train,
)
from avkd.core.artifacts import set_command_line
from avkd.core.errors import AvkdError

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
app.command("distill")(distill.distill)
app.command("evaluate")(evaluate.evaluate)
app.command("report")(report.report)
app.command("sync")(sync.sync)
app.add_typer(imports.app, name="import")
app.add_typer(artifacts.app, name="artifacts")
app.command("demo")(demo.demo)
app.command("doctor")(doctor.doctor)


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
    """Run the CLI; an :class:`AvkdError` becomes ``error: <message>`` on stderr and its exit code."""
    set_command_line(["avkd", *(sys.argv[1:] if argv is None else argv)])
    try:
        app(args=argv, prog_name="avkd", standalone_mode=True)
    except AvkdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
