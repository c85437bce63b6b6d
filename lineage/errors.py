"""Typed, user-facing errors: the project's root error, and the lineage stage's errors.

Every error of this project derives from ``LineageAuditError`` and says on its class which
exit code the CLI ends with: ``EXIT_USAGE`` (2) for what the user asked wrongly (a malformed
repo id, an unknown format or judge, an unusable registry), ``EXIT_PROBLEMS`` (1) for what a
repository or model holds. The CLI maps errors through ``exit_code`` alone. Each stage keeps
its own base (``LineageError`` here, ``audit.errors.AuditError``,
``registry.errors.RegistryError``), all under this root.

Every error's ``str()`` is one line that names the repo or file and says what is wrong,
so the CLI can print it as is. Anything that is *not* a ``LineageAuditError`` is a bug.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import ClassVar

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class LineageAuditError(Exception):
    """The root of every user-facing error of lineage-audit; never a bug."""

    exit_code: ClassVar[int] = EXIT_PROBLEMS


def closest_name(name: str, known: Sequence[str]) -> str | None:
    """The known name nearest to ``name`` (a likely typo of it), or None."""
    matches = difflib.get_close_matches(name, list(known), n=1)
    return matches[0] if matches else None


def did_you_mean(name: str, known: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the known name closest to ``name``, or nothing."""
    closest = closest_name(name, known)
    return f"; did you mean {closest!r}?" if closest else ""


class LineageError(LineageAuditError):
    """A problem with user input or with what a repository holds; never a bug."""

    def __init__(self, message: str, *, repo_id: str | None = None, file: str | None = None):
        self.repo_id = repo_id
        self.file = file
        self.reason = message
        super().__init__(self._one_line(message))

    def _one_line(self, message: str) -> str:
        where = [part for part in (self.repo_id, self.file) if part]
        prefix = f"{': '.join(where)}: " if where else ""
        return (prefix + message).replace("\n", " ").strip()


class InvalidReferenceError(LineageError):
    """A repo id, revision, file name or path that is malformed or unsafe."""

    exit_code = EXIT_USAGE


class RepoNotFoundError(LineageError):
    """The repository does not exist (or is private and no token grants access)."""


class GatedRepoError(LineageError):
    """The repository is gated: accept its terms on the Hub and pass a token (HF_TOKEN)."""


class PrivateRepoError(LineageError):
    """The repository exists but the token given does not grant access."""


class RevisionNotFoundError(LineageError):
    """The requested revision (branch, tag or commit) does not exist in the repository."""


class MalformedFileError(LineageError):
    """A card, config or weight file that cannot be parsed safely."""


class FileTooLargeError(MalformedFileError):
    """A file (or a declared header) larger than this tool will read."""


class HubUnavailableError(LineageError):
    """The Hub did not answer usefully after retries: timeouts, 5xx or repeated 429."""


class OfflineError(LineageError):
    """HF_HUB_OFFLINE is set and what is needed is not in the local Hub cache."""


class FingerprintUnavailableError(LineageError):
    """The checkpoint holds nothing a fingerprint can read (no float safetensors weights)."""


class UnknownPluginError(LineageError, KeyError):
    """A name that no plug-in is registered under; it lists the known names and the closest."""

    exit_code = EXIT_USAGE

    def __init__(self, kind: str, name: str, known: Sequence[str]):
        self.kind = kind
        self.name = name
        self.known = tuple(known)
        self.closest = closest_name(name, self.known)
        hint = f"; did you mean {self.closest!r}? " if self.closest else "; "
        super().__init__(f"unknown {kind} {name!r}{hint}known: {', '.join(self.known)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class UnknownFormatError(UnknownPluginError, ValueError):
    """An export format name that no exporter is registered under."""

    def __init__(self, kind: str, name: str, known: Sequence[str]):
        self.format = name
        super().__init__(kind, name, known)
