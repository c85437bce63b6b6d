"""A loopback emulation of the Hugging Face Hub endpoints this project uses.

Tests and benchmarks drive the *real* ``huggingface_hub`` client against it, so what is
emulated is what that client reads: JSON shapes of ``/api/models``, ``Link`` pagination,
the ``/resolve`` headers (``X-Repo-Commit``, ``ETag``, ``X-Linked-*``, ranges) and the
``X-Error-Code`` headers that ``hf_raise_for_status`` turns into typed errors.

Dataset repos (``add_repo(..., repo_type="dataset")``) live in their own namespace, as on
the Hub, and are served where huggingface_hub looks for them: ``/api/datasets/{id}``
(info, ``revision``, ``tree``, ``refs``, ``commits``) and
``/datasets/{id}/resolve/{revision}/{path}``.

    with FakeHub(tokens={"hf_good"}) as hub:
        sha = hub.add_repo("org/base", {"config.json": json_file({"model_type": "llama"})})
        info = HfApi(endpoint=hub.endpoint, token=False).model_info("org/base")
        assert info.sha == sha and hub.count(path_contains="/api/models/org/base") == 1

Everything is in memory and deterministic: the same calls in the same order give the same
commit shas. Requests are counted server side (``requests``, ``count``, ``bytes_sent``) and
faults are injected per path substring (``fail_next``, ``delay``).

This module is the server: FakeHub's state, fault modes, request log and HTTP plumbing.
The endpoints it answers are in ``testkit.hub_api``, what a repo holds and what the Hub
derives from its files in ``testkit.hub_content``, and the builders of repo files
(``model_card``, ``json_file``, ``safetensors_file``, ``gguf_file``) in ``testkit.hub_repos``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import random
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus

from testkit.hub_api import HubApi, HubError, Response, error_response
from testkit.hub_content import (
    DEFAULT_GITATTRIBUTES,
    EPOCH,
    REPO_ID,
    Commit,
    Repo,
    RepoFile,
    analyse,
    iso,
    lfs_patterns,
)
from testkit.hub_repos import iter_repo_files

# ---------------------------------------------------------------------------------------
# Server-side request log
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it. ``path`` and ``query`` are percent-decoded."""

    method: str
    path: str
    query: str
    range: str | None
    status: int
    bytes_sent: int  # response body bytes actually written (0 for HEAD)
    auth_present: bool  # an Authorization header was sent (valid or not)


@dataclass
class _Failure:
    path_substring: str
    statuses: list[int]
    retry_after: int | None


@dataclass
class _Delay:
    path_substring: str
    seconds: float
    times: int


# ---------------------------------------------------------------------------------------
# The fake Hub
# ---------------------------------------------------------------------------------------


