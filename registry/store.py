"""Writing what the crawler read, and reading it back as the records it came from.

>>> with registry.session() as session:
...     crawl_id = start_crawl(session, ["org/child"], {"depth": 3})
...     revision = record_snapshot(session, snapshot, crawl_id=crawl_id)
...     again = snapshot_from_revision(session, recorded_revision(session, "org/child", sha))

Every function takes an open ``Session`` and leaves committing to the caller (normally
``Registry.session()``), so a failure part-way leaves what was recorded before intact.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlmodel import Session, col, delete, select

from lineage.records import (
    NODE_STATUSES,
    AdapterConfig,
    CardMetadata,
    DeclaredEvaluation,
    Evidence,
    MergeModelEntry,
    MergeRecipe,
    ModelConfigSummary,
    ModelSnapshot,
    ParentLink,
    SafetensorsSummary,
    TensorInfo,
)
from registry.tables import (
    Crawl,
    CrawlEvent,
    Edge,
    EdgeEvidence,
    Model,
    Revision,
    clean_text,
    json_safe,
    utc_now,
)

MODEL_STATUSES: tuple[str, ...] = (*NODE_STATUSES, "pending")
CRAWL_STATUSES: tuple[str, ...] = ("running", "ok", "failed", "interrupted")
EVENT_LEVELS: tuple[str, ...] = ("info", "warning", "error")
MAX_NODE_ID_CHARS = 512  # a hostile card can name a "parent" of any length
MAX_MESSAGE_CHARS = 2000
_MODEL_CACHE = "lineage.registry.models"  # key in Session.info, lives as long as the session

_SECRET_KEY = re.compile(r"token|password|passwd|secret|authorization|api[_-]?key", re.I)
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{8,}")


# -- snapshots --------------------------------------------------------------------------------


def record_snapshot(
    session: Session, snapshot: ModelSnapshot, *, crawl_id: int | None = None
) -> Revision | None:
    """Record one snapshot: the model, its revision, the revision's declared edges.

    Without a sha (the fetch failed before one was known) only the model row changes. A
    revision already recorded as ``ok`` is not overwritten by a failed re-read of the same
    sha. Declared edges are replaced by the snapshot's parents; inferred ones stay. The
    model's head moves to this revision when it is ``ok`` (or no good head exists), so a
    failed fetch of a newer commit leaves the last good revision as head.
    """
    _check_status(snapshot.status, NODE_STATUSES)
    _prefetch_models(session, [snapshot.repo_id, *(link.parent for link in snapshot.parents)])
    model = _get_or_create_model(session, snapshot.repo_id, source=snapshot.source)
    model.source = snapshot.source
    model.status = snapshot.status
    model.status_reason = _one_line(snapshot.status_reason)
    model.last_checked = utc_now()
    if crawl_id is not None:
        model.last_crawl_id = crawl_id
    if not snapshot.revision:
        session.flush()
        return None

    revision = _find_revision(session, model, snapshot.revision)
    keep_recorded = revision is not None and revision.status == "ok"
    if keep_recorded and (snapshot.status != "ok" or snapshot.unchanged):
        assert revision is not None
        if snapshot.status == "ok":
            model.head_revision_id = revision.id
        session.flush()
        return revision

    if revision is None:
        revision = Revision(model_id=_id(model), sha=clean_text(snapshot.revision))
        session.add(revision)
    _fill_revision(revision, snapshot, crawl_id=crawl_id)
    session.flush()
    _replace_edges(session, revision, snapshot.parents)
    head = session.get(Revision, model.head_revision_id) if model.head_revision_id else None
    if snapshot.status == "ok" or head is None or head.status != "ok":
        model.head_revision_id = revision.id
    session.flush()
    return revision


def record_failure(
    session: Session,
    repo_id: str,
    *,
    source: str,
    status: str,
    reason: str,
    crawl_id: int | None = None,
) -> Model:
    """Note that ``repo_id`` could not be read now; its recorded revisions and head stay."""
    _check_status(status, tuple(s for s in NODE_STATUSES if s != "ok"))
    model = _get_or_create_model(session, repo_id, source=source)
    model.source = source
    model.status = status
    model.status_reason = _one_line(reason)
    model.last_checked = utc_now()
    if crawl_id is not None:
        model.last_crawl_id = crawl_id
    session.flush()
    return model


def record_inferred_edge(session: Session, child: Revision, link: ParentLink) -> Edge:
    """Add or replace the inferred (``declared=False``) edge ``link.parent`` → ``child``.

    The declared edge between the same two nodes, if any, is left as it is.
    """
    inferred = dataclasses.replace(link, declared=False)
    parent = _parent_model(session, inferred)
    existing = session.exec(
        select(Edge).where(
            Edge.child_revision_id == _id(child),
            Edge.parent_model_id == _id(parent),
            col(Edge.declared).is_(False),
        )
    ).first()
    position = existing.position if existing else _next_position(session, child)
    return _write_edge(session, _id(child), parent, inferred, position, existing)


def recorded_revision(session: Session, repo_id: str, sha: str) -> Revision | None:
    """The fully processed (``ok``) revision ``sha`` of ``repo_id``, if recorded."""
    return session.exec(
        select(Revision)
        .join(Model, col(Model.id) == col(Revision.model_id))
        .where(
            Model.repo_id == _node_id(repo_id),
            Revision.sha == sha,
            Revision.status == "ok",
        )
    ).first()


def snapshot_from_revision(session: Session, revision: Revision) -> ModelSnapshot:
    """Rebuild the snapshot ``revision`` was recorded from, declared parents included.

    ``unchanged`` is set: the crawler uses this to skip re-reading a sha it has.
    """
    model = session.get(Model, revision.model_id)
    if model is None:  # the foreign key makes this impossible short of a corrupt database
        raise LookupError(f"revision {revision.id} has no model row")
    return ModelSnapshot(
        repo_id=model.repo_id,
        source=model.source,
        status=revision.status,
        status_reason=revision.status_reason,
        revision=revision.sha,
        requested_revision=revision.requested_revision,
        card=_card_from(revision.card, revision.declared_evaluations),
        config=_build(ModelConfigSummary, revision.config),
        mergekit=_merge_recipe_from(revision.mergekit),
        adapter=_build(AdapterConfig, revision.adapter),
        safetensors=_safetensors_from(revision.safetensors),
        relation=revision.relation,
        parents=_declared_parents(session, revision),
        tags=list(revision.tags or []),
        files=list(revision.files or []),
        has_gguf=revision.has_gguf,
        pickle_only=revision.pickle_only,
        created_at=revision.created_at,
        last_modified=revision.last_modified,
        hub_parameter_count=revision.hub_parameter_count,
        warnings=list(revision.warnings or []),
        unchanged=True,
    )


# -- the crawl log ----------------------------------------------------------------------------


def start_crawl(session: Session, roots: Iterable[str], options: Mapping[str, Any]) -> int:
    """Open a crawl record (status ``running``) and return its id. Secrets are redacted."""
    crawl = Crawl(roots=[clean_text(str(root)) for root in roots], options=_redact(options))
    session.add(crawl)
    session.flush()
    return _id(crawl)


def log_event(
    session: Session,
    crawl_id: int,
    *,
    repo_id: str | None,
    level: str,
    event: str,
    message: str,
    revision: str | None = None,
) -> None:
    """Append one line to a crawl's log."""
    if level not in EVENT_LEVELS:
        raise ValueError(f"event level {level!r} is not one of {', '.join(EVENT_LEVELS)}")
    # A Core insert, not an ORM object: the crawl log gets a line per node and per problem,
    # and building a model instance per line was most of a crawl's write time.
    session.execute(
        insert(CrawlEvent),
        [
            {
                "crawl_id": crawl_id,
                "repo_id": repo_id,
                "revision": revision,
                "level": level,
                "event": event,
                "message": _one_line(message) or "",
                "at": utc_now(),
            }
        ],
    )


