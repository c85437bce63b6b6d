"""The lineage graph of one model, built from the registry alone (no network).

Parent -> child ``networkx.DiGraph``; node and edge attributes are the ones the exporters
document (see ``lineage.exporters``). The same registry content always gives the same graph.
"""

from __future__ import annotations

from dataclasses import asdict

import networkx as nx
from sqlmodel import Session

from registry import queries

NODE_FIELDS = (
    "revision",
    "status",
    "status_reason",
    "source",
    "architecture",
    "model_type",
    "parameter_count",
    "license",
    "relation",
    "tags",
    "declared_evaluations",
    "created_at",
    "last_modified",
)
EDGE_FIELDS = (
    "relation",
    "declared",
    "evidence",
    "merge_method",
    "weight",
    "density",
    "t",
    "role",
    "parent_revision",
    "lora",
    "parameters",
    "confidence",
)


def _iso(value) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else value


def lineage_graph(
    session: Session,
    subject: str,
    *,
    ancestors: bool = True,
    descendants: bool = True,
    max_depth: int | None = None,
) -> nx.DiGraph:
    """The subject with its ancestors and/or descendants as recorded in the registry."""
    members = {subject}
    if ancestors:
        members.update(repo for repo, _ in queries.ancestors(session, subject, max_depth=max_depth))
    if descendants:
        members.update(
            repo for repo, _ in queries.descendants(session, subject, max_depth=max_depth)
        )
    nodes, edges = queries.lineage_subgraph(session, sorted(members))
    graph = nx.DiGraph(subject=subject)
    for node in sorted(nodes, key=lambda n: n.repo_id):
        data = asdict(node)
        attributes = {key: _iso(data.get(key)) for key in NODE_FIELDS}
        attributes["subject"] = node.repo_id == subject
        graph.add_node(node.repo_id, **attributes)
    for edge in sorted(edges, key=lambda e: (e.parent, e.child, not e.declared)):
        if graph.has_edge(edge.parent, edge.child):
            continue  # a declared edge is never replaced by an inferred one
        data = asdict(edge)
        graph.add_edge(edge.parent, edge.child, **{key: data.get(key) for key in EDGE_FIELDS})
    return graph
