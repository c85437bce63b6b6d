"""The verify report in the registry: written whole by ``verify``, read back typed.

>>> with registry.session(write=False) as session:
...     report = latest_verification(session, "org/merge")  # VerifyReport | None
...     confirmed = [v.parent for v in report.declared if v.status == "confirmed"]
"""

from __future__ import annotations

from pydantic import ValidationError
from sqlmodel import Session

from lineage.verify.report import VerifyReport
from registry.errors import RegistryDamagedError
from registry.tables import Revision
from registry.weights import replace_verification, verification_row


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
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top)"
        raise RegistryDamagedError(
            f"verification {row.id} of {repo_id}: its stored report does not read as a verify"
            f" report ({where}: {first['msg']}); run `lineage registry check`"
        ) from error
