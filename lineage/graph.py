"""The lineage graph of one model, built from the registry alone (no network).

Parent -> child ``networkx.DiGraph``; node and edge attributes are the ones the exporters
document (see ``lineage.exporters``). The same registry content always gives the same graph.
"""

from __future__ import annotations

from dataclasses import asdict

import networkx as nx
from sqlmodel import Session

from lineage.vocabulary import suite_spec
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


def attach_audit(graph: nx.DiGraph, session: Session, subject: str) -> nx.DiGraph:
    """Add what the registry knows beyond lineage to ``graph``'s nodes, in place.

    - ``measured_evaluations``: each suite the subject's latest audit ran on that model:
      suite, kind, metric (asr | over_refusal | accuracy), value, 95% CI, n, judge.
    - ``findings``: every finding recorded about the model's head revision (verify and
      audit stages), as kind, severity, stage, against, message.
    ``graph.graph["audit"]`` holds the audit's judge and options, or None if never audited.
    """
    from registry.evaluations import audit_document, latest_audit
    from registry.findings import findings_for

    record = latest_audit(session, subject)
    graph.graph["audit"] = (
        None
        if record is None
        else {
            "judge": f"{record.judge_id}@{record.judge_version}",
            "created_at": _iso(record.created_at),
            "options": record.options,
        }
    )
    models = audit_document(record).models if record is not None else {}
    for node in graph.nodes:
        measured = []
        evaluated = models.get(node)
        for suite_name, suite in sorted(evaluated.suites.items() if evaluated else []):
            spec = suite_spec(suite.kind)  # what it measures, and under which name
            if spec is None:
                continue
            metric, direct = spec.metric, spec.rate_is_metric
            low, high = suite.ci
            measured.append(
                {
                    "suite": suite_name,
                    "kind": suite.kind,
                    "metric": metric,
                    "value": suite.rate if direct else round(1 - suite.rate, 6),
                    "ci": [low, high] if direct else [round(1 - high, 6), round(1 - low, 6)],
                    "n": suite.n,
                    "judge": graph.graph["audit"]["judge"],
                }
            )
        graph.nodes[node]["measured_evaluations"] = measured
        graph.nodes[node]["findings"] = [
            {
                "kind": finding.kind,
                "severity": finding.severity,
                "stage": finding.stage,
                "against": finding.related_repo_id,
                "message": finding.message,
            }
            for finding in findings_for(session, node)
        ]
    return graph
