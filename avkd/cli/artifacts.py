"""``avkd artifacts``: inspect artifacts and their lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avkd.cli.common import JsonOption, emit_json
from avkd.core.artifacts import lineage, load_artifact

app = typer.Typer(help="Inspect artifacts.", no_args_is_help=True)


@app.command("show")
def show(
    path: Annotated[Path, typer.Argument(help="Artifact directory (or its .partial sibling).")],
    json_out: JsonOption = False,
) -> None:
    """Print an artifact's manifest summary and its lineage (upstream artifacts, and whether they changed)."""
    art = load_artifact(path, allow_partial=True, verify=False)  # shown as it is, its state in the lineage
    rows = lineage(art)
    if json_out:
        emit_json({"manifest": art.manifest, "lineage": rows})
        return
    m = art.manifest
    total = sum(f["size"] for f in art.files.values())
    typer.echo(f"{art.path}")
    typer.echo(f"  kind     {m['kind']} (schema {m['schema']})")
    typer.echo(f"  status   {m['status']}")
    typer.echo(f"  id       {m.get('id')}")
    typer.echo(f"  created  {m.get('created')} by avkd {m.get('avkd_version')}")
    typer.echo(f"  command  {' '.join(m.get('command', []))}")
    typer.echo(f"  files    {len(art.files)} ({total / 1e6:.1f} MB)")
    for key, value in m.get("metrics", {}).items():
        typer.echo(f"  {key:<8} {value}")
    typer.echo("lineage")
    for row in rows:
        typer.echo(f"  {'  ' * row['depth']}{row['kind']} {row['id']} {row['path']} [{row['state']}]")


@app.command("verify")
def verify(
    paths: Annotated[list[Path], typer.Argument(help="Artifact directories.", show_default=False)],
    full: Annotated[
        bool,
        typer.Option(help="Hash every file (default: large files by sampled blocks) and list unlisted ones."),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Check artifacts against their manifests: every file's presence, size and hash, and the id. Exit 1 with one
    line per problem."""
    from avkd.core.artifacts import load_artifact, verify_artifact

    results = []
    for path in paths:
        art = load_artifact(path, allow_partial=True, verify=False)
        results.append({"path": str(path), "id": art.id, "problems": verify_artifact(art, full=full)})
    if json_out:
        emit_json({"ok": not any(r["problems"] for r in results), "artifacts": results})
    else:
        for r in results:
            typer.echo(
                f"{r['path']}: {'ok' if not r['problems'] else str(len(r['problems'])) + ' problem(s)'}"
            )
    for r in results:
        for problem in r["problems"]:
            typer.echo(f"error: {problem}", err=True)
    if any(r["problems"] for r in results):
        raise typer.Exit(1)
