"""Retries with exponential backoff that honour the Hub's ``Retry-After``.

``HfApi.model_info`` and friends do not retry on their own, and a crawl of hundreds of
repos meets 429s and the odd 5xx. Every Hub call of the Hub source goes through
``call_with_retry``; what still fails after the last attempt becomes a one-line
``HubUnavailableError``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import httpx2
from huggingface_hub.errors import HfHubHTTPError

from lineage.errors import HubUnavailableError

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_OBSERVED_RESET_S = 60.0  # a longer reset announced on a good answer is not waited for


class RateLimiter:
    """One pause shared by every worker of a source: when the Hub says "slow down" (429
    with Retry-After) to one request, all of them wait, instead of each spending its own
    attempts hammering a server that is refusing them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._resume_at = 0.0

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._resume_at = max(self._resume_at, self._clock() + seconds)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Pace ahead of a 429: an answer whose ``RateLimit`` headers say no request is left
        in the window pauses every worker until the window resets."""
        remaining, reset = _rate_limit_window(headers)
        if remaining is not None and remaining <= 0 and reset is not None:
            self.pause(min(reset, MAX_OBSERVED_RESET_S))

    def wait(self, sleep: Callable[[float], None]) -> None:
        while True:
            with self._lock:
                remaining = self._resume_at - self._clock()
            if remaining <= 0:
                return
            sleep(remaining)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # the first try and five retries, for errors other than rate limits
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0  # a Retry-After longer than this is not worth waiting for
    timeout_s: float = 20.0  # per HTTP read (connect, and each wait for bytes)
    deadline_s: float = 120.0  # per answer in all, however slowly its bytes arrive
    # Rate limits are paced, not counted as failures: a call may wait this long in all for
    # 429s before it gives up.
    rate_limit_budget_s: float = 600.0
    limiter: RateLimiter | None = field(default=None, compare=False)


def _rate_limit_window(headers: Mapping[str, str]) -> tuple[float | None, float | None]:
    """(requests left, seconds to the reset) from ``RateLimit-Remaining`` / ``-Reset``, or
    the combined ``RateLimit: limit=10, remaining=0, reset=3`` (``r=``/``t=`` in the newer
    draft); None where not said."""
    combined = headers.get("RateLimit", "")
    found: list[float | None] = []
    for separate, keys in (
        ("RateLimit-Remaining", ("remaining", "r")),
        ("RateLimit-Reset", ("reset", "t")),
    ):
        value: str | None = headers.get(separate)
        if value is None:
            match = re.search(rf"\b(?:{'|'.join(keys)})\s*=\s*(\d+(?:\.\d+)?)", combined)
            value = match.group(1) if match else None
        try:
            found.append(float(value) if value is not None else None)
        except ValueError:
            found.append(None)
    return found[0], found[1]


def _status_of(error: Exception) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _retry_after_s(error: Exception) -> float | None:
    """Seconds the server asks to wait: ``Retry-After``, else the ``RateLimit`` headers'
    reset (``RateLimit-Reset: 3``, or ``RateLimit: limit=10, remaining=0, reset=3``)."""
    response = getattr(error, "response", None)
    if response is None:
        return None
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):  # absent, or an HTTP date: the RateLimit reset, if said
        reset = _rate_limit_window(response.headers)[1]
        return max(0.0, reset) if reset is not None else None


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
    attempt = 0
    rate_limited_s = 0.0
    while True:
        if policy.limiter is not None:
            policy.limiter.wait(sleep)
        try:
            return call()
        except Exception as error:
            if not _is_retryable(error):
                raise
            retry_after = _retry_after_s(error)
            if retry_after is not None and retry_after > policy.max_retry_after_s:
                raise HubUnavailableError(
                    f"{what}: rate limited, the Hub asks to wait {retry_after:.0f}s",
                    repo_id=repo_id,
                ) from error
            if _status_of(error) == 429 and rate_limited_s < policy.rate_limit_budget_s:
                # Paced, not failed: every worker waits out the Hub's pause together.
                pause = retry_after if retry_after is not None else delay
                rate_limited_s += pause
                if policy.limiter is not None:
                    policy.limiter.pause(pause)
                else:
                    sleep(pause)
                delay = min(policy.max_delay_s, delay * 2)
                continue
            attempt += 1
            if attempt >= policy.attempts:
                raise HubUnavailableError(
                    f"{what}: {describe_transport_error(error)} after {attempt} attempts",
                    repo_id=repo_id,
                ) from error
            sleep(retry_after if retry_after is not None else delay)
            delay = min(policy.max_delay_s, delay * 2)
