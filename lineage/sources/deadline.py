"""Time limits on the Hub's answers that hold from the first byte of the headers on.

A read timeout fires only when a single socket read waits too long: a server that drips one
byte every two seconds never trips it, while it holds the crawl for ever. The limits here sit
under the HTTP client, in the network stream that every read goes through, so they count the
status line and the headers as well as the body:

- **a deadline per request**, set with ``request_deadline(seconds)`` around the calls the
  crawler makes (model info, listings, cards, range reads). Every read of that request gets
  at most the time left, and none starts once the deadline has passed.
- **a speed floor everywhere else** (the weight downloads an audit makes through
  ``snapshot_download``, whose size is not bounded in advance): an answer that brings fewer
  than ``MIN_BYTES_PER_WINDOW`` bytes in ``WINDOW_S`` seconds is abandoned, as curl's
  ``--speed-limit`` does. The window starts again with every request written on the
  connection, so a connection kept open between requests is never blamed for its idle time.

Both raise the client's own ``ReadTimeout``, which the retry policy and the error mapping
already treat as a Hub that did not answer in time. ``install()`` makes huggingface_hub's
shared client (``get_session()``) use these streams, for its calls and for ours.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import httpcore2
import httpx2
from huggingface_hub.utils._http import hf_request_event_hook, set_client_factory

WINDOW_S = 60.0
MIN_BYTES_PER_WINDOW = 64 * 1024  # about 1 KiB/s: a dripping server, not a slow link

# (give up at, on time.monotonic(); the seconds the block was given, for the message)
_deadline: ContextVar[tuple[float, float] | None] = ContextVar(
    "lineage_request_deadline", default=None
)


@contextlib.contextmanager
def request_deadline(seconds: float) -> Iterator[None]:
    """Every request made inside this block, by this thread, must be fully answered within
    ``seconds`` of entering it (nested blocks keep the earlier deadline)."""
    mine = (time.monotonic() + seconds, seconds)
    earlier = _deadline.get()
    token = _deadline.set(mine if earlier is None else min(earlier, mine))
    try:
        yield
    finally:
        _deadline.reset(token)


class _LimitedStream(httpcore2.NetworkStream):
    """A socket stream whose reads keep to the request's deadline, or to the speed floor."""

    def __init__(self, inner: httpcore2.NetworkStream):
        self._inner = inner
        self._window_start = time.monotonic()
        self._window_bytes = 0

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        deadline = _deadline.get()
        if deadline is not None:
            give_up_at, seconds = deadline
            left = give_up_at - time.monotonic()
            if left <= 0:
                raise httpcore2.ReadTimeout(f"the answer took longer than {seconds:g}s in all")
            timeout = left if timeout is None else min(timeout, left)
        data = self._inner.read(max_bytes, timeout)
        if deadline is None:
            self._keep_to_speed_floor(len(data))
        return data

    def _keep_to_speed_floor(self, received: int) -> None:
        self._window_bytes += received
        now = time.monotonic()
        if now - self._window_start < WINDOW_S:
            return
        if self._window_bytes < MIN_BYTES_PER_WINDOW:
            raise httpcore2.ReadTimeout(
                f"the answer brought {self._window_bytes} bytes in {now - self._window_start:.1f}s"
                f" (fewer than {MIN_BYTES_PER_WINDOW} per {WINDOW_S:g}s)"
            )
        self._window_start, self._window_bytes = now, 0

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # A new request on this connection: its answer gets a fresh window.
        self._window_start, self._window_bytes = time.monotonic(), 0
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.NetworkStream:
        return _LimitedStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _LimitedBackend(httpcore2.NetworkBackend):
    """The standard synchronous sockets, each wrapped in a ``_LimitedStream``."""

    def __init__(self) -> None:
        self._inner = httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _LimitedStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        return _LimitedStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _LimitedTransport(httpx2.HTTPTransport):
    """httpx's own transport, its connection pool on ``_LimitedBackend``.

    HTTPTransport takes no network backend, so the one its pool made is swapped for ours and
    every other setting of the pool stays. A proxy from the environment is still honoured:
    httpx mounts its own transport for proxied URLs, which keeps the read timeout but not
    these limits.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pool._network_backend = _LimitedBackend()


def limited_client() -> httpx2.Client:
    """huggingface_hub's default client, on the limited transport."""
    return httpx2.Client(
        event_hooks={"request": [hf_request_event_hook]},
        follow_redirects=True,
        timeout=None,
        transport=_LimitedTransport(),
    )


_installed = threading.Lock()
_done = False


def install() -> None:
    """Make ``get_session()`` hand out limited clients, once per process."""
    global _done
    with _installed:
        if not _done:
            set_client_factory(limited_client)
            _done = True
