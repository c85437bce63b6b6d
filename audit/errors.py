"""Typed, user-facing errors of the audit stage.

As in ``lineage.errors``: every ``str()`` is one line naming the suite, file, model or
judge and saying what is wrong, so the CLI prints it as is. Anything else is a bug. Every
class says its CLI exit code (see ``lineage.errors.LineageAuditError``, the root of all).
"""

from __future__ import annotations

from lineage.errors import EXIT_USAGE, LineageAuditError


class AuditError(LineageAuditError):
    """A problem with user input, a suite file, a model or a judge; never a bug."""

    def __init__(self, message: str, *, subject: str | None = None):
        self.subject = subject
        self.reason = message
        prefix = f"{subject}: " if subject else ""
        super().__init__((prefix + message).replace("\n", " ").strip())


class SuiteError(AuditError):
    """A suite name, file or Hub dataset that cannot be loaded as prompts."""

    exit_code = EXIT_USAGE


class ModelLoadError(AuditError):
    """A model (or adapter) that cannot be loaded for generation safely."""


class GenerationError(AuditError):
    """Generation failed for a reason the user can act on (memory, device, template)."""


class JudgeError(AuditError):
    """An unknown judge, or a judge model that cannot be loaded."""

    exit_code = EXIT_USAGE


class NotEvaluableError(AuditError):
    """A registry node that cannot be audited (missing, not crawled, no weights)."""


class ExecutorError(AuditError):
    """An executor that cannot run as asked: not installed, or a cluster with a SQLite
    registry its workers cannot reach."""

    exit_code = EXIT_USAGE
