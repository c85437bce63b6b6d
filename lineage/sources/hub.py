"""Hub source: the Hugging Face Hub, through huggingface_hub's session, errors and types.

Requests per node are kept few, because a family crawl visits hundreds of repos:
1. the model info (``/api/models/<id>?expand=...``, parsed by huggingface_hub's
   ``ModelInfo``): sha, card data, tags, config summary, safetensors summary, the file list
   and the number of children, in one request;
2. one ``Range`` read per safetensors file for its header (a second only when the header
   is longer than the speculative first read);
3. small files in one GET each (no metadata HEAD first), filed in the Hub cache's snapshot
   folder: the README of every node (recipes and lineage sentences live in the body of cards
   of every kind), the mergekit and adapter configs, ``config.json`` when nothing else
   declares a parent;
4. the children listing (``/api/models?filter=base_model:<id>``, page by page), only when
   descendants are asked and the model info counts at least one child.

Every answer is read to a size bound and a total deadline that counts its headers too (a
server that drips a byte at a time never trips a read timeout; see ``deadline``). Every
request goes through one retry policy, and a 429 pauses every worker of the source together
(``RateLimiter``). A file served from another commit than the one asked for, a server that
ignores ``Range`` deep into a file, or a listing that loops, is refused with a one-line
error.

Honours ``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE`` (then reads the Hub cache only)
and the Hub cache location (``HF_HUB_CACHE`` / ``HF_HOME``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx2
from huggingface_hub import (
    constants,
    get_session,
    hf_hub_url,
    snapshot_download,
)
from huggingface_hub.file_download import _cache_commit_hash_for_specific_revision, repo_folder_name
from huggingface_hub.hf_api import ModelInfo
from huggingface_hub.utils import build_hf_headers, hf_raise_for_status
from huggingface_hub.utils import logging as hf_logging

from lineage.cards import card_metadata_from_dict
from lineage.errors import (
    FileTooLargeError,
    HubUnavailableError,
    LineageError,
    MalformedFileError,
    OfflineError,
)
from lineage.model_config import model_config_from_dict
from lineage.records import ModelSnapshot
from lineage.references import validate_filename, validate_repo_id, validate_revision
from lineage.sources import deadline
from lineage.sources.assemble import HubHints, read_snapshot
from lineage.sources.base import KnownRevisions
from lineage.sources.deadline import request_deadline
from lineage.sources.hub_errors import map_hub_error
from lineage.sources.local import LocalRepoFiles
from lineage.sources.retry import (
    RateLimiter,
    RetryPolicy,
    call_with_retry,
)

T = TypeVar("T")

MAX_SMALL_FILE_BYTES = 16 * 1024 * 1024  # cards, configs, indexes: far below this
SPECULATIVE_HEADER_BYTES = 64 * 1024  # a 7B single-file header is ~30 KiB
# A server that ignores Range sends whole files: followed this far, refused past it.
MAX_IGNORED_RANGE_BYTES = 64 * 1024 * 1024
MAX_CHILDREN = 100_000  # more than any base model's descendants on the Hub
MAX_CHILDREN_PAGES = 1_000  # the Hub pages 1,000 models at a time
MAX_LISTING_BYTES = 64 * 1024 * 1024  # one page of 1,000 models with sha: well under 1 MiB
MAX_MODEL_INFO_BYTES = 64 * 1024 * 1024  # a model info with thousands of siblings: a few MiB
MODEL_INFO_FIELDS = [
    "sha",
    "cardData",
    "tags",
    "siblings",
    "config",
    "safetensors",
    "gated",
    "private",
    "createdAt",
    "lastModified",
    "library_name",
    "pipeline_tag",
    "childrenModelCount",
]
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
CONTENT_RANGE_TOTAL = re.compile(r"/(\d+)\s*$")


def _children_of_page(body: bytes, repo_id: str) -> list[str]:
    """The model ids of one page of the children listing; anything else is an error."""
    try:
        page = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise HubUnavailableError(
            f"the list of children is not valid JSON ({' '.join(str(error).split())[:120]})",
            repo_id=repo_id,
        ) from error
    if not isinstance(page, list):
        raise HubUnavailableError(
            f"the list of children is {type(page).__name__}, not a list", repo_id=repo_id
        )
    ids = []
    for item in page:
        child = item.get("id") if isinstance(item, dict) else None
        if not isinstance(child, str):
            raise HubUnavailableError(
                "the list of children holds an item without a model id", repo_id=repo_id
            )
        try:
            validate_repo_id(child)
        except LineageError as error:
            raise HubUnavailableError(
                f"the list of children names an invalid repo id: {error}", repo_id=repo_id
            ) from error
        ids.append(child)
    return ids


def _check_commit(response: httpx2.Response, asked: str, *, repo_id: str, filename: str) -> None:
    """Files are asked for at a commit sha: one served from another commit is refused."""
    served = response.headers.get("X-Repo-Commit")
    if served and served != asked:
        raise HubUnavailableError(
            f"{filename}: asked for commit {asked[:12]}, the Hub served commit {served[:12]}; "
            "refused (crawl again to pin one commit)",
            repo_id=repo_id,
        )


def _read_body(
    response: httpx2.Response,
    *,
    stop_after: int,
    limiter: RateLimiter | None = None,
) -> bytes:
    """A streamed response's body, no further than ``stop_after`` bytes; errors raised.
    (Its time is bounded below the client, by ``deadline.request_deadline``.)"""
    if limiter is not None:
        limiter.observe(response.headers)
    if response.status_code >= 400:
        response.read()
        hf_raise_for_status(response)
    chunks: list[bytes] = []
    received = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        received += len(chunk)
        if received >= stop_after:
            break
    return b"".join(chunks)


def _bounded_read(path: Path, *, repo_id: str, filename: str) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(MAX_SMALL_FILE_BYTES + 1)
    if len(data) > MAX_SMALL_FILE_BYTES:
        raise FileTooLargeError("too large for a card or config", repo_id=repo_id, file=filename)
    return data


# The one Hub-error mapping, shared with the audit's dataset fetcher (audit.suites.hub).
_map_hub_error = map_hub_error


def _quiet_hub_log(function: Callable[..., T]) -> Callable[..., T]:
    """``function`` with huggingface_hub's warnings held back while it runs: its downloads
    retry on their own and say so ("... thrown while requesting HEAD ...") on stderr, and
    the failure that finally counts reaches the user as one line through our errors."""

    @functools.wraps(function)
    def quiet(*args: Any, **kwargs: Any) -> T:
        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            return function(*args, **kwargs)
        finally:
            hf_logging.set_verbosity(level)

    return quiet


class HubRangeReader:
    """Byte ranges of one file on the Hub, through the huggingface_hub session and auth."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        *,
        sha: str,
        repo_id: str,
        filename: str,
        policy: RetryPolicy,
        has_token: bool,
    ):
        self.url = url
        self.headers = headers
        self.sha = sha  # the commit the URL asks for: a file served from another is refused
        self.repo_id = repo_id
        self.filename = filename
        self.policy = policy
        self.has_token = has_token
        self.size: int | None = None

    def read(self, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        # Ask for a whole speculative block on the first read: the header usually fits.
        wanted = (
            max(length, SPECULATIVE_HEADER_BYTES) if start == 0 and self.size is None else length
        )
        try:
            data = call_with_retry(
                lambda: self._get(start, wanted),
                policy=self.policy,
                what=f"range read of {self.filename}",
                repo_id=self.repo_id,
            )
        except Exception as error:
            raise _map_hub_error(
                error, self.repo_id, has_token=self.has_token, what=self.filename
            ) from error
        return data[:length]

    def _get(self, start: int, length: int) -> bytes:
        headers = {
            **self.headers,
            "Range": f"bytes={start}-{start + length - 1}",
            "Accept-Encoding": "identity",
        }
        with (
            request_deadline(self.policy.deadline_s),
            get_session().stream(
                "GET",
                self.url,
                headers=headers,
                follow_redirects=True,
                timeout=self.policy.timeout_s,
            ) as response,
        ):
            if response.status_code == 416:
                self.size = self.size if self.size is not None else start
                return b""
            _check_commit(response, self.sha, repo_id=self.repo_id, filename=self.filename)
            if response.status_code == 200 and start + length > MAX_IGNORED_RANGE_BYTES:
                raise HubUnavailableError(
                    f"{self.filename}: the server ignores HTTP Range requests (it answered "
                    f"200 with the whole file); reading byte {start} would download "
                    f"{start + length} bytes or more: refused",
                    repo_id=self.repo_id,
                )
            # A server that ignores Range sends the whole file from byte 0: read up to the
            # end of the range wanted (bounded above), then cut the range out of it.
            stop = length if response.status_code == 206 else start + length
            data = _read_body(
                response,
                stop_after=stop,
                limiter=self.policy.limiter,
            )
            self._learn_size(response)
        return data[:length] if response.status_code == 206 else data[start : start + length]

    def _learn_size(self, response: httpx2.Response) -> None:
        if response.status_code == 206:
            match = CONTENT_RANGE_TOTAL.search(response.headers.get("Content-Range", ""))
            if match:
                self.size = int(match.group(1))
        elif response.headers.get("Content-Length"):
            self.size = int(response.headers["Content-Length"])


class HubRepoFiles:
    """The files of one Hub repo at one commit sha."""

    def __init__(self, source: HubSource, repo_id: str, sha: str, sizes: dict[str, int | None]):
        self.source = source
        self.repo_id = repo_id
        self.sha = sha
        self.sizes = sizes

    def names(self) -> list[str]:
        return list(self.sizes)

    def read_text(self, name: str) -> str:
        validate_filename(name)
        size = self.sizes.get(name)
        if size is not None and size > MAX_SMALL_FILE_BYTES:
            raise FileTooLargeError(
                f"{size} bytes, more than the {MAX_SMALL_FILE_BYTES // (1024 * 1024)} MiB read "
                "for a card or config",
                repo_id=self.repo_id,
                file=name,
            )
        data = self.source.read_small_file(self.repo_id, name, self.sha)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedFileError("not UTF-8 text", repo_id=self.repo_id, file=name) from error

    def range_reader(self, name: str) -> HubRangeReader:
        validate_filename(name)
        return self.source.range_reader(self.repo_id, name, self.sha)


class HubSource:
    """Reads repos from the Hub (or a Hub-compatible endpoint)."""

    name = "hub"

    @classmethod
    def claims(cls, spec: str) -> bool:
        """Whether ``spec`` is for the Hub: anything but an explicit local path (``./``, ``/``,
        ``~``, a backslash). A malformed repo id is claimed, and refused with its reason."""
        return not spec.startswith((".", "/", "~")) and "\\" not in spec

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        policy: RetryPolicy | None = None,
        offline: bool | None = None,
    ):
        self.endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
        # None: huggingface_hub finds HF_TOKEN or the saved login itself; False: anonymous.
        self.token = token
        self.cache_dir = Path(cache_dir) if cache_dir else Path(constants.HF_HUB_CACHE)
        # One pacing for every worker of this source: a 429 pauses them all.
        self.policy = policy or RetryPolicy()
        if self.policy.limiter is None:
            self.policy = dataclasses.replace(self.policy, limiter=RateLimiter())
        self.offline = constants.is_offline_mode() if offline is None else offline
        self.has_token = bool(build_hf_headers(token=token).get("authorization"))
        deadline.install()  # the Hub client's reads keep to deadlines, headers included

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its construction arguments (a worker process paces its own requests)."""
        return (_reopen_hub_source, (self.endpoint, self.token, str(self.cache_dir), self.offline))

    def describe(self) -> str:
        mode = "offline, Hub cache only" if self.offline else "online"
        return f"Hugging Face Hub at {self.endpoint} ({mode}, cache {self.cache_dir})"

    # -- node ------------------------------------------------------------------------------
    def fetch(self, repo_id: str, revision: str | None, *, known: KnownRevisions) -> ModelSnapshot:
        validate_repo_id(repo_id)
        if revision is not None:
            validate_revision(revision)
        if self.offline:
            return self._fetch_from_cache(repo_id, revision, known)
        warnings: list[str] = []
        try:
            info = self._model_info(repo_id, revision, MODEL_INFO_FIELDS)
        except ValueError as error:
            # huggingface_hub parses cardData itself and raises on card contents it finds
            # invalid (a model-index source without a url): ask without it; the README,
            # read for every node anyway, then gives the card through the tolerant parser.
            fields = [name for name in MODEL_INFO_FIELDS if name != "cardData"]
            info = self._model_info(repo_id, revision, fields)
            warnings.append(
                f"{repo_id}: huggingface_hub could not read the card data "
                f"({' '.join(str(error).split())[:200]}); read from README.md instead"
            )
        sha = info.sha or ""
        if not COMMIT_SHA.match(sha):
            raise HubUnavailableError(f"the Hub gave no commit sha (got {sha!r})", repo_id=repo_id)
        self._remember_ref(repo_id, revision or "main", sha)
        children_count = getattr(info, "children_model_count", None)
        if sha in known.get(repo_id, frozenset()):
            return ModelSnapshot(
                repo_id=repo_id,
                source=self.name,
                revision=sha,
                requested_revision=revision,
                unchanged=True,
                children_count=children_count,
            )
        card = None
        if info.card_data is not None:
            card = card_metadata_from_dict(info.card_data.to_dict(), repo_id=repo_id)
            card.tags = list(dict.fromkeys([*card.tags, *(info.tags or [])]))
        hints = HubHints(
            card=card,
            config=model_config_from_dict(info.config) if isinstance(info.config, dict) else None,
            parameter_count=info.safetensors.total if info.safetensors else None,
        )
        sizes = {sibling.rfilename: sibling.size for sibling in info.siblings or []}
        files = HubRepoFiles(self, repo_id, sha, sizes)
        snapshot = read_snapshot(
            repo_id,
            files,
            source=self.name,
            revision=sha,
            requested_revision=revision,
            hints=hints,
            created_at=info.created_at,
            last_modified=info.last_modified,
        )
        snapshot.children_count = children_count
        snapshot.warnings = [*warnings, *snapshot.warnings]
        return snapshot

    def _model_info(self, repo_id: str, revision: str | None, fields: list[str]) -> ModelInfo:
        """The Hub's model info, as ``HfApi.model_info`` asks for it and parses it, but read
        here: to a size bound and a total deadline (a server that drips a byte at a time
        never trips a read timeout), with retries. Hub errors are mapped; a ValueError of
        huggingface_hub's parsing of the card data is raised as it is."""
        path = f"{self.endpoint}/api/models/{repo_id}"
        if revision is not None:
            path += f"/revision/{quote(revision, safe='')}"
        params = [("expand", name) for name in fields]
        try:
            body, _ = call_with_retry(
                lambda: self._get_bounded(path, params, max_bytes=MAX_MODEL_INFO_BYTES),
                policy=self.policy,
                what="model info",
                repo_id=repo_id,
            )
            return ModelInfo(**json.loads(body))
        except ValueError:
            raise
        except Exception as error:
            raise _map_hub_error(
                error, repo_id, has_token=self.has_token, what=f"model info at {revision or 'main'}"
            ) from error

    def children(self, repo_id: str) -> list[str]:
        validate_repo_id(repo_id)
        if self.offline:
            raise OfflineError(
                "descendants cannot be listed offline (HF_HUB_OFFLINE)", repo_id=repo_id
            )
        try:
            models = self._list_children(repo_id)
        except Exception as error:
            raise _map_hub_error(
                error, repo_id, has_token=self.has_token, what="list of children"
            ) from error
        return sorted({model for model in models if model != repo_id})

    # -- files -----------------------------------------------------------------------------
    def _list_children(self, repo_id: str) -> list[str]:
        """Every page of ``/api/models?filter=base_model:<id>``, one retry policy for each.

        Read here rather than through ``list_models``: huggingface_hub retries 5xx pages on
        its own (five times, up to 8 s apart, printing to stderr) inside each of this tool's
        attempts, and follows ``Link: next`` for as long as the server sends one. Here every
        page has one retry budget, a page or model seen twice ends the listing with an
        error, bodies are read to a bound, and a body that is not a list of models is said.
        """
        url: str | None = f"{self.endpoint}/api/models"
        params: list[tuple[str, str]] | None = [
            ("filter", f"base_model:{repo_id}"),
            ("expand", "sha"),
        ]
        pages: set[str] = set()
        children: dict[str, None] = {}
        while url is not None:
            page_key = url + repr(params)
            if page_key in pages or len(pages) >= MAX_CHILDREN_PAGES:
                raise HubUnavailableError(
                    "the list of children does not end (a page repeats, or more than "
                    f"{MAX_CHILDREN_PAGES} pages): the Hub's pagination loops; stopped",
                    repo_id=repo_id,
                )
            pages.add(page_key)
            body, url = call_with_retry(
                lambda url=url, params=params: self._get_bounded(
                    url, params, max_bytes=MAX_LISTING_BYTES
                ),
                policy=self.policy,
                what="list of children",
                repo_id=repo_id,
            )
            params = None  # the next page's URL carries the query
            for child in _children_of_page(body, repo_id):
                if child in children:
                    raise HubUnavailableError(
                        f"the list of children repeats {child}: the Hub's pagination loops; "
                        "stopped",
                        repo_id=repo_id,
                    )
                children[child] = None
            if len(children) > MAX_CHILDREN:
                raise HubUnavailableError(
                    f"more than {MAX_CHILDREN} children listed; stopped", repo_id=repo_id
                )
        return list(children)

    def _get_bounded(
        self, url: str, params: list[tuple[str, str]] | None, *, max_bytes: int
    ) -> tuple[bytes, str | None]:
        """An API answer's body, refused past ``max_bytes``, and its ``Link: next`` URL."""
        body, following = self._get(url, params, stop_after=max_bytes + 1)
        if len(body) > max_bytes:
            raise HubUnavailableError(f"an answer of the Hub API is over {max_bytes} bytes")
        return body, following

    def _get(
        self,
        url: str,
        params: list[tuple[str, str]] | None,
        *,
        stop_after: int,
        commit: str | None = None,
        repo_id: str = "",
        filename: str = "",
    ) -> tuple[bytes, str | None]:
        """One streamed GET: the body to ``stop_after`` bytes and the deadline, the rate
        limiter told of the answer's headers, and the served commit checked when a file is
        asked for at ``commit`` (its repo and name then say which, in the error)."""
        headers = {**build_hf_headers(token=self.token), "Accept-Encoding": "identity"}
        with (
            request_deadline(self.policy.deadline_s),
            get_session().stream(
                "GET",
                url,
                params=params,
                headers=headers,
                follow_redirects=True,
                timeout=self.policy.timeout_s,
            ) as response,
        ):
            if commit is not None:
                _check_commit(response, commit, repo_id=repo_id, filename=filename)
            body = _read_body(
                response,
                stop_after=stop_after,
                limiter=self.policy.limiter,
            )
            following = response.links.get("next", {}).get("url")
        return body, following

    def read_small_file(self, repo_id: str, filename: str, sha: str) -> bytes:
        """A card or config at ``sha``, in one GET, kept in the Hub cache's snapshot folder.

        ``hf_hub_download`` asks for the file's metadata (HEAD) before it downloads it (GET):
        two requests per file. A card is read for every node, so this reads it in one, never
        past ``MAX_SMALL_FILE_BYTES``, and files it where ``hf_hub_download`` and the offline
        mode look for it (``snapshots/<sha>/<file>``).
        """
        cached = self._snapshot_path(repo_id, sha, filename)
        if cached.is_file():
            return _bounded_read(cached, repo_id=repo_id, filename=filename)
        url = hf_hub_url(repo_id, filename, revision=sha, endpoint=self.endpoint)
        try:
            data, _ = call_with_retry(
                lambda: self._get(
                    url,
                    None,
                    stop_after=MAX_SMALL_FILE_BYTES + 1,
                    commit=sha,
                    repo_id=repo_id,
                    filename=filename,
                ),
                policy=self.policy,
                what=f"download of {filename}",
                repo_id=repo_id,
            )
        except Exception as error:
            raise _map_hub_error(error, repo_id, has_token=self.has_token, what=filename) from error
        if len(data) > MAX_SMALL_FILE_BYTES:
            raise FileTooLargeError(
                "too large for a card or config", repo_id=repo_id, file=filename
            )
        with contextlib.suppress(OSError):  # a read-only cache only costs a later re-read
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_name(cached.name + ".incomplete")
            partial.write_bytes(data)
            partial.replace(cached)
        return data

    def _snapshot_path(self, repo_id: str, sha: str, filename: str) -> Path:
        folder = self.cache_dir / repo_folder_name(repo_id=repo_id, repo_type="model")
        return folder / "snapshots" / sha / filename

    def model_folder(self, repo_id: str, sha: str, patterns: Sequence[str]) -> Path:
        """The files of ``repo_id`` at ``sha`` matching ``patterns``, through the Hub cache
        (so a second audit, or an offline one, reads them from disk)."""
        try:
            path = call_with_retry(
                lambda: _quiet_hub_log(snapshot_download)(
                    repo_id,
                    revision=sha,
                    allow_patterns=list(patterns),
                    cache_dir=self.cache_dir,
                    endpoint=self.endpoint,
                    token=self.token,
                    etag_timeout=self.policy.timeout_s,
                    local_files_only=self.offline,
                ),
                policy=self.policy,
                what="download of the model files",
                repo_id=repo_id,
            )
        except Exception as error:
            raise _map_hub_error(
                error, repo_id, has_token=self.has_token, what="model files"
            ) from error
        return Path(path)

    def range_reader(self, repo_id: str, filename: str, sha: str) -> HubRangeReader:
        url = hf_hub_url(repo_id, filename, revision=sha, endpoint=self.endpoint)
        return HubRangeReader(
            url,
            build_hf_headers(token=self.token),
            sha=sha,
            repo_id=repo_id,
            filename=filename,
            policy=self.policy,
            has_token=self.has_token,
        )

    # -- offline ---------------------------------------------------------------------------
    def _remember_ref(self, repo_id: str, revision: str, sha: str) -> None:
        """Record branch -> sha in the Hub cache, as hf_hub_download does, for offline runs."""
        folder = self.cache_dir / repo_folder_name(repo_id=repo_id, repo_type="model")
        # A read-only cache only costs the offline mode this shortcut.
        with contextlib.suppress(OSError):
            _cache_commit_hash_for_specific_revision(str(folder), revision, sha)

    def _fetch_from_cache(
        self, repo_id: str, revision: str | None, known: KnownRevisions
    ) -> ModelSnapshot:
        """Offline: the Hub cache's snapshot folder of the revision, read like a local repo."""
        repo_folder = self.cache_dir / repo_folder_name(repo_id=repo_id, repo_type="model")
        wanted = revision or "main"
        if COMMIT_SHA.match(wanted):
            sha = wanted
        else:
            ref = repo_folder / "refs" / wanted
            if not ref.is_file():
                raise OfflineError(
                    f"HF_HUB_OFFLINE is set and revision '{wanted}' is not in the Hub cache "
                    f"({self.cache_dir})",
                    repo_id=repo_id,
                )
            sha = ref.read_text().strip()
        if sha in known.get(repo_id, frozenset()):
            return ModelSnapshot(
                repo_id=repo_id,
                source=self.name,
                revision=sha,
                requested_revision=revision,
                unchanged=True,
            )
        snapshot_folder = repo_folder / "snapshots" / sha
        if not snapshot_folder.is_dir():
            raise OfflineError(
                f"HF_HUB_OFFLINE is set and commit {sha[:12]} is not in the Hub "
                f"cache ({self.cache_dir})",
                repo_id=repo_id,
            )
        snapshot = read_snapshot(
            repo_id,
            LocalRepoFiles(repo_id, snapshot_folder),
            source=self.name,
            revision=sha,
            requested_revision=revision,
        )
        snapshot.warnings.append(
            f"{repo_id}: offline: read from the Hub cache; files never downloaded were not read"
        )
        return snapshot


def _reopen_hub_source(
    endpoint: str, token: str | bool | None, cache_dir: str, offline: bool
) -> HubSource:
    return HubSource(endpoint=endpoint, token=token, cache_dir=cache_dir, offline=offline)
