"""The record of each remediation run: written ``running`` first, finished or failed after.

>>> with registry.session() as session:
...     row = start_remediation(session, ft_revision, al_revision, method="linear",
...                             suites=[{"name": "harmful", "kind": "harmful", "hash": "…"}],
...                             budget=BudgetDoc())
>>> # … the sweep evaluates each λ, recording its evaluation runs …
>>> with registry.session() as session:
...     finish_remediation(session, row.id, document, model_dir="out", output_sha256="…")
>>> with registry.session(write=False) as session:
...     row, document = latest_remediation(session, "org/ft")  # document: RemediationDocument

The row is written before the sweep starts, so a sweep interrupted (killed, out of disk)
leaves a ``running`` row behind: ``unfinished_remediations`` finds it, the next run resumes
through the evaluation-run cache (every λ already measured is found there, not generated
again), and the old row keeps saying it was interrupted. A stored document that no longer
validates is a ``RegistryDamagedError`` naming the row and the repo, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from lineage.documents.remediation import BudgetDoc, RemediationDocument
from registry.errors import RegistryDamagedError
from registry.tables import Model, Remediation, Revision, utc_now

RUNNING = "running"
DONE = "done"
FAILED = "failed"
STATUSES = (RUNNING, DONE, FAILED)


def start_remediation(
    session: Session,
    finetune_revision: Revision,
    aligned_revision: Revision,
    *,
    method: str,
    suites: Iterable[Mapping[str, Any] | Any],
    budget: BudgetDoc | Mapping[str, Any],
) -> Remediation:
    """Record that a sweep of ``finetune_revision`` against ``aligned_revision`` starts.

    ``suites``: every suite the sweep evaluates, each a mapping (or an object) with its
    ``name``, ``kind`` and content ``hash``; ``budget``: the safety budget it checks against.
    The row is flushed, so its ``id`` is set.
    """
    row = Remediation(
        finetune_revision_id=_revision_id(finetune_revision),
        aligned_revision_id=_revision_id(aligned_revision),
        finetune_repo_id=_repo_id(session, finetune_revision),
        aligned_repo_id=_repo_id(session, aligned_revision),
        method=method,
        status=RUNNING,
        suites=[_suite_entry(suite) for suite in suites],
        budget=budget.to_json() if isinstance(budget, BudgetDoc) else dict(budget),
    )
    session.add(row)
    session.flush()
    return row


def finish_remediation(
    session: Session,
    row_id: int,
    document: RemediationDocument,
    *,
    model_dir: str | None = None,
    output_sha256: str | None = None,
) -> Remediation:
    """Mark the run ``row_id`` done, storing ``document`` (its JSON contract) and, when a
    model was written, its folder and the sha256 over its files."""
    row = _running_row(session, row_id)
    if (document.finetune, document.aligned) != (row.finetune_repo_id, row.aligned_repo_id):
        raise ValueError(
            f"remediation {row_id} is of {row.finetune_repo_id} against {row.aligned_repo_id},"
            f" not of {document.finetune} against {document.aligned}"
        )
    row.status = DONE
    row.status_reason = None
    row.format_version = document.format_version
    row.document = document.to_json()
    row.model_dir = model_dir
    row.output_sha256 = output_sha256
    row.finished_at = utc_now()
    session.add(row)
    session.flush()
    return row


def fail_remediation(session: Session, row_id: int, reason: str) -> Remediation:
    """Mark the run ``row_id`` failed, saying why in one line."""
    row = _running_row(session, row_id)
    row.status = FAILED
    row.status_reason = " ".join(reason.split())
    row.finished_at = utc_now()
    session.add(row)
    session.flush()
    return row


def latest_remediation(
    session: Session,
    finetune: str,
    aligned: str | None = None,
    *,
    status: str | None = None,
) -> tuple[Remediation, RemediationDocument | None] | None:
    """The newest remediation run of ``finetune`` (against ``aligned``, when given), with its
    document typed; None when there was none. The document is None while the run is
    ``running`` or when it ``failed``; ``status`` keeps only runs in that state (``"done"``
    for the newest finished sweep)."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown remediation status {status!r}; one of {', '.join(STATUSES)}")
    query = select(Remediation).where(Remediation.finetune_repo_id == finetune)
    if aligned is not None:
        query = query.where(Remediation.aligned_repo_id == aligned)
    if status is not None:
        query = query.where(Remediation.status == status)
    row = session.exec(query.order_by(col(Remediation.id).desc())).first()
    if row is None:
        return None
    return row, remediation_document(row)


def unfinished_remediations(session: Session, finetune: str, aligned: str) -> list[Remediation]:
    """The runs of this pair still ``running``, oldest first: sweeps that were interrupted
    (or one running now, in another process)."""
    query = (
        select(Remediation)
        .where(Remediation.finetune_repo_id == finetune)
        .where(Remediation.aligned_repo_id == aligned)
        .where(Remediation.status == RUNNING)
        .order_by(col(Remediation.id))
    )
    return list(session.exec(query).all())


def remediation_document(row: Remediation) -> RemediationDocument | None:
    """``row``'s document, typed (None while it has none); one that no longer reads is damage."""
    if row.document is None:
        return None
    try:
        return RemediationDocument.from_json(row.document)
    except ValidationError as error:  # a stored document that no longer reads is damage
        where = f"remediation {row.id} of {row.finetune_repo_id}"
        raise RegistryDamagedError.unreadable_document(
            where, "a remediation document", error
        ) from error


def _running_row(session: Session, row_id: int) -> Remediation:
    row = session.get(Remediation, row_id)
    if row is None:
        raise ValueError(f"there is no remediation {row_id} (its revision was deleted?)")
    if row.status != RUNNING:
        raise ValueError(f"remediation {row_id} is already {row.status}")
    return row


def _revision_id(revision: Revision) -> int:
    if revision.id is None:
        raise ValueError("the revision is not stored yet: record it (crawl) first")
    return revision.id


def _repo_id(session: Session, revision: Revision) -> str:
    model = session.get(Model, revision.model_id)
    if model is None:
        raise ValueError(f"revision {revision.id} belongs to no model")
    return model.repo_id


def _suite_entry(suite: Mapping[str, Any] | Any) -> dict[str, Any]:
    """``{name, kind, hash}`` of a suite: a mapping with those keys, or an object with
    ``name``, ``kind`` and ``hash`` (or ``content_hash``, as ``audit.records.Suite`` has)."""
    if isinstance(suite, Mapping):
        name, kind, digest = suite.get("name"), suite.get("kind"), suite.get("hash")
    else:
        name, kind = getattr(suite, "name", None), getattr(suite, "kind", None)
        digest = getattr(suite, "hash", None) or getattr(suite, "content_hash", None)
    if not (name and kind and digest):
        raise ValueError(f"a suite needs its name, kind and hash, not {suite!r:.200}")
    return {"name": str(name), "kind": str(kind), "hash": str(digest)}
