"""``lineage brief``: the compliance brief of one model, from the registry alone.

Kept apart from ``app.py`` like ``lineage audit``: WeasyPrint (the optional ``pdf`` extra)
is imported only when a PDF is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lineage.cli import render
from lineage.cli.common import EXIT_OK, DbOption, LocalOption, open_registry, resolve_source


def brief_command(
    repo: Annotated[str, typer.Argument(help="Hub repo id, or a local model folder.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Where to write the brief: FILE.html or FILE.pdf (PDF/A-3b)."
        ),
    ],
    redact: Annotated[
        bool,
        typer.Option(
            "--redact", help="Replace every prompt and model answer with the sha256 of its text."
        ),
    ] = False,
    local: LocalOption = None,
    db: DbOption = None,
) -> None:
    """Write the compliance brief of REPO: verdict, lineage, method, results, findings.

    Rendered from the registry alone (no network): crawl, verify and audit the model first.
    The PDF carries the CycloneDX BOM as an attached file; set SOURCE_DATE_EPOCH for
    byte-identical output.

    Examples:

      lineage brief org/merge -o brief.pdf

      lineage brief org/merge -o brief.html --redact
    """
    from lineage.pipeline import verify_brief_models
    from lineage.report.brief import write_brief

    _, (repo_id,) = resolve_source([repo], local)
    registry = open_registry(db)
    verify_brief_models(registry, repo_id)  # the brief reads the stored verifications
    path = write_brief(registry, repo_id, output, redact=redact)
    render.say(f"wrote {path}", console=render.stderr)
    raise typer.Exit(EXIT_OK)
