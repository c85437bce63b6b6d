"""Fingerprints and inferred edges in the registry: save, load, search.

>>> with registry.session() as session:
...     save_fingerprint(session, revision, fingerprint)
...     same_architecture = fingerprinted_heads(session, fingerprint.signature, fingerprint.method)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, delete, select

from lineage.fingerprint.record import Fingerprint as FingerprintRecord
from registry.store import record_inferred_edge
from registry.tables import (
    Edge,
    EdgeEvidence,
    Fingerprint,
    Model,
    Revision,
)


@dataclass(frozen=True)
class FingerprintedHead:
    repo_id: str
    sha: str
    revision_id: int


def save_fingerprint(
    session: Session, revision: Revision | int, fingerprint: FingerprintRecord
) -> None:
    """Store (or replace) the fingerprint of ``revision`` for ``fingerprint.method``."""
    revision_id = revision if isinstance(revision, int) else revision.id
    row = session.exec(
        select(Fingerprint).where(
            Fingerprint.revision_id == revision_id, Fingerprint.method == fingerprint.method
        )
    ).first()
    row = row or Fingerprint(revision_id=revision_id, method=fingerprint.method)
    row.signature = fingerprint.signature
    row.tensor_count = len(fingerprint.tensors)
    row.value_count = fingerprint.value_count
    row.weight_bytes = fingerprint.weight_bytes
    row.bytes_read = fingerprint.bytes_read
    row.requests = fingerprint.requests
    row.tensors = fingerprint.index()
    row.skipped = list(fingerprint.skipped)
    row.values = fingerprint.blob()
    session.add(row)
    session.flush()


def has_fingerprint(session: Session, revision_id: int, method: str) -> bool:
    return (
        session.exec(
            select(Fingerprint.id).where(
                Fingerprint.revision_id == revision_id, Fingerprint.method == method
            )
        ).first()
        is not None
    )


def load_fingerprint(session: Session, revision_id: int, method: str) -> FingerprintRecord | None:
    row = session.exec(
        select(Fingerprint).where(
            Fingerprint.revision_id == revision_id, Fingerprint.method == method
        )
    ).first()
    if row is None:
        return None
    return FingerprintRecord.from_blob(
        method=row.method,
        signature=row.signature,
        index=list(row.tensors),
        blob=bytes(row.values),
        weight_bytes=row.weight_bytes,
        bytes_read=row.bytes_read,
        requests=row.requests,
        skipped=list(row.skipped),
    )


def fingerprinted_heads(session: Session, signature: str, method: str) -> list[FingerprintedHead]:
    """Every model whose head revision has a fingerprint of this architecture and method."""
    rows = session.exec(
        select(Model.repo_id, Revision.sha, Revision.id)
        .join(Revision, col(Revision.id) == col(Model.head_revision_id))
        .join(Fingerprint, col(Fingerprint.revision_id) == col(Revision.id))
        .where(Fingerprint.signature == signature, Fingerprint.method == method)
        .order_by(col(Model.repo_id))
    ).all()
    return [FingerprintedHead(repo_id, sha, revision_id) for repo_id, sha, revision_id in rows]


def replace_inferred_edges(session: Session, revision: Revision, links: Iterable[Any]) -> None:
    """Replace the inferred edges of ``revision`` with ``links`` (declared edges stay)."""
    stale = session.exec(
        select(Edge.id).where(Edge.child_revision_id == revision.id, col(Edge.declared).is_(False))
    ).all()
    if stale:
        session.exec(delete(EdgeEvidence).where(col(EdgeEvidence.edge_id).in_(stale)))
        session.exec(delete(Edge).where(col(Edge.id).in_(stale)))
        session.flush()
    for link in links:
        record_inferred_edge(session, revision, link)
    session.flush()
