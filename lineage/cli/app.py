"""The ``lineage`` command: a thin Typer layer over the library.

Every command reads and writes the registry (``--db`` or ``LINEAGE_DB``; default a SQLite
file in the user data directory). User mistakes and unreadable repos end in one line on
stderr and a non-zero exit code, never a traceback:
0 everything asked for was processed, 1 some node could not be, 2 bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lineage import __version__
from lineage.cli import render
from lineage.cli.audit_command import audit_command
from lineage.cli.brief_command import brief_command
from lineage.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    DbOption,
    JsonOption,
    LocalOption,
    check_output_file,
    crawl_if_unknown,
    looks_like_path,
    open_registry,
    print_problems,
    report_rows,
    resolve_source,
    run_crawl,
    write_text_output,
)
from lineage.cli.export_command import export_command
from lineage.cli.remediate_command import remediate_command
from lineage.crawler import CrawlOptions
from lineage.errors import InvalidReferenceError, LineageAuditError
from lineage.exporters import EXPORTERS, export_graph, get_exporter
from lineage.graph import attach_audit, lineage_graph
from lineage.references import validate_repo_id, validate_revision
from lineage.verify import verify
from registry import queries
from registry.database import check_registry

app = typer.Typer(
    name="lineage",
    help="Crawl the merge lineage of Hugging Face models, audit their safety against their"
    " parents, and write the compliance brief.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)
registry_app = typer.Typer(help="Inspect the lineage registry.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")
# Commands that load models or render briefs live in modules of their own; their heavy
# imports (torch, transformers, WeasyPrint) happen only when they run.
app.command("audit")(audit_command)
app.command("brief")(brief_command)
app.command("export")(export_command)
app.command("remediate")(remediate_command)


@app.command("crawl")
def crawl_command(
    repos: Annotated[
        list[str], typer.Argument(help="Hub repo ids (org/name), or local model folders.")
    ],
    depth: Annotated[
        int | None, typer.Option(min=0, help="How many levels to follow (default: all).")
    ] = None,
    descendants: Annotated[
        bool, typer.Option("--descendants", help="Also crawl models that declare these as base.")
    ] = False,
    max_nodes: Annotated[int, typer.Option(min=1, help="Stop after this many repos.")] = 500,
    revision: Annotated[
        str | None, typer.Option(help="Branch, tag or commit of the given repos.")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Concurrent fetches.")] = 8,
    no_fingerprint: Annotated[
        bool, typer.Option("--no-fingerprint", help="Skip weight fingerprints.")
    ] = False,
    json_output: JsonOption = False,
    local: LocalOption = None,
    db: DbOption = None,
) -> None:
    """Crawl the lineage of REPOS and record it in the registry.

    Examples:

      lineage crawl mlabonne/NeuralDaredevil-8B-abliterated

      lineage crawl meta-llama/Llama-3.1-8B --descendants --depth 2 --max-nodes 200

      lineage crawl ./models/my-org/my-merge --json
    """
    if revision is not None:
        validate_revision(revision)
    source, repo_ids = resolve_source(repos, local)
    options = CrawlOptions(
        depth=depth,
        descendants=descendants,
        max_nodes=max_nodes,
        revision=revision,
        workers=workers,
        fingerprint=not no_fingerprint,
    )
    registry = open_registry(db)
    report = run_crawl(registry, source, repo_ids, options, quiet=json_output)
    if json_output:
        render.print_json(report.to_dict())
    else:
        render.stdout.print(render.crawl_table(report, report_rows(registry, report)))
    print_problems(report)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_PROBLEMS)


@app.command("graph")
def graph_command(
    repo: Annotated[str, typer.Argument(help="Hub repo id, or a local model folder.")],
    format: Annotated[
        str, typer.Option("--format", "-f", help=f"One of: {', '.join(EXPORTERS)}.")
    ] = "json",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    depth: Annotated[
        int | None, typer.Option(min=0, help="Levels around the repo to include.")
    ] = None,
    local: LocalOption = None,
    db: DbOption = None,
) -> None:
    """Export the lineage graph of REPO from the registry (crawling it first if unknown).

    Examples:

      lineage graph org/merge --format mermaid

      lineage graph org/merge --format cyclonedx -o bom.cdx.json
    """
    get_exporter(format)  # an unknown format fails before any crawl
    if output is not None:
        check_output_file(output)
    source, (repo_id,) = resolve_source([repo], local)
    registry = open_registry(db)
    exit_code = crawl_if_unknown(registry, source, repo_id, CrawlOptions(depth=depth))
    with registry.session() as session:
        # Measured results and findings ride along: the BOM's model card carries them.
        graph = attach_audit(lineage_graph(session, repo_id, max_depth=depth), session, repo_id)
    text = export_graph(graph, format, subject=repo_id)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        write_text_output(output, text)
        render.say(
            f"wrote {output} ({format}, {graph.number_of_nodes()} nodes, "
            f"{graph.number_of_edges()} edges)",
            console=render.stderr,
        )
    raise typer.Exit(exit_code)


@app.command("verify")
def verify_command(
    repo: Annotated[str, typer.Argument(help="Hub repo id, or a local model folder.")],
    json_output: JsonOption = False,
    local: LocalOption = None,
    db: DbOption = None,
) -> None:
    """Check REPO's declared lineage against weight fingerprints.

    Each declared parent is confirmed, contradicted or unverifiable; a merge's recipe is
    recovered from the weights; registry models of the same architecture are searched for
    parents the card does not name. Crawl the family first (`lineage crawl BASE
    --descendants`) so there is something to search. Findings and inferred edges are
    recorded in the registry.

    Examples:

      lineage verify mlabonne/NeuralDaredevil-8B-abliterated

      lineage verify ./models/org/merge --json
    """
    source, (repo_id,) = resolve_source([repo], local)
    registry = open_registry(db)
    exit_code = crawl_if_unknown(registry, source, repo_id, CrawlOptions())
    result = verify(registry, repo_id)
    if json_output:
        render.print_json(result.to_dict())
    else:
        render.print_verification(result.to_dict())
    raise typer.Exit(exit_code)


@registry_app.command("info")
def registry_info(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Where the registry is and what it holds."""
    info = open_registry(db).info()
    data = info.to_dict() if hasattr(info, "to_dict") else vars(info)
    if json_output:
        render.print_json(data)
        return
    render.stdout.print(render.key_value_table("Lineage registry", list(data.items())))