def finish_crawl(
    session: Session, crawl_id: int, status: str, nodes_ok: int, problems: int
) -> None:
    """Close a crawl record with how it ended."""
    _check_status(status, CRAWL_STATUSES[1:])
    crawl = session.get(Crawl, crawl_id)
    if crawl is None:
        raise ValueError(f"crawl {crawl_id} is not recorded")
    crawl.status = status
    crawl.nodes_ok = nodes_ok
    crawl.problems = problems
    crawl.finished_at = utc_now()
    session.flush()


# -- models and edges -------------------------------------------------------------------------


def _node_id(raw: str) -> str:
    """The stored node id: ``raw`` cleaned, and shortened (keeping it unique) if huge."""
    text = clean_text(raw)
    if len(text) <= MAX_NODE_ID_CHARS:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"{text[: MAX_NODE_ID_CHARS - 20]}…#{digest}"


def _get_or_create_model(
    session: Session,
    node_id: str,
    *,
    source: str,
    status: str = "pending",
    reason: str | None = None,
) -> Model:
    repo_id = _node_id(node_id)
    known, checked = _model_cache(session)
    model = known.get(repo_id)
    if model is None and repo_id not in checked:
        model = session.exec(select(Model).where(Model.repo_id == repo_id)).first()
    if model is None:
        model = Model(repo_id=repo_id, source=source, status=status, status_reason=reason)
        session.add(model)
        session.flush()  # an id now, and visible to the next lookup (a self-parent)
    known[repo_id] = model
    checked.add(repo_id)
    return model


