"""``lineage demo``: the whole lineage stage on a local example family, offline, in seconds.

Builds a small model family (fine-tunes, a LoRA adapter, a quantized copy, linear and SLERP
merges with mergekit-style cards), crawls it from its root with descendants into a registry
inside the output folder, and writes the subject's lineage graph in every export format.
"""

from __future__ import annotations

from pathlib import Path

from lineage.cli import render
from lineage.crawler import CrawlOptions, crawl
from lineage.example import build_example
from lineage.exporters import EXPORTERS, export_graph
from lineage.graph import lineage_graph
from lineage.sources.local import LocalSource
from registry.database import Registry


def run_demo(out: Path) -> int:
    """Build, crawl, export; print where everything is. Returns the exit code."""
    out = out.expanduser().resolve()
    models = out / "models"
    family = build_example(models)
    registry = Registry.open(f"sqlite:///{out / 'registry.db'}")
    root = family.repo_ids[0]
    report = crawl(registry, LocalSource(models), [root], CrawlOptions(descendants=True))
    with registry.session() as session:
        graph = lineage_graph(session, family.subject)
        family_graph = lineage_graph(session, root, ancestors=False)
    written = []
    for name, exporter in EXPORTERS.items():
        path = out / f"lineage{exporter.suffix}"
        path.write_text(export_graph(graph, name, subject=family.subject), encoding="utf-8")
        written.append(path)
    # The whole family from its root, for a picture of every relation the demo builds.
    for name in ("json", "mermaid"):
        path = out / f"family{EXPORTERS[name].suffix}"
        path.write_text(export_graph(family_graph, name, subject=root), encoding="utf-8")
        written.append(path)

    render.stdout.print(
        f"[bold]lineage demo[/bold]: {len(report.nodes)} repos crawled from "
        f"{models}, subject [bold]{family.subject}[/bold]"
    )
    for warning in report.warnings:
        render.warning(warning)
    for problem in report.problems:
        render.problem(problem.message)
    render.stdout.print(f"registry: {out / 'registry.db'}")
    for path in written:
        render.stdout.print(f"  {path}")
    render.stdout.print(
        f"next: lineage registry show {family.subject} --db sqlite:///{out / 'registry.db'}"
    )
    return 0 if report.ok else 1
