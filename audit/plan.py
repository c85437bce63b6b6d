"""Who an audit evaluates, read from the registry's lineage graph.

Subjects are the repo asked for (and, on request, its recorded descendants). Each subject
is compared with every declared parent that was crawled; a merge's common base is
evaluated too, as context for the reader (was the base itself unsafe?), but not compared.
Inferred parents stay out: they are hypotheses from weights, and a regression finding
must rest on lineage the model's authors declared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from sqlmodel import Session, col, select

from audit.errors import NotEvaluableError
from lineage.graph import lineage_graph
from lineage.records import RECIPE_SOURCE
from registry.tables import Model, Revision


@dataclass(frozen=True)
class AuditNode:
    """One model to evaluate, pinned to the revision the registry recorded."""

    repo_id: str
    sha: str
    revision_id: int
    relation: str | None
    adapter_base: str | None = None  # for a PEFT adapter: the repo id of its base
    declared_evaluations: tuple[dict[str, Any], ...] = ()
    template_parents: tuple[tuple[str, str], ...] = ()  # (repo, sha) of declared ancestors


@dataclass
class AuditPlan:
    subject: str
    subjects: list[str]
    comparisons: list[tuple[str, str]]  # (child, parent), in subject then declared order
    nodes: dict[str, AuditNode]
    roles: dict[str, str]  # repo -> subject | parent | base
    bases: dict[str, str] = field(default_factory=dict)  # subject -> its merge's common base
    skipped: list[str] = field(default_factory=list)  # one line each: who and why
    # subject -> how many parents (and base) it declares, and the ones not evaluated, a line
    # each: a subject missing any is an incomplete audit, never a clean one.
    declared: dict[str, int] = field(default_factory=dict)
    not_evaluated: dict[str, list[str]] = field(default_factory=dict)

    def drop(self, repo: str, reason: str) -> None:
        """Leave out a parent or base that turned out not to load, saying why."""
        line = f"{repo} ({self.roles[repo]}): not evaluated: {reason}"
        self.skipped.append(line)
        for subject in self.subjects:
            if (subject, repo) in self.comparisons or self.bases.get(subject) == repo:
                self.not_evaluated.setdefault(subject, []).append(line)
        self.nodes.pop(repo, None)
        self.roles.pop(repo, None)
        self.comparisons = [pair for pair in self.comparisons if repo not in pair]
        self.bases = {s: b for s, b in self.bases.items() if b != repo}

    def members(self, subject: str) -> list[str]:
        """The subject, its compared parents and its base: what one subject's audit covers."""
        parents = [parent for child, parent in self.comparisons if child == subject]
        base = [self.bases[subject]] if subject in self.bases else []
        return list(dict.fromkeys([subject, *parents, *base]))

    @property
    def evaluation_order(self) -> list[str]:
        """Parents and bases before subjects, so a reader sees references first."""
        rank = {"base": 0, "parent": 1, "subject": 2}
        return sorted(self.nodes, key=lambda repo: (rank[self.roles[repo]], repo))


def build_plan(session: Session, repo_id: str, *, descendants: bool = False) -> AuditPlan:
    graph = lineage_graph(session, repo_id, ancestors=True, descendants=descendants)
    if repo_id not in graph:
        raise NotEvaluableError("is not in the registry; crawl it first", subject=repo_id)
    declared = nx.DiGraph(
        [(u, v) for u, v, data in graph.edges(data=True) if data.get("declared", True)]
    )
    declared.add_nodes_from(graph.nodes)
    heads = _head_revisions(session, list(graph.nodes))
    plan = AuditPlan(subject=repo_id, subjects=[], comparisons=[], nodes={}, roles={})

    def usable(repo: str, role: str, subject: str | None = None) -> bool:
        status = graph.nodes[repo].get("status")
        if graph.nodes[repo].get("source") == RECIPE_SOURCE:
            reason = "an intermediate model of a multi-stage recipe: never published, no weights"
        elif status == "ok" and repo in heads:
            return True
        else:
            reason = graph.nodes[repo].get("status_reason") or f"status {status}"
        line = f"{repo} ({role}): not evaluated: {reason}"
        plan.skipped.append(line)
        if subject is not None:
            plan.not_evaluated.setdefault(subject, []).append(line)
        return False

    if not usable(repo_id, "subject"):
        raise NotEvaluableError(f"cannot be evaluated: {plan.skipped[-1]}", subject=repo_id)
    candidates = [repo_id]
    if descendants:
        candidates += sorted(
            nx.descendants(declared, repo_id),
            key=lambda r: (nx.shortest_path_length(declared, repo_id, r), r),
        )
    for subject in candidates:
        if subject != repo_id and not usable(subject, "subject"):
            continue
        plan.subjects.append(subject)
        plan.roles[subject] = "subject"
        parents = _declared_parents(graph, subject)
        base = _common_base(declared, parents)
        plan.declared[subject] = len(parents) + (base is not None and base not in parents)
        for parent in parents:
            if parent in plan.roles or usable(parent, "parent", subject):
                plan.roles.setdefault(parent, "parent")
                plan.comparisons.append((subject, parent))
        if base is not None and (base in plan.roles or usable(base, "base", subject)):
            plan.roles.setdefault(base, "base")
            plan.bases[subject] = base
    for repo in plan.roles:
        plan.nodes[repo] = _node(graph, declared, heads, repo)
    return plan


def _declared_parents(graph: nx.DiGraph, child: str) -> list[str]:
    """Declared parents, sorted by repo id (a stable order for reports and Holm)."""
    return sorted(
        parent for parent, _, data in graph.in_edges(child, data=True) if data.get("declared", True)
    )


def _common_base(declared: nx.DiGraph, parents: list[str]) -> str | None:
    """The nearest declared ancestor shared by every parent of a merge (None for < 2)."""
    if len(parents) < 2:
        return None
    shared = set.intersection(*(nx.ancestors(declared, p) | {p} for p in parents))
    shared -= set(parents)
    if not shared:
        return None
    undirected_distance = {
        base: sum(nx.shortest_path_length(declared, base, p) for p in parents) for base in shared
    }
    return min(sorted(undirected_distance), key=undirected_distance.__getitem__)


def _node(
    graph: nx.DiGraph, declared: nx.DiGraph, heads: dict[str, Revision], repo: str
) -> AuditNode:
    head = heads[repo]
    adapter_base = None
    if head.relation == "adapter":
        adapter_parents = [
            parent
            for parent, _, data in graph.in_edges(repo, data=True)
            if data.get("declared", True) and data.get("relation") == "adapter"
        ]
        adapter_base = adapter_parents[0] if adapter_parents else None
    order = nx.single_source_shortest_path_length(declared.reverse(copy=False), repo)
    ancestors = sorted((d, r) for r, d in order.items() if d > 0)
    return AuditNode(
        repo_id=repo,
        sha=head.sha,
        revision_id=int(head.id or 0),
        relation=head.relation,
        adapter_base=adapter_base,
        declared_evaluations=tuple(head.declared_evaluations or ()),
        # Nearest first: the template a merge borrows is its closest parent's.
        template_parents=tuple((r, heads[r].sha) for _, r in ancestors if r in heads),
    )


def _head_revisions(session: Session, repo_ids: list[str]) -> dict[str, Revision]:
    rows = session.exec(
        select(Model.repo_id, Revision)
        .join(Revision, col(Revision.id) == col(Model.head_revision_id))
        .where(col(Model.repo_id).in_(repo_ids))
    ).all()
    return {repo: revision for repo, revision in rows}
