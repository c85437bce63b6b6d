"""Writing what the crawler read: models, their revisions, lineage edges with evidence.

>>> with registry.session() as session:
...     crawl_id = start_crawl(session, ["org/child"], {"depth": 3})    # registry.crawls
...     revision = record_snapshot(session, snapshot, crawl_id=crawl_id)

Every function takes an open ``Session`` and leaves committing to the caller (normally
``Registry.session()``), so a failure part-way leaves what was recorded before intact.
Reading a revision back as its snapshot is ``registry.snapshots``; the crawl log is
``registry.crawls``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import Row, Table, bindparam, event, insert, update
from sqlmodel import Session, SQLModel, delete, select

from lineage.records import (
    NODE_STATUSES,
    CardMetadata,
    ModelSnapshot,
    ParentLink,
    SafetensorsSummary,
)

# Read by audit/auditor.py from here before the readers had their own module.
from registry.tables import Edge, EdgeEvidence, Model, Revision, clean_text, utc_now
from registry.values import check_status, clean_node_id, id_of, one_line

MODEL_STATUSES: tuple[str, ...] = (*NODE_STATUSES, "pending")
_MODEL_IDS_KEY = "lineage.registry.model_ids"  # key in Session.info, lives as long as the session


def _table(cls: type[SQLModel]) -> Table:
    return cls.__table__  # type: ignore[attr-defined]


# The hot write path uses the tables directly (Core): an ORM object and a flush per row cost
# more than everything else a crawl does on its single writing thread.
_MODEL, _REVISION, _EDGE = _table(Model), _table(Revision), _table(Edge)
_EDGE_EVIDENCE = _table(EdgeEvidence)
# Statements built once, parameters bound per call: building and hashing a statement on
# every call cost about as much as running it.
_INSERT = {cls: insert(_table(cls)) for cls in (Model, Revision, Edge)}
_UPDATE_BY_ID = {
    cls: update(_table(cls)).where(_table(cls).c.id == bindparam("row_id"))
    for cls in (Model, Revision, Edge)
}
_INSERT_EVIDENCE = insert(_EDGE_EVIDENCE)
_SELECT_MODEL_ID = select(_MODEL.c.repo_id, _MODEL.c.id).where(
    _MODEL.c.repo_id == bindparam("repo_id")
)
_SELECT_MODEL_IDS = select(_MODEL.c.repo_id, _MODEL.c.id).where(
    _MODEL.c.repo_id.in_(bindparam("repo_ids", expanding=True))
)
_SELECT_REVISION = select(_REVISION.c.id, _REVISION.c.status).where(
    _REVISION.c.model_id == bindparam("model_id"), _REVISION.c.sha == bindparam("sha")
)
_SELECT_HEAD_STATUS = (
    select(_REVISION.c.status)
    .join(_MODEL, _MODEL.c.head_revision_id == _REVISION.c.id)
    .where(_MODEL.c.id == bindparam("model_id"))
)
_SELECT_EDGES = select(_EDGE.c.parent_model_id, _EDGE.c.declared, _EDGE.c.id).where(
    _EDGE.c.child_revision_id == bindparam("revision_id")
)

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
    revision_id = record_snapshot_id(session, snapshot, crawl_id=crawl_id)
    return None if revision_id is None else _loaded(session, Revision, revision_id)


def record_snapshot_id(
    session: Session, snapshot: ModelSnapshot, *, crawl_id: int | None = None
) -> int | None:
    """``record_snapshot`` returning the revision's id instead of reading its row back.

    The crawler's path: it records thousands of snapshots from one thread and never looks
    at the rows, so everything here is a Core statement (no ORM objects, no flushes).
    """
    check_status(snapshot.status, NODE_STATUSES)
    session.flush()  # pending ORM changes first: the statements below bypass the unit of work
    repo_id = clean_node_id(snapshot.repo_id)
    known = _prefetch_models(session, [repo_id, *(link.parent for link in snapshot.parents)])
    now = utc_now()
    model_values: dict[str, Any] = {
        "source": snapshot.source,
        "status": snapshot.status,
        "status_reason": one_line(snapshot.status_reason),
        "last_checked": now,
    }
    if crawl_id is not None:
        model_values["last_crawl_id"] = crawl_id
    model_id = known.get(repo_id)
    created = model_id is None
    if model_id is None:
        model_id = _insert_model(session, repo_id, model_values | {"first_seen": now})
    if not snapshot.revision:
        if not created:
            _update(session, Model, model_id, model_values)
        return None

    sha = clean_text(snapshot.revision)
    found = None if created else _find_revision(session, model_id, sha)
    recorded_ok = found is not None and found.status == "ok"
    if found is not None and recorded_ok and (snapshot.status != "ok" or snapshot.unchanged):
        if snapshot.status == "ok":
            model_values["head_revision_id"] = found.id
        _update(session, Model, model_id, model_values)
        return found.id

    values = _revision_values(snapshot, crawl_id=crawl_id, now=now)
    if found is None:
        revision_id = _insert(session, Revision, values | {"model_id": model_id, "sha": sha})
    else:
        revision_id = found.id
        _update(session, Revision, revision_id, values)
    _replace_edges(session, revision_id, snapshot.parents, new_revision=found is None)
    if created:  # inserted with its values above; no head yet, so this one is it
        _update(session, Model, model_id, {"head_revision_id": revision_id})
        return revision_id
    if snapshot.status == "ok" or _head_status(session, model_id) != "ok":
        model_values["head_revision_id"] = revision_id
    _update(session, Model, model_id, model_values)
    return revision_id


def record_failure(
    session: Session,
    repo_id: str,
    *,
    source: str,
    status: str,
    reason: str,
    crawl_id: int | None = None,
    transient: bool = False,
) -> Model:
    """Note that ``repo_id`` could not be read now; its recorded revisions and head stay.

    A ``transient`` failure (a 429, a 5xx, a timeout) says nothing about the repo: a model
    whose head was read in full keeps its ``ok`` status; only the attempt is logged (the
    crawl log has it). A repo now missing, gated or private has changed, and says so.
    """
    check_status(status, tuple(s for s in NODE_STATUSES if s != "ok"))
    model = _get_or_create_model(session, repo_id, source=source)
    model.last_checked = utc_now()
    if crawl_id is not None:
        model.last_crawl_id = crawl_id
    keeps_last_good = (
        transient
        and model.head_revision_id is not None
        and _head_status(session, id_of(model)) == "ok"
    )
    if not keeps_last_good:
        model.source = source
        model.status = status
        model.status_reason = one_line(reason)
    session.flush()
    return model


def record_inferred_edge(session: Session, child: Revision, link: ParentLink) -> Edge:
    """Add or replace the inferred (``declared=False``) edge ``link.parent`` → ``child``.

    The declared edge between the same two nodes, if any, is left as it is.
    """
    inferred = dataclasses.replace(link, declared=False)
    session.flush()
    parent_id = _parent_model_id(session, inferred)
    existing = session.execute(
        select(_EDGE.c.id, _EDGE.c.position).where(
            _EDGE.c.child_revision_id == id_of(child),
            _EDGE.c.parent_model_id == parent_id,
            _EDGE.c.declared.is_(False),
        )
    ).first()
    edge_id, position = existing if existing else (None, _next_position(session, id_of(child)))
    evidence: list[dict[str, Any]] = []
    edge_id = _write_edge(session, id_of(child), parent_id, inferred, position, edge_id, evidence)
    _insert_evidence(session, evidence)
    return _loaded(session, Edge, edge_id)


# -- models and edges -------------------------------------------------------------------------


def _get_or_create_model(
    session: Session,
    node_id: str,
    *,
    source: str,
    status: str = "pending",
    reason: str | None = None,
) -> Model:
    repo_id = clean_node_id(node_id)
    model_id = _prefetch_models(session, [repo_id]).get(repo_id)
    model = session.get(Model, model_id) if model_id is not None else None
    if model is None:
        model = Model(repo_id=repo_id, source=source, status=status, status_reason=reason)
        session.add(model)
        session.flush()
        _model_ids(session)[repo_id] = id_of(model)
    return model


def _model_ids(session: Session) -> dict[str, int | None]:
    """Model ids already looked up in this session (``None``: known to have no row).

    Lives in ``Session.info``; a rollback (a savepoint's too) empties it, since the rows it
    names may have gone with the rolled-back work. The listener that empties it is attached
    to this session only, when the session first keeps ids: never to every ``Session``.
    """
    known = session.info.get(_MODEL_IDS_KEY)
    if known is None:
        known = session.info[_MODEL_IDS_KEY] = {}
        if not event.contains(session, "after_soft_rollback", _forget_model_ids):
            event.listen(session, "after_soft_rollback", _forget_model_ids)
    return known


def _forget_model_ids(session: Session, previous_transaction: Any) -> None:
    session.info.pop(_MODEL_IDS_KEY, None)


def _prefetch_models(session: Session, node_ids: Iterable[str]) -> dict[str, int | None]:
    """Look up a node and its parents in one query instead of one query each."""
    known = _model_ids(session)
    wanted = {clean_node_id(node_id) for node_id in node_ids}.difference(known)
    if wanted:
        known.update(dict.fromkeys(wanted))
        if len(wanted) == 1:  # the usual case: the parents were looked up with earlier nodes
            rows = session.execute(_SELECT_MODEL_ID, {"repo_id": next(iter(wanted))})
        else:
            rows = session.execute(_SELECT_MODEL_IDS, {"repo_ids": sorted(wanted)})
        known.update((repo_id, model_id) for repo_id, model_id in rows)
    return known


def _insert_model(session: Session, repo_id: str, values: dict[str, Any]) -> int:
    model_id = _insert(session, Model, values | {"repo_id": repo_id})
    _model_ids(session)[repo_id] = model_id
    return model_id


def _parent_model_id(session: Session, link: ParentLink) -> int:
    """The parent's row; a new one is a ``reference`` (``missing`` if it cannot be crawled).

    An existing row is never touched: naming a crawled model as a parent says nothing new
    about it.
    """
    repo_id = clean_node_id(link.parent)
    model_id = _prefetch_models(session, [repo_id]).get(repo_id)
    if model_id is not None:
        return model_id
    if link.parent_kind == "local_path":
        status, reason = "missing", "named as a local path, which is never resolved"
    elif link.parent_kind == "intermediate":
        status, reason = "missing", "an intermediate stage of a recipe, recorded with it"
    elif link.parent_kind == "invalid":
        status, reason = "missing", "named by a reference that is not a valid repo id"
    else:
        status, reason = "pending", None
    values = {"source": "reference", "status": status, "status_reason": reason}
    return _insert_model(session, repo_id, values | {"first_seen": utc_now()})


def _find_revision(session: Session, model_id: int, sha: str) -> Row[tuple[int, str]] | None:
    return session.execute(_SELECT_REVISION, {"model_id": model_id, "sha": sha}).first()


def _head_status(session: Session, model_id: int) -> str | None:
    """The status of the model's head revision (None: it has none)."""
    return session.execute(_SELECT_HEAD_STATUS, {"model_id": model_id}).scalar()


def _replace_edges(
    session: Session, revision_id: int, parents: list[ParentLink], *, new_revision: bool
) -> None:
    """Make the revision's declared edges exactly ``parents``; keep edge ids that survive.

    Two links to one parent (a model listed twice, with two LoRAs) become one edge: the
    first link's fields, both links' evidence.
    """
    existing: dict[tuple[int, bool], int] = {}
    if not new_revision:  # a revision inserted just now has no edges to look up
        rows = session.execute(_SELECT_EDGES, {"revision_id": revision_id})
        existing = {(parent_id, declared): edge_id for parent_id, declared, edge_id in rows}
    wanted: dict[tuple[int, bool], ParentLink] = {}
    for link in parents:
        key = (_parent_model_id(session, link), link.declared)
        if key in wanted:
            first = wanted[key]
            merged = first.evidence + [e for e in link.evidence if e not in first.evidence]
            wanted[key] = dataclasses.replace(first, evidence=merged)
        else:
            wanted[key] = link
    evidence: list[dict[str, Any]] = []
    for position, ((parent_id, _), link) in enumerate(wanted.items()):
        edge_id = existing.pop((parent_id, link.declared), None)
        _write_edge(session, revision_id, parent_id, link, position, edge_id, evidence)
    # inferred edges are the fingerprint stage's to replace
    gone = [edge_id for (_, declared), edge_id in existing.items() if declared]
    if gone:
        session.execute(delete(_EDGE_EVIDENCE).where(_EDGE_EVIDENCE.c.edge_id.in_(gone)))
        session.execute(delete(_EDGE).where(_EDGE.c.id.in_(gone)))
        for edge_id in gone:
            _forget(session, Edge, edge_id)
    _insert_evidence(session, evidence)


def _write_edge(
    session: Session,
    child_revision_id: int,
    parent_id: int,
    link: ParentLink,
    position: int,
    edge_id: int | None,
    evidence: list[dict[str, Any]],
) -> int:
    """Insert or update one edge; its evidence rows are appended to ``evidence``.

    An updated edge's old evidence is deleted here; the caller inserts the new rows.
    """
    values = {
        "parent_kind": link.parent_kind,
        "parent_revision": link.revision,
        "relation": link.relation or "unknown",
        "declared": link.declared,
        "position": position,
        "merge_method": link.merge_method,
        "role": link.role,
        "weight": link.weight,
        "density": link.density,
        "t": link.t,
        "parameters": dict(link.parameters),
        "lora": link.lora,
        "confidence": link.confidence,
    }
    if edge_id is None:
        values |= {"child_revision_id": child_revision_id, "parent_model_id": parent_id}
        edge_id = _insert(session, Edge, values)
    else:
        _update(session, Edge, edge_id, values)
        session.execute(delete(_EDGE_EVIDENCE).where(_EDGE_EVIDENCE.c.edge_id == edge_id))
    evidence.extend(
        {
            "edge_id": edge_id,
            "position": index,
            "source": item.source,
            "file": item.file,
            "field": item.field,
            "value": item.value,
            "declared": item.declared,
            "detail": item.detail,
        }
        for index, item in enumerate(link.evidence)
    )
    return edge_id


def _insert_evidence(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(_INSERT_EVIDENCE, rows)


def _next_position(session: Session, revision_id: int) -> int:
    positions = session.execute(
        select(_EDGE.c.position).where(_EDGE.c.child_revision_id == revision_id)
    ).scalars()
    return max(positions, default=-1) + 1


# -- revision content -------------------------------------------------------------------------


def _revision_values(
    snapshot: ModelSnapshot, *, crawl_id: int | None, now: datetime
) -> dict[str, Any]:
    """The revision row's columns. JSON columns pass ``json_safe`` in their bind processor."""
    card = snapshot.card
    return {
        "requested_revision": snapshot.requested_revision,
        "status": snapshot.status,
        "status_reason": one_line(snapshot.status_reason),
        "architecture": snapshot.architecture,
        "model_type": snapshot.config.model_type if snapshot.config else None,
        "parameter_count": snapshot.parameter_count,
        "hub_parameter_count": snapshot.hub_parameter_count,
        "license": snapshot.license,
        "library_name": card.library_name if card else None,
        "relation": snapshot.relation,
        "has_gguf": snapshot.has_gguf,
        "pickle_only": snapshot.pickle_only,
        "tags": list(snapshot.tags),
        "datasets": list(card.datasets) if card else [],
        "declared_evaluations": [dataclasses.asdict(e) for e in card.evaluations] if card else [],
        "card": _card_dict(card) if card else None,
        "config": _as_dict(snapshot.config),
        "mergekit": _as_dict(snapshot.mergekit),
        "adapter": _as_dict(snapshot.adapter),
        "safetensors": _safetensors_dict(snapshot.safetensors),
        "files": list(snapshot.files),
        "warnings": [one_line(w) or "" for w in snapshot.warnings],
        "created_at": _aware(snapshot.created_at),
        "last_modified": _aware(snapshot.last_modified),
        "crawled_at": now,
        "crawl_id": crawl_id,
    }


def _card_dict(card: CardMetadata) -> dict[str, Any]:
    data = dataclasses.asdict(card)
    del data["evaluations"]  # stored apart, in declared_evaluations
    return data


def _as_dict(record: Any) -> dict[str, Any] | None:
    return None if record is None else dataclasses.asdict(record)


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
    return data


# -- small helpers ----------------------------------------------------------------------------


def _aware(moment: datetime | None) -> datetime | None:
    """UTC; a naive datetime is taken to be UTC already (the Hub sends UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _insert(session: Session, cls: type[SQLModel], values: dict[str, Any]) -> int:
    """Insert one row with a Core statement; its new id."""
    return session.execute(_INSERT[cls], values).inserted_primary_key[0]


def _update(session: Session, cls: type[SQLModel], row_id: int, values: dict[str, Any]) -> None:
    """Update one row by id with a Core statement, keeping a loaded ORM copy in step."""
    session.execute(_UPDATE_BY_ID[cls], values | {"row_id": row_id})
    loaded = _in_session(session, cls, row_id)
    if loaded is not None:
        session.refresh(loaded)


def _forget(session: Session, cls: type[SQLModel], row_id: int) -> None:
    """Drop a row deleted by a Core statement from the session, if it was loaded."""
    loaded = _in_session(session, cls, row_id)
    if loaded is not None:
        session.expunge(loaded)


def _in_session(session: Session, cls: type[SQLModel], row_id: int) -> Any:
    if not len(session.identity_map):  # the crawler's sessions load no ORM rows at all
        return None
    return session.identity_map.get(Session.identity_key(cls, row_id))


TableRow = TypeVar("TableRow", bound=SQLModel)


def _loaded(session: Session, cls: type[TableRow], row_id: int) -> TableRow:
    """The ORM row ``row_id``, read fresh: Core statements may have changed it."""
    row = session.get(cls, row_id, populate_existing=True)
    if row is None:  # written in this transaction, so only a corrupt database gets here
        raise LookupError(f"{cls.__name__} {row_id} is not recorded")
    return row
