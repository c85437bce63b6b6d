"""Typed, user-facing errors of the registry.

Every error's ``str()`` is one line that names the registry (its URL, password masked) and
says what to do, so the CLI can print it as is. Anything that is *not* a ``RegistryError``
raised by this package is a bug. The CLI ends every one with exit code 2 (the registry asked
for cannot be used); ``lineage.errors.LineageAuditError`` is the root of all.
"""

from __future__ import annotations

from typing import Any

from lineage.errors import EXIT_USAGE, LineageAuditError


class RegistryError(LineageAuditError):
    """A registry that cannot be used as asked; never a bug."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, url: str | None = None):
        self.url = url
        self.reason = message
        prefix = f"{url}: " if url else ""
        super().__init__(" ".join((prefix + message).split()))


class RegistryUnavailableError(RegistryError):
    """The database cannot be reached: malformed URL, missing driver, server down, lost link."""


class RegistryBusyError(RegistryError):
    """Another process held the SQLite write lock for longer than the busy timeout."""


class NotARegistryError(RegistryError):
    """The database holds something else: other tables, or a file that is not SQLite."""


class SchemaTooNewError(RegistryError):
    """The registry was written by a newer lineage-audit whose schema this one cannot read."""


class MigrationError(RegistryError):
    """An older registry could not be upgraded in place; nothing was changed."""


class RegistryDamagedError(RegistryError):
    """The database is corrupt, truncated, or its tables no longer match its schema version."""

    @classmethod
    def unreadable_document(cls, row: str, document: str, error: Any) -> RegistryDamagedError:
        """A stored document (``row``: "audit record 3 of org/m") that no longer validates
        as ``document``; ``error`` is pydantic's ValidationError, of which the first problem
        is named."""
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top)"
        return cls(
            f"{row}: its stored report does not read as {document} ({where}: {first['msg']});"
            " run `lineage registry check`"
        )
