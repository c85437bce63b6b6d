"""Section 3, lineage and provenance: ancestors, the figure, the recipe, weight verification."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
from markupsafe import Markup

from lineage.exporters.flatten import summarize_value, weak_evidence_note
from lineage.report.filters import clip, short_sha
from lineage.report.inputs import BriefInputs, Verification
from lineage.report.lineage_figure import lineage_svg
from lineage.report.views import (
    AncestorRow,
    Fact,
    LineageInfo,
    MergeRecipeInfo,
    RecipeRow,
    VerificationRow,
)
from registry.tables import Revision

MAX_DESCENDANTS_DRAWN = 12  # the figure shows ancestors in full, descendants only nearby
MAX_CHILDREN_LISTED = 40


def build_lineage(inputs: BriefInputs) -> LineageInfo:
    """The subject's lineage as the brief shows it: figure, ancestor rows, verification."""
    graph, subject, ancestors = inputs.graph, inputs.subject, inputs.ancestors
    figure_graph = _figure_graph(graph, subject, ancestors, inputs.members)
    verifications, head = inputs.verifications, inputs.head
    statuses = {
        f"{verdict.parent}->{repo}": verdict.status
        for repo, check in verifications.items()
        for verdict in check.report.declared
    }
    figure = Markup(lineage_svg(figure_graph, subject, verification=statuses)) if graph else None
    rows = []
    for parent, child, data in graph.edges(data=True):
        if child != subject and child not in ancestors:
            continue
        attrs = graph.nodes[parent]
        rows.append(
            AncestorRow(
                parent=parent,
                child=child,
                depth=ancestors.get(parent, 0),
                relation=str(data.get("relation") or "unknown"),
                declared=bool(data.get("declared", True)),
                evidence=[_evidence_text(item) for item in data.get("evidence") or []],
                revision=short_sha(attrs.get("revision")) if attrs.get("revision") else "—",
                status=str(attrs.get("status") or "unknown"),
                merge=_edge_merge_text(data),
            )
        )
    rows.sort(key=lambda r: (r.depth, r.child != subject, r.child, r.parent, not r.declared))
    children = sorted(child for child in graph.successors(subject)) if subject in graph else []
    verification, recovered = _verification_rows(subject, ancestors, verifications)
    unverified = sorted(
        {row.child for row in verification if row.status == "unverifiable"}
        | {
            repo
            for repo in [subject, *ancestors]
            if repo not in verifications
            and any(d.get("declared", True) for _, _, d in graph.in_edges(repo, data=True))
        }
    )
    return LineageInfo(
        figure=figure,
        ancestors=rows,
        children=children[:MAX_CHILDREN_LISTED],
        recipe=_recipe(head),
        verification=verification,
        recovered_merges=recovered,
        children_total=len(children),
        unverified_models=unverified,
    )


def _figure_graph(
    graph: nx.DiGraph, subject: str, ancestors: Mapping[str, int], members: Sequence[str]
) -> nx.DiGraph:
    """Ancestors in full; of the descendants, those audited with it, then the nearest."""
    undirected = graph.to_undirected(as_view=True)
    distance = (
        nx.single_source_shortest_path_length(undirected, subject) if subject in graph else {}
    )
    below = sorted(
        (node for node in nx.descendants(graph, subject) if node not in ancestors),
        key=lambda node: (node not in members, distance.get(node, math.inf), node),
    )
    keep = {subject, *ancestors, *below[:MAX_DESCENDANTS_DRAWN]}
    return graph.subgraph(sorted(node for node in keep if node in graph)).copy()


def _evidence_text(item: Mapping[str, Any]) -> str:
    where = ", ".join(str(part) for part in (item.get("file"), item.get("field")) if part)
    text = str(item.get("source") or "unknown source")
    if where:
        text += f" ({where})"
    if item.get("value") not in (None, ""):
        text += f": {item.get('value')}"
    if item.get("detail"):
        text += f" — {item.get('detail')}"
    return clip(text)


def _edge_merge_text(data: Mapping[str, Any]) -> str:
    parts = []
    if data.get("merge_method"):
        parts.append(str(data["merge_method"]))
    if data.get("role"):
        parts.append(f"role {data['role']}")
    for name in ("weight", "density", "t"):
        if data.get(name) is not None:
            parts.append(f"{name} {summarize_value(data[name])}")
    if data.get("confidence") is not None and not data.get("declared", True):
        parts.append(f"confidence {float(data['confidence']):.2f}")
    weak = weak_evidence_note(dict(data))
    if weak:
        parts.append(weak)
    return clip(", ".join(parts), 120)


def _recipe(head: Revision | None) -> MergeRecipeInfo | None:
    recipe = head.mergekit if head is not None else None
    if not recipe:
        return None
    models = [
        RecipeRow(
            clip(entry.get("reference"), 160),
            clip(
                ", ".join(
                    f"{key} {summarize_value(value)}"
                    for key, value in sorted((entry.get("parameters") or {}).items())
                ),
                160,
            )
            or "—",
        )
        for entry in recipe.get("models") or []
        if isinstance(entry, Mapping)
    ]
    parameters = recipe.get("parameters") or {}
    return MergeRecipeInfo(
        method=clip(recipe.get("merge_method"), 60) or "not stated",
        base=clip(recipe.get("base_model"), 160) or "none",
        dtype=clip(recipe.get("dtype"), 40) or "not stated",
        source_file=clip(recipe.get("source_file"), 120),
        models=models,
        parameters=clip(
            ", ".join(f"{k} {summarize_value(v)}" for k, v in sorted(parameters.items())), 240
        )
        or "none",
    )


def _verification_rows(
    subject: str, ancestors: Mapping[str, int], verifications: Mapping[str, Verification]
) -> tuple[list[VerificationRow], list[Fact]]:
    rows: list[VerificationRow] = []
    recovered: list[Fact] = []
    order = sorted(verifications, key=lambda r: (r != subject, ancestors.get(r, 0), r))
    for repo in order:
        report = verifications[repo].report
        for verdict in report.declared:
            detail = clip(verdict.reason)
            rows.append(VerificationRow(repo, verdict.parent, verdict.status, detail))
        for inferred in report.inferred:
            rows.append(
                VerificationRow(
                    repo,
                    inferred.parent,
                    "undeclared",
                    clip(
                        f"{inferred.relation} parent, confidence "
                        f"{inferred.confidence:.2f}: {inferred.reason}"
                    ),
                )
            )
        merge = report.merge
        if merge is not None:
            weights = ", ".join(
                f"{parent} {value:.3f}" for parent, value in sorted(merge.coefficients.items())
            )
            residual = merge.residual
            # Below 1e-4 the residual is float rounding: its digits differ across BLAS builds.
            shown = "below 0.0001" if residual < 1e-4 else f"{residual:.2g}"
            fits = "reproduces the weights" if merge.exact else "does not reproduce them"
            recovered.append(
                Fact(
                    repo,
                    f"{merge.method} merge: {weights or 'no coefficients'}",
                    f"relative residual {shown}: the fit {fits}",
                )
            )
    return rows, recovered
