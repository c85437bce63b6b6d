"""What the stages found about a revision, in the registry: replace a stage's, read them back.

>>> with registry.session() as session:
...     replace_findings(session, revision, "verify", report.findings, method=METHOD_VERSION)
...     findings_for(session, "org/merged-model", stage="verify")

Each stage replaces only its own findings of a revision; the others' stay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from sqlmodel import Session, col, delete, select

from lineage.vocabulary import Severity
from registry.tables import Finding, Model, Revision, json_safe

FINDING_SEVERITIES: tuple[str, ...] = tuple(s.value for s in reversed(Severity))


class FindingRecord(Protocol):
    """A finding before it is stored: what a stage hands to ``replace_findings``.

    The stages' own documents are these records, with no copy in between: the verifier's
    ``VerifyFinding`` and the audit's ``FindingDoc`` (whose ``details`` is its whole JSON).
    """

    @property
    def kind(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def related_repo_id(self) -> str | None: ...
    @property
    def details(self) -> Mapping[str, Any] | None: ...


def replace_findings(
    session: Session,
    revision: Revision,
    stage: str,
    findings: Iterable[FindingRecord],
    *,
    method: str | None = None,
) -> list[Finding]:
    """Replace what ``stage`` found about ``revision`` (other stages' findings stay)."""
    session.exec(
        delete(Finding).where(col(Finding.revision_id) == revision.id, col(Finding.stage) == stage)
    )
    rows = []
    for finding in findings:
        if finding.severity not in FINDING_SEVERITIES:
            raise ValueError(f"finding severity {finding.severity!r} not in {FINDING_SEVERITIES}")
        row = Finding(
            revision_id=revision.id,
            stage=str(stage),  # plain strings in the database, never an enum member
            kind=str(finding.kind),
            severity=str(finding.severity),
            related_repo_id=finding.related_repo_id,
            message=finding.message.replace("\n", " "),
            details=json_safe(dict(finding.details or {})),
            method=method,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def findings_for(session: Session, repo_id: str, *, stage: str | None = None) -> list[Finding]:
    """The findings recorded about the head revision of ``repo_id``."""
    query = (
        select(Finding)
        .join(Model, col(Model.head_revision_id) == col(Finding.revision_id))
        .where(Model.repo_id == repo_id)
        .order_by(col(Finding.id))
    )
    if stage is not None:
        query = query.where(Finding.stage == stage)
    return list(session.exec(query).all())
