"""One mapping from ``huggingface_hub``'s errors to this project's one-line errors.

Both readers of the Hub use it: the lineage source for model repos (``lineage.sources.hub``)
and the audit's suite fetcher for dataset repos (``audit.suites.hub``, which words the result
as a ``SuiteError``). Only the wording differs between a model and a dataset; which error a
failure becomes, and in what order the cases are told apart, is decided here once.

    try:
        hf_hub_download(repo_id, filename, revision=sha)
    except Exception as error:
        raise map_hub_error(error, repo_id, has_token=False, what=filename) from error
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from huggingface_hub import errors as hf_errors

from lineage.errors import (
    GatedRepoError,
    HubUnavailableError,
    LineageError,
    MalformedFileError,
    OfflineError,
    PrivateRepoError,
    RepoNotFoundError,
    RevisionNotFoundError,
)
from lineage.sources.retry import describe_transport_error

RepoType = Literal["model", "dataset"]


@dataclass(frozen=True)
class _Wording:
    """What each failure says, for one kind of repo; ``{what}`` is the file or call."""

    gated: str
    private: str
    not_found: str  # "{hint}": how a missing repo may be a private one
    missing_file: str
    offline: str


_WORDING: dict[str, _Wording] = {
    "model": _Wording(
        gated="gated repo: accept its terms on the Hub and set HF_TOKEN ({what})",
        private="private repo: the token given has no access",
        not_found="repository not found{hint}",
        missing_file="{what}: listed but not downloadable",
        offline="{what}: HF_HUB_OFFLINE is set and it is not cached",
    ),
    "dataset": _Wording(
        gated="gated dataset: accept its terms on the Hub and set HF_TOKEN ({what}), or give"
        " a local copy",
        private="private dataset: the token given has no access",
        not_found="dataset not found on the Hub{hint}",
        missing_file="no file {what} in the dataset",
        offline="{what}: not in the Hub cache and the Hub cannot be reached (HF_HUB_OFFLINE?)",
    ),
}


def map_hub_error(
    error: Exception,
    repo_id: str,
    *,
    has_token: bool,
    what: str,
    repo_type: RepoType = "model",
) -> LineageError:
    """``error``, raised by ``huggingface_hub`` (or our retries) while reading ``what`` of
    ``repo_id``, as this project's one-line error; a ``LineageError`` comes back as it is."""
    words = _WORDING[repo_type]
    if isinstance(error, LineageError):
        return error
    if isinstance(error, hf_errors.GatedRepoError):
        return GatedRepoError(words.gated.format(what=what), repo_id=repo_id)
    if isinstance(error, hf_errors.RevisionNotFoundError):
        return RevisionNotFoundError(f"revision not found ({what})", repo_id=repo_id)
    if isinstance(error, hf_errors.RepositoryNotFoundError):
        status = getattr(getattr(error, "response", None), "status_code", None)
        if has_token and status in (401, 403):
            return PrivateRepoError(words.private, repo_id=repo_id)
        hint = "" if has_token else " (or private: set HF_TOKEN)"
        return RepoNotFoundError(words.not_found.format(hint=hint), repo_id=repo_id)
    if isinstance(error, hf_errors.LocalEntryNotFoundError) and error.__cause__ is not None:
        # hf_hub_download / snapshot_download wrap a download that failed (a timeout, a
        # reset) in this: the cause is what went wrong.
        return map_hub_error(
            error.__cause__, repo_id, has_token=has_token, what=what, repo_type=repo_type
        )
    if isinstance(error, hf_errors.EntryNotFoundError):
        return MalformedFileError(words.missing_file.format(what=what), repo_id=repo_id)
    if isinstance(error, hf_errors.OfflineModeIsEnabled):
        return OfflineError(words.offline.format(what=what), repo_id=repo_id)
    return HubUnavailableError(f"{what}: {describe_transport_error(error)}", repo_id=repo_id)


__all__ = ["RepoType", "map_hub_error"]