class FakeHub(HubApi):
    """In-memory Hub: repos with files and commits, served on 127.0.0.1 in a thread.

    ``page_size`` caps ``/api/models``, tree and commit pages (the real Hub: 1000);
    ``latency_s`` is slept before every response; ``tokens`` are the valid bearer tokens
    (every valid token is granted every private and gated repo); ``redirect_lfs`` makes
    ``/resolve`` of LFS files answer 302 to a "CDN" on another origin, as huggingface.co does.
    """

    def __init__(
        self,
        *,
        page_size: int = 1000,
        latency_s: float = 0.0,
        tokens: set[str] | None = None,
        redirect_lfs: bool = False,
    ):
        self.page_size = page_size
        self.latency_s = latency_s
        self.tokens = set(tokens or ())
        self.redirect_lfs = redirect_lfs
        # Faults a real server or proxy shows, switched on by tests: answer Range requests
        # with 200 and the whole file; make every list page's Link: next point to itself;
        # serve files under another commit than the one asked for (X-Repo-Commit).
        self.ignore_ranges = False
        self.link_loop = False
        self.served_commit: str | None = None
        self.listing_body: bytes | None = None  # served as every /api/models answer
        # Bodies of requests whose path holds drip_path are sent a byte every drip_s seconds.
        self.drip_path: str | None = None
        self.drip_s = 0.5
        self.drip_headers = False  # drip the status line and headers too
        # The share of requests that meet a random fault (429, 503, a reset connection, a
        # body cut short), for soak tests; seeded, so a run can be repeated.
        self.chaos = 0.0
        self._chaos_rng = random.Random(0)
        # At most this many requests a second; the rest get 429 with Retry-After: 1.
        self.rate_limit_per_s: float | None = None
        self._recent: list[float] = []
        self.endpoint = ""
        self._lock = threading.RLock()
        self._repos: dict[str, Repo] = {}
        self._datasets: dict[str, Repo] = {}  # dataset ids are a namespace of their own
        # tag -> model repos at head, in insertion order: the Hub answers filter=base_model:X
        # from an index. Scanning every repo per query made the server's CPU, not the
        # crawler's, the limit of the crawl benchmark. Rebuilt after any change.
        self._tag_index: dict[str, list[Repo]] | None = None
        # Model info bodies by (repo type, repo, commit, query): the real Hub's CPU is not
        # the crawler's, and on a 2-core machine the test double's must not be either.
        self._info_bodies: dict[tuple[Any, ...], bytes] = {}
        self._blobs: dict[str, bytes] = {}  # sha256 -> content, served by the "CDN"
        self._commit_counter = 0
        self._log: list[RequestRecord] = []
        self._failures: list[_Failure] = []
        self._delays: list[_Delay] = []
        self._in_flight = 0
        self.max_in_flight = 0  # most requests the server was handling at once
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> str:
        if self._server is not None:
            return self.endpoint
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hub = self
        port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()  # idle keep-alive connections would otherwise linger
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeHub:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- content ------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        gated: bool | str = False,
        private: bool = False,
        created_at: str | None = None,
        extra_tags: list[str] | None = None,
        downloads: int = 0,
        likes: int = 0,
        message: str = "initial commit",
        repo_type: str = "model",
    ) -> str:
        """Create ``repo_id`` (replacing any repo of that name) with one commit; return its sha.

        A ``.gitattributes`` with the Hub's default LFS patterns is added unless given.
        ``gated=True`` is served as ``"auto"``. ``repo_type="dataset"`` makes a dataset repo.
        """
        if not REPO_ID.fullmatch(repo_id):
            raise ValueError(f"invalid repo id {repo_id!r}")
        with self._lock:
            first_commit_date = iso(EPOCH + dt.timedelta(minutes=self._commit_counter + 1))
            repo = Repo(
                repo_id=repo_id,
                object_id=hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                private=private,
                gated="auto" if gated is True else gated,
                created_at=created_at or first_commit_date,
                extra_tags=list(extra_tags or []),
                downloads=downloads,
                likes=likes,
                repo_type=repo_type,
            )
            self._repos_of(repo_type)[repo_id] = repo
            files = {".gitattributes": DEFAULT_GITATTRIBUTES, **files}
            return self._commit_locked(repo, "main", files, delete=(), message=message)

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        delete: Iterable[str] = (),
        branch: str = "main",
        message: str = "Upload files",
        repo_type: str = "model",
    ) -> str:
        """Add a commit on ``branch`` (created from main if new); older shas stay readable."""
        with self._lock:
            repo = self._repos_of(repo_type)[repo_id]
            return self._commit_locked(repo, branch, files, delete=delete, message=message)

    def delete_repo(self, repo_id: str, *, repo_type: str = "model") -> None:
        with self._lock:
            del self._repos_of(repo_type)[repo_id]
            self._forget_derived()

    def add_tag_or_branch(
        self,
        repo_id: str,
        name: str,
        sha: str | None = None,
        *,
        branch: bool = False,
        repo_type: str = "model",
    ) -> None:
        """Point tag (or branch) ``name`` at ``sha`` (default: the head of main)."""
        with self._lock:
            repo = self._repos_of(repo_type)[repo_id]
            target = sha or repo.branches["main"]
            if target not in repo.commits:
                raise KeyError(f"{repo_id} has no commit {target}")
            (repo.branches if branch else repo.tags)[name] = target
            self._forget_derived()

    def add_local_tree(self, root: Path) -> dict[str, str]:
        """Upload every ``<org>/<name>/`` folder under ``root`` as a repo; return repo_id -> sha."""
        shas: dict[str, str] = {}
        folders = Path(root).glob("*/*")
        for folder in sorted(f for f in folders if f.is_dir() and not f.name.startswith(".")):
            if folder.parent.name.startswith("."):
                continue
            files = {name: path.read_bytes() for name, path in iter_repo_files(folder)}
            repo_id = f"{folder.parent.name}/{folder.name}"
            shas[repo_id] = self.add_repo(repo_id, files)
        return shas

    def head_sha(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> str:
        with self._lock:
            commit = self._repos_of(repo_type)[repo_id].resolve(revision)
            if commit is None:
                raise KeyError(f"{repo_id} has no revision {revision}")
            return commit.sha

    def _commit_locked(
        self,
        repo: Repo,
        branch: str,
        changes: dict[str, bytes],
        *,
        delete: Iterable[str],
        message: str,
    ) -> str:
        parent_sha = repo.branches.get(branch) or repo.branches.get("main")
        parent = repo.commits.get(parent_sha) if parent_sha else None
        raw = {path: f.data for path, f in (parent.files if parent else {}).items()}
        for path in delete:
            raw.pop(path, None)
        raw.update(changes)
        patterns = lfs_patterns(raw.get(".gitattributes"))
        files = {path: RepoFile.build(path, data, patterns) for path, data in sorted(raw.items())}

        self._commit_counter += 1
        digest = hashlib.sha1(f"{repo.repo_id}\n{self._commit_counter}\n{parent_sha}\n".encode())
        for path, file in files.items():
            digest.update(f"{path}\0{file.oid}\n".encode())
        sha = digest.hexdigest()
        date = iso(EPOCH + dt.timedelta(minutes=self._commit_counter))
        repo.commits[sha] = Commit(sha, parent_sha, files, message, date, analyse(files))
        repo.branches[branch] = sha
        self._forget_derived()
        for file in files.values():
            if file.is_lfs:
                self._blobs[file.sha256] = file.data
        return sha

    # -- fault injection ----------------------------------------------------------------

    def fail_next(
        self, path_substring: str, statuses: list[int], *, retry_after: int | None = None
    ) -> None:
        """The next ``len(statuses)`` requests whose path (or query) contains the substring
        answer these statuses instead (with ``Retry-After`` when given)."""
        with self._lock:
            self._failures.append(_Failure(path_substring, list(statuses), retry_after))

    def delay(self, path_substring: str, seconds: float, *, times: int = 1) -> None:
        """Hang ``seconds`` before answering the next ``times`` matching requests."""
        with self._lock:
            self._delays.append(_Delay(path_substring, seconds, times))

    def set_chaos(self, share: float, *, seed: int = 0) -> None:
        """From now on, ``share`` of the requests meet a random fault (seeded)."""
        with self._lock:
            self.chaos = share
            self._chaos_rng = random.Random(seed)

    def _chaos_fault(self) -> str | None:
        if not self.chaos:
            return None
        with self._lock:
            if self._chaos_rng.random() >= self.chaos:
                return None
            return self._chaos_rng.choice(("429", "503", "reset", "truncate"))

    def _rate_limited(self) -> Response | None:
        """429 (Retry-After: 1) for a request over ``rate_limit_per_s`` in the last second."""
        if self.rate_limit_per_s is None:
            return None
        now = time.monotonic()
        with self._lock:
            self._recent = [moment for moment in self._recent if now - moment < 1.0]
            if len(self._recent) >= self.rate_limit_per_s:
                return error_response(429, "Too Many Requests", None, {"Retry-After": "1"})
            self._recent.append(now)
        return None

    def _take_failure(self, target: str) -> Response | None:
        with self._lock:
            for failure in self._failures:
                if failure.statuses and failure.path_substring in target:
                    status = failure.statuses.pop(0)
                    headers = {}
                    if failure.retry_after is not None:
                        headers["Retry-After"] = str(failure.retry_after)
                    message = "Too Many Requests" if status == 429 else f"Injected HTTP {status}"
                    return error_response(status, message, headers=headers)
        return None

    def _take_delay(self, target: str) -> float:
        with self._lock:
            for delay in self._delays:
                if delay.times > 0 and delay.path_substring in target:
                    delay.times -= 1
                    return delay.seconds
        return 0.0

    # -- accounting ---------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def count(self, *, method: str | None = None, path_contains: str | None = None) -> int:
        return sum(1 for r in self.requests if _record_matches(r, method, path_contains))

    def bytes_sent(self, path_contains: str | None = None) -> int:
        return sum(r.bytes_sent for r in self.requests if _record_matches(r, None, path_contains))

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()
            self.max_in_flight = 0

    # -- request handling ---------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        started = time.monotonic()
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            raw_path, _, raw_query = handler.path.partition("?")
            path, query = unquote(raw_path), unquote_plus(raw_query)
            target = f"{path}?{query}" if query else path
            hang = self._take_delay(target)
            response = self._take_failure(target) or self._rate_limited()
            if response is None:
                try:
                    response = self._route(handler.command, raw_path, raw_query, handler)
                except HubError as error:
                    response = error.response
                except Exception:  # a bug in the fake: answer 500 and show it in the test log
                    traceback.print_exc(file=sys.stderr)
                    response = error_response(500, "FakeHub internal error")
            remaining = self.latency_s + hang - (time.monotonic() - started)
            if remaining > 0:
                time.sleep(remaining)
            include_body = handler.command != "HEAD"
            fault = self._chaos_fault()
            if fault == "429":
                response = error_response(429, "Too Many Requests", None, {"Retry-After": "0"})
            elif fault == "503":
                response = error_response(503, "Service Unavailable")
            record = RequestRecord(
                method=handler.command,
                path=path,
                query=query,
                range=handler.headers.get("Range"),
                status=0 if fault == "reset" else response.status,
                bytes_sent=len(response.body) if include_body else 0,
                auth_present=handler.headers.get("Authorization") is not None,
            )
            # Logged before writing: a client holding its answer must find the request counted.
            with self._lock:
                self._log.append(record)
            drip = self.drip_s if self.drip_path and self.drip_path in target else None
            sent = handler.send(
                response,
                include_body=include_body,
                drip_s=drip,
                drip_headers=self.drip_headers,
                reset=fault == "reset",
                truncate=fault == "truncate",
            )
            if not sent and record.bytes_sent:
                self._forget_bytes(record)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _forget_bytes(self, record: RequestRecord) -> None:
        """The client went away before the body was written (e.g. it timed out)."""
        with self._lock:
            for index, logged in enumerate(self._log):
                if logged is record:
                    self._log[index] = replace(record, bytes_sent=0)

    def _forget_derived(self) -> None:
        """Drop the tag index and cached info bodies after any change to the repos."""
        self._tag_index = None
        self._info_bodies = {}


def _record_matches(record: RequestRecord, method: str | None, path_contains: str | None) -> bool:
    if method is not None and record.method != method.upper():
        return False
    return path_contains is None or path_contains in record.path


# ---------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the benchmark opens many connections at once
    allow_reuse_address = True
    hub: FakeHub

    def __init__(self, *args: Any, **kwargs: Any):
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls
    server: _Server

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # drain the body so the connection stays usable
        self.server.hub._serve(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    def send(
        self,
        response: Response,
        *,
        include_body: bool,
        drip_s: float | None = None,
        drip_headers: bool = False,
        reset: bool = False,
        truncate: bool = False,
    ) -> bool:
        """Write the response (its body a byte at a time, ``drip_s`` apart, when given, and
        its status line and headers too with ``drip_headers``); False if the client went
        away first. ``reset`` closes the connection without an answer; ``truncate`` sends
        half the body, then closes it."""
        if reset:
            self.close_connection = True
            return False
        body = response.body if include_body else b""
        cut = truncate and len(body) > 1
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if drip_s is not None and drip_headers:
                # http.server keeps the head in _headers_buffer until end_headers().
                head = b"".join(self._headers_buffer) + b"\r\n"
                self._headers_buffer = []
                self._drip(head, drip_s)
            else:
                self.end_headers()
            if cut:
                self.close_connection = True
                self.wfile.write(body[: len(body) // 2])
            elif drip_s is not None:
                self._drip(body, drip_s)
            elif body:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # e.g. the client timed out during a delay()
            return False
        return not cut

    def _drip(self, data: bytes, drip_s: float) -> None:
        for index in range(len(data)):
            self.wfile.write(data[index : index + 1])
            self.wfile.flush()
            time.sleep(drip_s)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is FakeHub.requests
