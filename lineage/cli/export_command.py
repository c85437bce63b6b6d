"""``lineage export``: the brief, graph, BOM, audit and sample logs of one model, in one go."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lineage.cli import render
from lineage.cli.common import DbOption, OutputPathError, check_output_folder, open_registry


def export_command(
    repo: Annotated[str, typer.Argument(help="Repo id as recorded in the registry.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write into (created).")],
    redact: Annotated[
        bool,
        typer.Option("--redact", help="Replace prompts and responses by their sha256 hashes."),
    ] = False,
    no_pdf: Annotated[
        bool, typer.Option("--no-pdf", help="Skip brief.pdf (no WeasyPrint needed).")
    ] = False,
    db: DbOption = None,
) -> None:
    """Write REPO's brief, graph, BOM, audit and sample logs to a folder (no network).

    Writes brief.html, brief.pdf, graph.json, graph.graphml, bom.cdx.json, audit.json and
    samples/*.jsonl from the registry alone.

    Examples:

      lineage export org/merge --out review/

      lineage export org/merge --out review/ --redact
    """
    from lineage.bundle import export_bundle

    check_output_folder(out)
    registry = open_registry(db)
    try:
        result = export_bundle(registry, repo, out, redact=redact, pdf=not no_pdf)
    except OSError as error:
        where = error.filename or out
        raise OutputPathError(
            f"cannot write ({error.strerror or error})", file=str(where)
        ) from error
    for path in result.written:
        render.say(f"wrote {path}")
    for line in result.skipped:
        render.warning(line)