def _model_cache(session: Session) -> tuple[dict[str, Model], set[str]]:
    """Model rows already looked up in this session (and ids known to have none)."""
    return session.info.setdefault(_MODEL_CACHE, ({}, set()))


def _prefetch_models(session: Session, node_ids: Iterable[str]) -> None:
    """Look up a node and its parents in one query instead of one query each."""
    known, checked = _model_cache(session)
    wanted = {_node_id(node_id) for node_id in node_ids} - checked
    if not wanted:
        return
    for model in session.exec(select(Model).where(col(Model.repo_id).in_(sorted(wanted)))):
        known[model.repo_id] = model
    checked.update(wanted)


def _parent_model(session: Session, link: ParentLink) -> Model:
    """The parent's row; a new one is a ``reference`` (``missing`` if it cannot be crawled).

    An existing row is never touched: naming a crawled model as a parent says nothing new
    about it.
    """
    if link.parent_kind == "local_path":
        status, reason = "missing", "named as a local path, which is never resolved"
    elif link.parent_kind == "invalid":
        status, reason = "missing", "named by a reference that is not a valid repo id"
    else:
        status, reason = "pending", None
    return _get_or_create_model(
        session, link.parent, source="reference", status=status, reason=reason
    )


def _find_revision(session: Session, model: Model, sha: str) -> Revision | None:
    return session.exec(
        select(Revision).where(Revision.model_id == _id(model), Revision.sha == clean_text(sha))
    ).first()


def _replace_edges(session: Session, revision: Revision, parents: list[ParentLink]) -> None:
    """Make the revision's declared edges exactly ``parents``; keep edge ids that survive.

    Two links to one parent (a model listed twice, with two LoRAs) become one edge: the
    first link's fields, both links' evidence.
    """
    existing = {
        (edge.parent_model_id, edge.declared): edge
        for edge in session.exec(select(Edge).where(Edge.child_revision_id == _id(revision)))
    }
    wanted: dict[tuple[int, bool], tuple[Model, ParentLink]] = {}
    for link in parents:
        parent = _parent_model(session, link)
        key = (_id(parent), link.declared)
        if key in wanted:
            first = wanted[key][1]
            merged = first.evidence + [e for e in link.evidence if e not in first.evidence]
            wanted[key] = (parent, dataclasses.replace(first, evidence=merged))
        else:
            wanted[key] = (parent, link)
    for position, (key, (parent, link)) in enumerate(wanted.items()):
        _write_edge(session, _id(revision), parent, link, position, existing.pop(key, None))
    for (_, declared), edge in existing.items():
        if declared:  # inferred edges are the fingerprint stage's to replace
            session.exec(delete(EdgeEvidence).where(col(EdgeEvidence.edge_id) == edge.id))
            session.delete(edge)
    session.flush()


