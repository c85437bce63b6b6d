"""Retries with exponential backoff that honour the Hub's ``Retry-After``.

``HfApi.model_info`` and friends do not retry on their own, and a crawl of hundreds of
repos meets 429s and the odd 5xx. Every Hub call of the Hub source goes through
``call_with_retry``; what still fails after the last attempt becomes a one-line
``HubUnavailableError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx2
from huggingface_hub.errors import HfHubHTTPError

from lineage.errors import HubUnavailableError

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # the first try and five retries: "429 five times, then 200" succeeds
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0  # a Retry-After longer than this is not worth waiting for
    timeout_s: float = 20.0  # per HTTP request


def _status_of(error: Exception) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _retry_after_s(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _is_retryable(error: Exception) -> bool:
    if isinstance(
        error, (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)
    ):
        return True
    return isinstance(error, HfHubHTTPError) and _status_of(error) in RETRYABLE_STATUS


def describe_transport_error(error: Exception) -> str:
    if isinstance(error, httpx2.TimeoutException):
        return "the Hub did not answer in time"
    if isinstance(error, (httpx2.NetworkError, httpx2.RemoteProtocolError)):
        return f"network error talking to the Hub ({type(error).__name__})"
    status = _status_of(error)
    if status == 429:
        return "the Hub kept answering 429 Too Many Requests"
    if status is not None:
        return f"the Hub answered HTTP {status}"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def call_with_retry(
    call: Callable[[], T],
    *,
    policy: RetryPolicy,
    what: str,
    repo_id: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; on a retryable failure wait and try again, up to ``policy.attempts``.

    Non-retryable errors (404, 401, gated, ...) propagate unchanged for the caller to map.
    """
    delay = policy.base_delay_s
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except Exception as error:
            if not _is_retryable(error):
                raise
            if attempt == policy.attempts:
                raise HubUnavailableError(
                    f"{what}: {describe_transport_error(error)} after {attempt} attempts",
                    repo_id=repo_id,
                ) from error
            retry_after = _retry_after_s(error)
            if retry_after is not None and retry_after > policy.max_retry_after_s:
                raise HubUnavailableError(
                    f"{what}: rate limited, the Hub asks to wait {retry_after:.0f}s",
                    repo_id=repo_id,
                ) from error
            sleep(retry_after if retry_after is not None else delay)
            delay = min(policy.max_delay_s, delay * 2)
    raise AssertionError("unreachable")  # pragma: no cover
