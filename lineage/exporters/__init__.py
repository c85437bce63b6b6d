"""Exporters of a lineage graph, a ``PluginRegistry`` keyed by format name.

The graph is a ``networkx.DiGraph`` (parent -> child) as the registry builds it; every
exporter returns text, the same text for the same graph::

    >>> from lineage.exporters import export_graph, EXPORTERS     # doctest: +SKIP
    >>> text = export_graph(graph, "cyclonedx", subject="org/model")  # doctest: +SKIP
    >>> path = f"lineage{EXPORTERS['cyclonedx'].suffix}"         # doctest: +SKIP

``subject`` names the repo the user asked about; left out, it is the node whose ``subject``
attribute is true (if any).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx

from lineage.errors import UnknownFormatError
from lineage.exporters.cyclonedx import render_cyclonedx
from lineage.exporters.dot import render_dot
from lineage.exporters.flatten import resolve_subject
from lineage.exporters.gexf import render_gexf
from lineage.exporters.graphml import render_graphml
from lineage.exporters.json_format import render_json
from lineage.exporters.mermaid import render_mermaid
from lineage.plugins import PluginRegistry

__all__ = ["EXPORTERS", "Exporter", "UnknownFormatError", "export_graph", "get_exporter"]


@dataclass(frozen=True)
class Exporter:
    """One export format: its name, file suffix, media type and renderer."""

    name: str
    suffix: str
    media_type: str
    description: str
    renderer: Callable[[nx.DiGraph, str | None], str]

    def render(self, graph: nx.DiGraph, *, subject: str | None = None) -> str:
        return self.renderer(graph, resolve_subject(graph, subject))


EXPORTERS: PluginRegistry[Exporter] = PluginRegistry("export format", unknown=UnknownFormatError)
for _exporter in (
    Exporter(
        "json",
        ".json",
        "application/json",
        "networkx node-link JSON (nodes, edges, every attribute)",
        render_json,
    ),
    Exporter(
        "graphml",
        ".graphml",
        "application/graphml+xml",
        "GraphML with flattened attributes (yEd, Gephi, Cytoscape)",
        render_graphml,
    ),
    Exporter(
        "gexf",
        ".gexf",
        "application/gexf+xml",
        "GEXF 1.2 with flattened attributes (Gephi)",
        render_gexf,
    ),
    Exporter("dot", ".dot", "text/vnd.graphviz", "Graphviz DOT", render_dot),
    Exporter("mermaid", ".mmd", "text/plain", "Mermaid flowchart", render_mermaid),
    Exporter(
        "cyclonedx",
        ".cdx.json",
        "application/vnd.cyclonedx+json; version=1.6",
        "CycloneDX 1.6 ML-BOM with pedigree and dependencies",
        render_cyclonedx,
    ),
):
    EXPORTERS.add(_exporter.name, _exporter)


def get_exporter(fmt: str) -> Exporter:
    """The exporter named ``fmt`` (case and surrounding spaces ignored); an unknown name raises
    ``UnknownFormatError``, which lists the known formats and suggests the closest."""
    return EXPORTERS.get(str(fmt).strip().lower())


def export_graph(graph: nx.DiGraph, fmt: str, *, subject: str | None = None) -> str:
    """``graph`` rendered in the format named ``fmt`` (a key of ``EXPORTERS``)."""
    return get_exporter(fmt).render(graph, subject=subject)