def _write_edge(
    session: Session,
    child_revision_id: int,
    parent: Model,
    link: ParentLink,
    position: int,
    edge: Edge | None,
) -> Edge:
    is_new = edge is None
    if edge is None:
        edge = Edge(child_revision_id=child_revision_id, parent_model_id=_id(parent))
        session.add(edge)
    edge.parent_kind = link.parent_kind
    edge.parent_revision = link.revision
    edge.relation = link.relation or "unknown"
    edge.declared = link.declared
    edge.position = position
    edge.merge_method = link.merge_method
    edge.role = link.role
    edge.weight = json_safe(link.weight)
    edge.density = json_safe(link.density)
    edge.t = json_safe(link.t)
    edge.parameters = json_safe(dict(link.parameters))
    edge.lora = link.lora
    edge.confidence = link.confidence
    session.flush()  # the edge's id, for its evidence rows
    if not is_new:
        session.exec(delete(EdgeEvidence).where(col(EdgeEvidence.edge_id) == edge.id))
    if link.evidence:
        session.execute(
            insert(EdgeEvidence),
            [
                {
                    "edge_id": _id(edge),
                    "position": index,
                    "source": evidence.source,
                    "file": evidence.file,
                    "field": evidence.field,
                    "value": evidence.value,
                    "declared": evidence.declared,
                    "detail": evidence.detail,
                }
                for index, evidence in enumerate(link.evidence)
            ],
        )
    return edge


def _next_position(session: Session, revision: Revision) -> int:
    positions = session.exec(
        select(Edge.position).where(Edge.child_revision_id == _id(revision))
    ).all()
    return max(positions, default=-1) + 1


def _declared_parents(session: Session, revision: Revision) -> list[ParentLink]:
    rows = session.exec(
        select(Edge, Model.repo_id)
        .join(Model, col(Model.id) == col(Edge.parent_model_id))
        .where(Edge.child_revision_id == _id(revision), col(Edge.declared).is_(True))
        .order_by(col(Edge.position), col(Edge.id))
    ).all()
    return [edge_to_link(session, edge, parent) for edge, parent in rows]


def edge_to_link(session: Session, edge: Edge, parent_repo_id: str) -> ParentLink:
    """The ``ParentLink`` an edge row was written from, evidence included."""
    return ParentLink(
        parent=parent_repo_id,
        parent_kind=edge.parent_kind,  # type: ignore[arg-type]
        relation=edge.relation,
        declared=edge.declared,
        revision=edge.parent_revision,
        lora=edge.lora,
        evidence=[
            Evidence.from_dict(row.model_dump()) for row in edge_evidence(session, _id(edge))
        ],
        merge_method=edge.merge_method,
        role=edge.role,
        weight=edge.weight,
        density=edge.density,
        t=edge.t,
        parameters=dict(edge.parameters or {}),
        confidence=edge.confidence,
    )


def edge_evidence(session: Session, edge_id: int) -> list[EdgeEvidence]:
    return list(
        session.exec(
            select(EdgeEvidence)
            .where(EdgeEvidence.edge_id == edge_id)
            .order_by(col(EdgeEvidence.position), col(EdgeEvidence.id))
        ).all()
    )


# -- revision content -------------------------------------------------------------------------


def _fill_revision(revision: Revision, snapshot: ModelSnapshot, *, crawl_id: int | None) -> None:
    card = snapshot.card
    revision.requested_revision = snapshot.requested_revision
    revision.status = snapshot.status
    revision.status_reason = _one_line(snapshot.status_reason)
    revision.architecture = snapshot.architecture
    revision.model_type = snapshot.config.model_type if snapshot.config else None
    revision.parameter_count = snapshot.parameter_count
    revision.hub_parameter_count = snapshot.hub_parameter_count
    revision.license = snapshot.license
    revision.library_name = card.library_name if card else None
    revision.relation = snapshot.relation
    revision.has_gguf = snapshot.has_gguf
    revision.pickle_only = snapshot.pickle_only
    revision.tags = json_safe(list(snapshot.tags))
    revision.datasets = json_safe(list(card.datasets)) if card else []
    revision.declared_evaluations = (
        json_safe([dataclasses.asdict(e) for e in card.evaluations]) if card else []
    )
    revision.card = json_safe(_card_dict(card)) if card else None
    revision.config = _as_json(snapshot.config)
    revision.mergekit = _as_json(snapshot.mergekit)
    revision.adapter = _as_json(snapshot.adapter)
    revision.safetensors = _safetensors_dict(snapshot.safetensors)
    revision.files = json_safe(list(snapshot.files))
    revision.warnings = [_one_line(w) or "" for w in snapshot.warnings]
    revision.created_at = _aware(snapshot.created_at)
    revision.last_modified = _aware(snapshot.last_modified)
    revision.crawled_at = utc_now()
    revision.crawl_id = crawl_id


