"""Reading the lineage graph back: walks, model lists, subgraphs for rendering.

>>> with registry.session(write=False) as session:
...     ancestors(session, "org/merge")            # [("org/base", 1), ("org/root", 2)]
...     nodes, edges = lineage_subgraph(session, ["org/merge", "org/base"])

The graph follows each model's *head* revision: the edges its newest good commit declares
(or that fingerprints inferred for it). Results are plain dataclasses, sorted in Python so
both backends return the same order whatever their collation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from registry.evaluations import audit_document
from registry.tables import AuditRecord, Crawl, CrawlEvent, Edge, EdgeEvidence, Model, Revision

# Walks stop here even without a max_depth: a cycle in declared lineage (a card that names
# its own descendant) must end, and real lineage is far shallower.
MAX_DEPTH = 256
_CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True)
class ModelRow:
    repo_id: str
    source: str
    status: str
    status_reason: str | None
    first_seen: datetime
    last_checked: datetime | None
    revisions: int
    revision: str | None  # the head: the newest good revision's sha
    head_status: str | None
    architecture: str | None
    model_type: str | None
    parameter_count: int | None
    license: str | None
    relation: str | None
    crawled_at: datetime | None
    parents: list[str] = field(default_factory=list)  # declared by the head, in order

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


@dataclass(frozen=True)
class NodeRow:
    repo_id: str
    revision: str | None
    status: str
    status_reason: str | None
    source: str
    architecture: str | None
    model_type: str | None
    parameter_count: int | None
    license: str | None
    relation: str | None
    declared_evaluations: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    last_modified: datetime | None = None


@dataclass(frozen=True)
class EdgeRow:
    parent: str
    child: str
    child_revision: str
    relation: str
    declared: bool
    evidence: list[dict[str, Any]]
    parent_kind: str = "repo"
    merge_method: str | None = None
    weight: Any = None
    density: Any = None
    t: Any = None
    role: str | None = None
    parent_revision: str | None = None
    lora: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    confidence: float | None = None


# -- walks ------------------------------------------------------------------------------------


def ancestors(
    session: Session, repo_id: str, *, max_depth: int | None = None, declared_only: bool = False
) -> list[tuple[str, int]]:
    """Every model ``repo_id`` descends from, with its smallest distance, nearest first.

    ``repo_id`` itself is never listed, even when a cycle leads back to it. Unknown ids give
    an empty list.
    """
    return _walk(session, repo_id, upward=True, max_depth=max_depth, declared_only=declared_only)


def descendants(
    session: Session, repo_id: str, *, max_depth: int | None = None, declared_only: bool = False
) -> list[tuple[str, int]]:
    """Every recorded model descending from ``repo_id`` through head revisions, nearest first."""
    return _walk(session, repo_id, upward=False, max_depth=max_depth, declared_only=declared_only)


def _walk(
    session: Session, repo_id: str, *, upward: bool, max_depth: int | None, declared_only: bool
) -> list[tuple[str, int]]:
    limit = MAX_DEPTH if max_depth is None else min(max_depth, MAX_DEPTH)
    if limit < 1:
        return []
    # Rows are (model, depth) pairs and UNION drops repeats, so a cycle adds at most one row
    # per node per level and the depth bound ends it: the same on SQLite and PostgreSQL.
    # The literal is typed: PostgreSQL wants both terms of the union to agree on integer.
    seed = select(
        col(Model.id).label("model_id"), sa.literal_column("0", sa.Integer).label("depth")
    ).where(Model.repo_id == repo_id)
    walk = seed.cte("walk", recursive=True)
    if upward:
        step = (
            select(col(Edge.parent_model_id), walk.c.depth + 1)
            .select_from(walk)
            .join(Model, col(Model.id) == walk.c.model_id)
            .join(Edge, col(Edge.child_revision_id) == col(Model.head_revision_id))
        )
    else:
        step = (
            select(col(Model.id), walk.c.depth + 1)
            .select_from(walk)
            .join(Edge, col(Edge.parent_model_id) == walk.c.model_id)
            .join(Model, col(Model.head_revision_id) == col(Edge.child_revision_id))
        )
    step = step.where(walk.c.depth < limit)
    if declared_only:
        step = step.where(col(Edge.declared).is_(True))
    walk = walk.union(step)
    query = (
        select(col(Model.repo_id), func.min(walk.c.depth))
        .join(walk, col(Model.id) == walk.c.model_id)
        .where(walk.c.depth > 0, Model.repo_id != repo_id)
        .group_by(col(Model.repo_id))
    )
    rows = [(name, int(depth)) for name, depth in session.exec(query).all()]
    return sorted(rows, key=lambda row: (row[1], row[0]))


# -- models and revisions ---------------------------------------------------------------------


def revision_history(session: Session, repo_id: str) -> list[Revision]:
    """Every recorded revision of ``repo_id``, in the order they were first recorded."""
    return list(
        session.exec(
            select(Revision)
            .join(Model, col(Model.id) == col(Revision.model_id))
            .where(Model.repo_id == repo_id)
            .order_by(col(Revision.id))
        ).all()
    )


def list_models(session: Session) -> list[ModelRow]:
    """Every model row (crawled or only named), with its head revision, by repo id."""
    return sorted(_model_rows(session, None), key=lambda row: row.repo_id)


def get_model(session: Session, repo_id: str) -> ModelRow | None:
    rows = _model_rows(session, repo_id)
    return rows[0] if rows else None


def known_revisions(session: Session) -> dict[str, frozenset[str]]:
    """repo id → the shas recorded in full (``ok``): what a source need not read again."""
    known: dict[str, set[str]] = {}
    rows = session.exec(
        select(col(Model.repo_id), col(Revision.sha))
        .join(Revision, col(Revision.model_id) == col(Model.id))
        .where(Revision.status == "ok")
    ).all()
    for repo_id, sha in rows:
        known.setdefault(repo_id, set()).add(sha)
    return {repo_id: frozenset(shas) for repo_id, shas in known.items()}


def model_details(session: Session, repo_id: str) -> dict[str, Any] | None:
    """One model as plain JSON-ready data: its row, head edges both ways, revision history.

    ``parents`` are the edges its head declares (or that were inferred for it), ``children``
    the models whose heads point at it.
    """
    row = get_model(session, repo_id)
    model = session.exec(select(Model).where(Model.repo_id == repo_id)).first()
    if row is None or model is None or model.id is None:
        return None
    parents = _head_edges(session, children=[model.id])
    children = _head_edges(session, parent=model.id)
    details = row.to_dict()
    details["parents"] = [_plain(asdict(edge)) for edge in parents]
    details["children"] = [
        _plain(asdict(edge)) for edge in sorted(children, key=lambda e: (e.child, not e.declared))
    ]
    details["revisions"] = [
        _plain(
            {
                "sha": revision.sha,
                "status": revision.status,
                "status_reason": revision.status_reason,
                "requested_revision": revision.requested_revision,
                "crawled_at": revision.crawled_at,
            }
        )
        for revision in revision_history(session, repo_id)
    ]
    return details


def _model_rows(session: Session, repo_id: str | None) -> list[ModelRow]:
    counts = (
        select(col(Revision.model_id).label("model_id"), func.count().label("revisions"))
        .group_by(col(Revision.model_id))
        .subquery()
    )
    query = (
        select(Model, Revision, counts.c.revisions)
        .outerjoin(Revision, col(Revision.id) == col(Model.head_revision_id))
        .outerjoin(counts, counts.c.model_id == col(Model.id))
    )
    if repo_id is not None:
        query = query.where(Model.repo_id == repo_id)
    rows = session.exec(query).all()
    parents = _declared_parent_names(session, [m.head_revision_id for m, _, _ in rows])
    return [
        ModelRow(
            repo_id=model.repo_id,
            source=model.source,
            status=model.status,
            status_reason=model.status_reason,
            first_seen=model.first_seen,
            last_checked=model.last_checked,
            revisions=int(revisions or 0),
            revision=head.sha if head else None,
            head_status=head.status if head else None,
            architecture=head.architecture if head else None,
            model_type=head.model_type if head else None,
            parameter_count=head.parameter_count if head else None,
            license=head.license if head else None,
            relation=head.relation if head else None,
            crawled_at=head.crawled_at if head else None,
            parents=parents.get(model.head_revision_id or 0, []),
        )
        for model, head, revisions in rows
    ]


# -- subgraphs --------------------------------------------------------------------------------


def lineage_subgraph(
    session: Session, repo_ids: Iterable[str]
) -> tuple[list[NodeRow], list[EdgeRow]]:
    """Nodes for the recorded ``repo_ids`` and the head-revision edges among them.

    Ids not in the registry are left out. Nodes are sorted by repo id, edges by (child,
    parent, declared first).
    """
    wanted = sorted(set(repo_ids))
    nodes: list[NodeRow] = []
    model_ids: dict[int, str] = {}
    for chunk in _chunks(wanted):
        query = (
            select(Model, Revision)
            .outerjoin(Revision, col(Revision.id) == col(Model.head_revision_id))
            .where(col(Model.repo_id).in_(chunk))
        )
        for model, head in session.exec(query).all():
            assert model.id is not None
            model_ids[model.id] = model.repo_id
            nodes.append(_node_row(model, head))

    members = set(model_ids.values())
    edges: list[EdgeRow] = []
    for chunk in _chunks(sorted(model_ids)):
        edges.extend(e for e in _head_edges(session, children=chunk) if e.parent in members)
    nodes.sort(key=lambda node: node.repo_id)
    edges.sort(key=lambda edge: (edge.child, edge.parent, not edge.declared))
    return nodes, edges


def _node_row(model: Model, head: Revision | None) -> NodeRow:
    return NodeRow(
        repo_id=model.repo_id,
        revision=head.sha if head else None,
        status=model.status,
        status_reason=model.status_reason,
        source=model.source,
        architecture=head.architecture if head else None,
        model_type=head.model_type if head else None,
        parameter_count=head.parameter_count if head else None,
        license=head.license if head else None,
        relation=head.relation if head else None,
        declared_evaluations=list(head.declared_evaluations or []) if head else [],
        tags=list(head.tags or []) if head else [],
        created_at=head.created_at if head else None,
        last_modified=head.last_modified if head else None,
    )


def _head_edges(
    session: Session,
    *,
    children: Sequence[int] | None = None,
    parent: int | None = None,
) -> list[EdgeRow]:
    """Edges of head revisions: those of the ``children`` models, or those from ``parent``."""
    parent_model = aliased(Model)
    child_model = aliased(Model)
    query = (
        select(Edge, parent_model.repo_id, child_model.repo_id, Revision.sha)
        .join(child_model, child_model.head_revision_id == col(Edge.child_revision_id))
        .join(Revision, col(Revision.id) == col(Edge.child_revision_id))
        .join(parent_model, parent_model.id == col(Edge.parent_model_id))
    )
    if children is not None:
        query = query.where(child_model.id.in_(children))  # type: ignore[union-attr]
    if parent is not None:
        query = query.where(col(Edge.parent_model_id) == parent)
    found = session.exec(query.order_by(col(Edge.position), col(Edge.id))).all()
    evidence = _evidence_by_edge(session, [edge.id for edge, *_ in found if edge.id is not None])
    return [
        EdgeRow(
            parent=parent_id,
            child=child_id,
            child_revision=sha,
            relation=edge.relation,
            declared=edge.declared,
            evidence=evidence.get(edge.id or 0, []),
            parent_kind=edge.parent_kind,
            merge_method=edge.merge_method,
            weight=edge.weight,
            density=edge.density,
            t=edge.t,
            role=edge.role,
            parent_revision=edge.parent_revision,
            lora=edge.lora,
            parameters=dict(edge.parameters or {}),
            confidence=edge.confidence,
        )
        for edge, parent_id, child_id, sha in found
    ]


def _declared_parent_names(
    session: Session, revision_ids: Sequence[int | None]
) -> dict[int, list[str]]:
    """Revision id → the repo ids its declared edges point at, in declared order."""
    grouped: dict[int, list[str]] = {}
    for chunk in _chunks(sorted({r for r in revision_ids if r is not None})):
        rows = session.exec(
            select(col(Edge.child_revision_id), col(Model.repo_id))
            .join(Model, col(Model.id) == col(Edge.parent_model_id))
            .where(col(Edge.child_revision_id).in_(chunk), col(Edge.declared).is_(True))
            .order_by(col(Edge.child_revision_id), col(Edge.position), col(Edge.id))
        ).all()
        for revision_id, parent in rows:
            grouped.setdefault(revision_id, []).append(parent)
    return grouped


def _evidence_by_edge(session: Session, edge_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = {}
    for chunk in _chunks(sorted(edge_ids)):
        rows = session.exec(
            select(EdgeEvidence)
            .where(col(EdgeEvidence.edge_id).in_(chunk))
            .order_by(col(EdgeEvidence.edge_id), col(EdgeEvidence.position), col(EdgeEvidence.id))
        ).all()
        for row in rows:
            grouped.setdefault(row.edge_id, []).append(
                {
                    "source": row.source,
                    "file": row.file,
                    "field": row.field,
                    "value": row.value,
                    "declared": row.declared,
                    "detail": row.detail,
                }
            )
    return grouped


# -- the crawl log ----------------------------------------------------------------------------


def list_crawls(session: Session) -> list[Crawl]:
    """Every crawl, oldest first."""
    return list(session.exec(select(Crawl).order_by(col(Crawl.id))).all())


def crawl_log(session: Session, crawl_id: int) -> list[CrawlEvent]:
    """A crawl's events in the order they were logged."""
    return list(
        session.exec(
            select(CrawlEvent).where(CrawlEvent.crawl_id == crawl_id).order_by(col(CrawlEvent.id))
        ).all()
    )


Item = TypeVar("Item")


def _chunks(items: Sequence[Item]) -> Iterator[Sequence[Item]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _plain(value: Any) -> Any:
    """``value`` with datetimes as ISO strings: ready for JSON output."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


# -- audits ------------------------------------------------------------------------------------


def audit_with_subject(session: Session, repo_id: str, sha: str) -> AuditRecord | None:
    """The newest audit that evaluated ``repo_id`` at revision ``sha`` as a subject.

    ``lineage audit BASE --descendants`` records under BASE, with each descendant a subject
    of the report. Only the audits whose stored report mentions ``sha`` are read back (a
    text match in SQL, on both backends); the exact test is made on those few in Python.
    """
    query = select(AuditRecord).order_by(col(AuditRecord.id).desc())
    if sha.isascii() and sha.isprintable() and not set(sha) & set('"\\'):
        # JSON writes such a string as it is, so a report that holds it contains its text.
        query = query.where(
            sa.cast(col(AuditRecord.report), sa.Text).contains(sha, autoescape=True)
        )
    for candidate in session.exec(query):
        entry = audit_document(candidate).models.get(repo_id)
        if entry is not None and entry.role == "subject" and entry.revision == sha:
            return candidate
    return None