@registry_app.command("check")
def registry_check(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Check the registry's integrity and schema, writing nothing (exit 0 clean, 2 not).

    SQLite files get `PRAGMA quick_check`; every registry gets its tables compared with the
    schema version it is stamped with."""
    result = check_registry(db)
    if json_output:
        render.print_json(result.to_dict())
    elif result.ok:
        render.say(
            f"{result.url}: ok ({result.backend}, schema version {result.schema_version},"
            " integrity and tables checked)"
        )
    else:
        for line in result.problems:
            render.problem(f"{result.url}: {line}")
    raise typer.Exit(EXIT_OK if result.ok else EXIT_USAGE)


@registry_app.command("list")
def registry_list(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Every model in the registry with its head revision and status."""
    with open_registry(db).session() as session:
        rows = [
            row.to_dict() if hasattr(row, "to_dict") else vars(row)
            for row in queries.list_models(session)
        ]
    if json_output:
        render.print_json(rows)
        return
    columns = ["repo_id", "revision", "status", "relation", "architecture", "source"]
    render.stdout.print(
        render.rows_table(
            f"{len(rows)} model(s)",
            columns,
            [
                [row.get(c) if c != "revision" else render.short(row.get(c)) for c in columns]
                for row in rows
            ],
        )
    )


@registry_app.command("show")
def registry_show(
    repo: Annotated[str, typer.Argument(help="Repo id as recorded.")],
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """One model: status, revision history, declared parents with their evidence, children."""
    repo_id = repo if looks_like_path(repo) else validate_repo_id(repo)
    with open_registry(db).session() as session:
        details = queries.model_details(session, repo_id)
    if details is None:
        raise InvalidReferenceError(
            "not in the registry; run `lineage crawl` first", repo_id=repo_id
        )
    if json_output:
        render.print_json(details)
        return
    render.stdout.print(
        render.key_value_table(
            repo_id,
            [
                (key, details[key])
                for key in (
                    "status",
                    "status_reason",
                    "source",
                    "revision",
                    "relation",
                    "architecture",
                    "parameter_count",
                    "license",
                )
            ],
        )
    )
    render.stdout.print(
        render.rows_table(
            "Parents",
            ["parent", "relation", "method", "weight", "role", "evidence"],
            [
                [
                    p["parent"],
                    p["relation"],
                    p.get("merge_method"),
                    p.get("weight"),
                    p.get("role"),
                    "; ".join(
                        f"{e['source']} ({e.get('file') or ''} {e.get('field') or ''})".strip()
                        for e in p["evidence"]
                    ),
                ]
                for p in details["parents"]
            ],
        )
    )
    render.stdout.print(
        render.rows_table(
            "Children",
            ["child", "relation"],
            [[c["child"], c["relation"]] for c in details["children"]],
        )
    )
    render.stdout.print(
        render.rows_table(
            "Revisions",
            ["sha", "status", "crawled"],
            [[r["sha"], r["status"], r["crawled_at"]] for r in details["revisions"]],
        )
    )


@app.command("demo")
def demo_command(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the example models, registry and exports.")
    ] = Path("lineage-demo"),
) -> None:
    """Build a model family, crawl, verify and audit it, write the brief (offline, CPU).

    A few minutes on a CPU; everything goes under --out."""
    from lineage.cli.demo_output import print_demo
    from lineage.demo import run_demo

    say = render.stdout.print
    say(f"[bold]lineage demo[/bold] in {render.safe(str(out.expanduser().resolve()))}")
    outcome = run_demo(
        out,
        progress=lambda message: say(f"  {render.safe(message)}", highlight=False),
        detail=_dim_on_terminal,
    )
    raise typer.Exit(print_demo(outcome))


def _dim_on_terminal(message: str) -> None:
    """A long job's finer steps: dim, on stderr, and only to a terminal."""
    if sys.stderr.isatty():
        render.stderr.print(f"[dim]{render.safe(message)}[/dim]", highlight=False)


def version_callback(value: bool) -> None:
    if value:
        render.stdout.print(f"lineage-audit {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """lineage-audit: where did this merged model come from, and what did its cards declare?"""


def main() -> None:
    """Console entry point: user-facing errors become one line and an exit code.

    Click itself turns usage mistakes into a usage line and exit code 2; what reaches here
    is this project's typed errors, each class saying its exit code (``exit_code``), and any
    other exception is a bug with its traceback.
    """
    try:
        app()
    except LineageAuditError as error:
        render.problem(str(error))
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        render.problem(
            "interrupted; what was finished is recorded: run the same command to continue"
        )
        sys.exit(130)