def _card_dict(card: CardMetadata) -> dict[str, Any]:
    data = dataclasses.asdict(card)
    del data["evaluations"]  # stored apart, in declared_evaluations
    return data


def _as_json(record: Any) -> dict[str, Any] | None:
    return None if record is None else json_safe(dataclasses.asdict(record))


def _safetensors_dict(summary: SafetensorsSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    data = summary.to_dict(with_tensors=False)
    # Offsets too: the fingerprint stage reads byte ranges without fetching headers again.
    data["tensors"] = {
        name: {
            "dtype": info.dtype,
            "shape": list(info.shape),
            "file": info.file,
            "data_offsets": list(info.data_offsets),
        }
        for name, info in sorted(summary.tensors.items())
    }
    return json_safe(data)


Record = TypeVar("Record")


def _build(cls: type[Record], data: Mapping[str, Any] | None) -> Record | None:
    """``cls`` from a stored dict; keys this version does not know are ignored."""
    if data is None:
        return None
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in data.items() if key in known})


def _card_from(
    data: Mapping[str, Any] | None, evaluations: list[dict[str, Any]] | None
) -> CardMetadata | None:
    card = _build(CardMetadata, data)
    if card is not None:
        card.evaluations = [
            built for e in evaluations or [] if (built := _build(DeclaredEvaluation, e))
        ]
    return card


def _merge_recipe_from(data: Mapping[str, Any] | None) -> MergeRecipe | None:
    recipe = _build(MergeRecipe, data)
    if recipe is not None:
        recipe.models = [
            entry
            for item in recipe.models
            if (entry := _build(MergeModelEntry, item)) is not None  # type: ignore[arg-type]
        ]
    return recipe


def _safetensors_from(data: Mapping[str, Any] | None) -> SafetensorsSummary | None:
    if data is None:
        return None
    tensors = {
        name: TensorInfo(
            dtype=info["dtype"],
            shape=tuple(info["shape"]),
            file=info["file"],
            data_offsets=tuple(info.get("data_offsets") or (0, 0)),  # type: ignore[arg-type]
        )
        for name, info in (data.get("tensors") or {}).items()
    }
    return SafetensorsSummary(
        files=list(data.get("files") or []),
        tensors=tensors,
        metadata=dict(data.get("metadata") or {}),
    )


# -- small helpers ----------------------------------------------------------------------------


def _check_status(status: str, allowed: tuple[str, ...]) -> None:
    if status not in allowed:
        raise ValueError(f"status {status!r} is not one of {', '.join(allowed)}")


def _one_line(text: str | None) -> str | None:
    if text is None:
        return None
    line = " ".join(_HF_TOKEN.sub("hf_***", clean_text(text)).split())
    return line[:MAX_MESSAGE_CHARS]


def _redact(value: Any) -> Any:
    """``value`` as JSON with secrets gone: tokens are never written to the registry."""
    if isinstance(value, Mapping):
        return {
            str(key): "***" if _SECRET_KEY.search(str(key)) else _redact(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact(item) for item in value]
    if isinstance(value, str):
        return _HF_TOKEN.sub("hf_***", value)
    return json_safe(value)


def _aware(moment: datetime | None) -> datetime | None:
    """UTC; a naive datetime is taken to be UTC already (the Hub sends UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _id(row: Model | Revision | Edge | Crawl) -> int:
    """A flushed row's id (typed as int, not int | None)."""
    if row.id is None:
        raise RuntimeError(f"{type(row).__name__} row has no id; flush first")
    return row.id
