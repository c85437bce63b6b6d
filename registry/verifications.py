"""The verify report in the registry: written whole by ``verify``, read back typed.

>>> with registry.session(write=False) as session:
...     report = latest_verification(session, "org/merge")  # VerifyReport | None
...     confirmed = [v.parent for v in report.declared if v.status == "confirmed"]

One row per revision: a re-run replaces it. A stored report that no longer validates is a
``RegistryDamagedError`` naming the repo, never a traceback.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from lineage.documents.verify import VerifyReport
from registry.errors import RegistryDamagedError
from registry.tables import Model, Revision, Verification, utc_now


def save_verification(
    session: Session, revision: Revision, report: VerifyReport, *, method: str | None = None
) -> None:
    """Record ``report`` as the latest verification of ``revision`` (replacing the last)."""
    replace_verification(
        session, revision, report.to_dict(), format_version=report.format_version, method=method
    )


def latest_verification(
    session: Session, repo_id: str, revision: str | None = None
) -> VerifyReport | None:
    """The report of the latest ``lineage verify`` of ``repo_id`` at commit ``revision``
    (default: its head revision), or None when it was never verified.

    Its ``to_dict()`` is what ``verify`` printed; its ``findings`` carry their details.
    """
    row = verification_row(session, repo_id, revision)
    if row is None:
        return None
    try:
        return VerifyReport.model_validate(row.report)
    except ValidationError as error:  # a stored report that no longer reads is damage
        where = f"verification {row.id} of {repo_id}"
        raise RegistryDamagedError.unreadable_document(where, "a verify report", error) from error


def replace_verification(
    session: Session,
    revision: Revision,
    report: dict[str, Any],
    *,
    format_version: int,
    method: str | None = None,
) -> Verification:
    """Store ``report`` (a verify report's JSON contract) as ``revision``'s latest."""
    row = session.exec(select(Verification).where(Verification.revision_id == revision.id)).first()
    row = row or Verification(revision_id=revision.id)
    row.format_version = format_version
    row.method = method
    row.report = report
    row.created_at = utc_now()
    session.add(row)
    session.flush()
    return row


def verification_row(
    session: Session, repo_id: str, revision: str | None = None
) -> Verification | None:
    """The stored verify report of ``repo_id`` at commit ``revision`` (default: its head)."""
    query = (
        select(Verification)
        .join(Revision, col(Revision.id) == col(Verification.revision_id))
        .join(Model, col(Model.id) == col(Revision.model_id))
        .where(Model.repo_id == repo_id)
    )
    if revision is None:
        query = query.where(col(Model.head_revision_id) == col(Revision.id))
    else:
        query = query.where(Revision.sha == revision)
    return session.exec(query.order_by(col(Verification.id).desc())).first()
