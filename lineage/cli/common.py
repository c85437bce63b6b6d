"""What the ``lineage`` commands share: registry and source options, crawling on demand.

Command modules import from here, never from ``app`` (which imports them to register
them), so any command module can be imported first.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lineage import pipeline
from lineage.cli import render
from lineage.crawler import CrawlOptions, CrawlReport, crawl
from lineage.errors import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, LineageError
from lineage.references import validate_repo_id
from lineage.sources import LocalSource, Source, source_for
from registry import queries
from registry.database import Registry


class OutputPathError(LineageError):
    """An output path that cannot be written as asked (a folder, a missing folder, a file)."""

    exit_code = EXIT_USAGE


def check_output_file(path: Path) -> None:
    """Refuse, before any work, an output file that could not be written."""
    if path.is_dir():
        raise OutputPathError("is a folder; name a file to write", file=str(path))
    parent = path.parent
    if not parent.is_dir():
        raise OutputPathError(
            f"the folder {parent} does not exist; create it first", file=str(path)
        )


def check_output_folder(path: Path) -> None:
    """Refuse, before any work, an output folder that exists as something else."""
    if path.exists() and not path.is_dir():
        raise OutputPathError(
            "exists and is not a folder; name a folder to write into", file=str(path)
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(f"{parent} is not a folder", file=str(path))
            break


def write_text_output(path: Path, text: str) -> None:
    """Write ``text`` to ``path``; an OS refusal becomes a one-line ``OutputPathError``."""
    check_output_file(path)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise OutputPathError(
            f"cannot write ({error.strerror or error})", file=str(path)
        ) from error


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="LINEAGE_DB",
        show_envvar=True,
        help="Registry URL (any SQLAlchemy URL). Default: a SQLite file in the user data "
        "directory (see `lineage registry info`).",
    ),
]
LocalOption = Annotated[
    Path | None,
    typer.Option(
        "--local", help="Read repos from this local tree (<root>/<org>/<name>/) instead of the Hub."
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")
]


def looks_like_path(argument: str) -> bool:
    """Explicit paths only: ``org/name`` always means a Hub repo, even if such a folder exists."""
    return LocalSource.claims(argument)


def resolve_source(repos: list[str], local: Path | None) -> tuple[Source, list[str]]:
    """Pick the source for the repos given: the --local tree, else the one registered source
    (``lineage.sources.SOURCES``) that claims them all: model folders by path, or the Hub."""
    if local is not None:
        return LocalSource(local), [validate_repo_id(repo) for repo in repos]
    return source_for(repos)


def open_registry(db: str | None) -> Registry:
    return Registry.open(db)


def run_crawl(
    registry: Registry, source: Source, repos: list[str], options: CrawlOptions, *, quiet: bool
) -> CrawlReport:
    if quiet or not sys.stderr.isatty():
        return crawl(registry, source, repos, options)
    with Progress(
        TextColumn("[bold]crawling[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=render.stderr,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=len(repos))

        def on_progress(done: int, queued: int, repo_id: str) -> None:
            progress.update(task, completed=done, total=queued, description=repo_id)

        return crawl(registry, source, repos, options, progress=on_progress)


def report_rows(registry: Registry, report: CrawlReport) -> list[dict]:
    with registry.session() as session:
        rows = {row.repo_id: row for row in queries.list_models(session)}
    result = []
    for repo_id, status in report.nodes.items():
        row = rows.get(repo_id)
        result.append(
            {
                "repo_id": repo_id,
                "status": status,
                "revision": getattr(row, "revision", None),
                "relation": getattr(row, "relation", None),
                "parents": list(getattr(row, "parents", []) or []),
                "architecture": getattr(row, "architecture", None),
                "parameter_count": getattr(row, "parameter_count", None),
            }
        )
    return sorted(result, key=lambda row: row["repo_id"])


def print_problems(report: CrawlReport) -> None:
    for warning in report.warnings:
        render.warning(warning)
    for problem in report.problems:
        render.problem(problem.message)


def crawl_if_unknown(
    registry: Registry, source: Source, repo_id: str, options: CrawlOptions
) -> int:
    """Crawl ``repo_id`` quietly when the registry has never seen it; the exit code so far."""
    report = pipeline.crawl_if_unknown(registry, source, repo_id, options)
    if report is None:
        return EXIT_OK
    print_problems(report)
    return EXIT_OK if report.ok else EXIT_PROBLEMS
