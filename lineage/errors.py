"""Typed, user-facing errors of the lineage stage.

Every error's ``str()`` is one line that names the repo or file and says what is wrong,
so the CLI can print it as is. Anything that is *not* a ``LineageError`` is a bug.
"""

from __future__ import annotations


class LineageError(Exception):
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


class UnknownFormatError(LineageError, ValueError):
    """An export format name that no exporter is registered under."""

    def __init__(self, fmt: str, known: list[str] | tuple[str, ...]):
        self.format = fmt
        self.known = tuple(known)
        super().__init__(f"unknown export format {fmt!r}; known formats: {', '.join(self.known)}")
