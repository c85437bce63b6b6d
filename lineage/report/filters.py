"""The brief's text formats: rates, intervals, p-values, dates, clipped repository text.

Pure functions of plain values, shared by the section builders and, through ``FILTERS``, by
the Jinja2 templates (``{{ rate | percent }}``). Nothing here knows the registry or the
brief's structure; every number a reader sees is written by one of these.

    >>> percent(0.42), points(0.35), p_text(0.0004)
    ('42.0%', '+35.0 points', '< 0.001')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

MAX_EVIDENCE_CHARS = 240  # one clipped line of repository text, unless a caller says less


def percent(rate: float | None) -> str:
    """``0.42`` -> ``42.0%``; unknown -> ``n/a``."""
    if rate is None or not math.isfinite(rate):
        return "n/a"
    return f"{rate * 100:.1f}%"


def ci_text(ci: Sequence[float] | None) -> str:
    """``[0.351, 0.492]`` -> ``95% CI 35.1–49.2%``."""
    if not ci or len(ci) != 2:
        return "no interval"
    return f"95% CI {ci[0] * 100:.1f}–{ci[1] * 100:.1f}%"


def ci_range(ci: Sequence[float] | None) -> str:
    """``[0.351, 0.492]`` -> ``35.1–49.2%`` (for table cells headed "95% CI")."""
    if not ci or len(ci) != 2:
        return ""
    return f"{ci[0] * 100:.1f}–{ci[1] * 100:.1f}%"


def points_range(ci: Sequence[float] | None) -> str:
    """``[0.26, 0.44]`` -> ``+26.0 to +44.0``."""
    if not ci or len(ci) != 2:
        return ""
    return f"{signed(ci[0])} to {signed(ci[1])}"


def rate_ci(rate: float | None, ci: Sequence[float] | None) -> str:
    """``42.0% (95% CI 35.1–49.2%)``."""
    if rate is None:
        return "n/a"
    return f"{percent(rate)} ({ci_text(ci)})" if ci else percent(rate)


def signed(value: float) -> str:
    """A signed number of percentage points with a true minus sign: ``+35.0``, ``−2.5``."""
    points = value * 100
    if abs(points) < 0.05:
        return "0.0"
    return f"+{points:.1f}" if points > 0 else f"−{-points:.1f}"


def points(delta: float | None) -> str:
    """``0.35`` -> ``+35.0 points`` (percentage points)."""
    return "n/a" if delta is None else f"{signed(delta)} points"


def points_ci(ci: Sequence[float] | None) -> str:
    """``[0.26, 0.44]`` -> ``95% CI +26.0 to +44.0 points``."""
    if not ci or len(ci) != 2:
        return "no interval"
    return f"95% CI {signed(ci[0])} to {signed(ci[1])} points"


def p_equals(p: float | None) -> str:
    """``= 0.003`` or ``< 0.001``: a p-value after its name."""
    text = p_text(p)
    return text if text.startswith("<") else f"= {text}"


def p_text(p: float | None) -> str:
    """A p-value as a reader scans it: ``0.003``, ``< 0.001``, ``1.00``."""
    if p is None or not math.isfinite(p):
        return "n/a"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}" if p < 0.995 else "1.00"


def parameters_text(count: int | None) -> str:
    """``7241732096`` -> ``7.24 billion (7,241,732,096)``."""
    if not count:
        return "not recorded"
    for size, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"), (1e3, "thousand")):
        if count >= size:
            return f"{count / size:.3g} {word} ({count:,})"
    return f"{count:,}"


def moment_text(value: datetime | str | None) -> str:
    """A timestamp as ``2024-05-01 12:00 UTC``."""
    moment = as_moment(value)
    return "not recorded" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def short_sha(sha: str | None) -> str:
    """The first 12 characters of a commit sha; ``none`` for no sha."""
    return (sha or "")[:12] or "none"


def as_moment(value: datetime | str | None) -> datetime | None:
    """A timestamp or ISO 8601 text as an aware UTC datetime; None if it is neither."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return (
        value.replace(tzinfo=timezone.utc)
        if value.tzinfo is None
        else value.astimezone(timezone.utc)
    )


def clip(text: str | None, limit: int = MAX_EVIDENCE_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# The filters the templates use, by the name they use them under.
FILTERS: dict[str, Callable[..., str]] = {
    "percent": percent,
    "rate_ci": rate_ci,
    "ci_text": ci_text,
    "ci_range": ci_range,
    "points_range": points_range,
    "points": points,
    "signed": signed,
    "points_ci": points_ci,
    "p_text": p_text,
    "short_sha": short_sha,
}
