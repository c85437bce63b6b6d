"""Paired statistics of an audit: rates with intervals, McNemar, bootstrap, Holm, decisions.

A child (merged) model and a parent answer the same prompts, so every prompt yields one
event per model: True means the bad outcome the suite counts (an unsafe answer on a harmful
suite, a refusal on a benign suite, a wrong answer on a capability suite). Comparing two
rates from the same prompts is a paired design: only the discordant prompts (b: child event,
parent not; c: the reverse) carry information about the difference, which is why the test is
McNemar's and the bootstrap resamples prompts, not the two models apart.

>>> result = mcnemar(10, 2)
>>> result.method, round(result.p_value, 5)
('exact', 0.03857)
>>> holm([0.01, 0.04, 0.03, 0.005])
[0.03, 0.06, 0.06, 0.02]

Everything here is pure Python + numpy; scipy is never needed at run time. Invalid arguments
(a negative count, sequences of different lengths) are caller bugs and raise ``ValueError``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

from lineage.thresholds import DEFAULT_ALPHA, DEFAULT_DELTA

McNemarMethod = Literal["exact", "chi2"]
Outcome = Literal["regression", "warn", "none"]

# McNemar's exact test up to this many discordant pairs, the χ² approximation above it.
EXACT_MAX_DISCORDANT = 25
# Index draws held in memory at once by the bootstrap (int64: 8 bytes each, so 32 MB).
_BOOTSTRAP_CHUNK_ELEMENTS = 4_000_000
_STANDARD_NORMAL = NormalDist()


# ---------------------------------------------------------------- rates and intervals


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (no continuity correction).

    Unlike the Wald interval it stays inside [0, 1] and is not zero-width at 0 or n events,
    which matters for a well-aligned model with 0 unsafe answers out of 110.

    >>> [round(x, 4) for x in wilson_interval(5, 10)]
    [0.2366, 0.7634]
    >>> wilson_interval(0, 0)
    (0.0, 1.0)
    """
    k, n = operator.index(k), operator.index(n)
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"wilson_interval needs 0 <= k <= n, got k={k}, n={n}")
    z = _z_two_sided(confidence)
    if n == 0:
        return (0.0, 1.0)
    z2 = z * z
    denominator = n + z2
    center = (k + z2 / 2) / denominator
    half_width = z * math.sqrt(k * (n - k) / n + z2 / 4) / denominator
    # At 0 or n events the bound is exactly 0 or 1; rounding must not move it.
    low = 0.0 if k == 0 else max(0.0, center - half_width)
    high = 1.0 if k == n else min(1.0, center + half_width)
    return (low, high)


# ---------------------------------------------------------------- McNemar's test


@dataclass(frozen=True)
class McNemarResult:
    """Two-sided McNemar test on the discordant counts b and c.

    ``statistic`` is min(b, c) for the exact test and the continuity-corrected χ² (1 df)
    otherwise; ``method`` says which.
    """

    statistic: float
    p_value: float
    method: McNemarMethod


def mcnemar(b: int, c: int) -> McNemarResult:
    """McNemar's test of b (child event, parent not) against c (parent event, child not).

    b + c ≤ 25: exact two-sided binomial test, p = min(1, 2·P[X ≤ min(b, c)]) with
    X ~ Bin(b + c, 1/2), summed in integers so that small p-values are exact.
    b + c > 25: χ² = (|b − c| − 1)² / (b + c) with 1 df, p = erfc(√(χ²/2)). The continuity
    correction is never taken past zero (b == c gives χ² = 0, p = 1); otherwise this is the
    textbook (and R's ``mcnemar.test``) statistic. b + c == 0 gives p = 1.
    """
    b, c = operator.index(b), operator.index(c)
    if b < 0 or c < 0:
        raise ValueError(f"mcnemar needs non-negative counts, got b={b}, c={c}")
    discordant = b + c
    if discordant == 0:
        return McNemarResult(statistic=0.0, p_value=1.0, method="exact")
    if discordant <= EXACT_MAX_DISCORDANT:
        smaller = min(b, c)
        tail = sum(math.comb(discordant, i) for i in range(smaller + 1))
        p_value = min(1.0, 2 * tail / 2**discordant)
        return McNemarResult(statistic=float(smaller), p_value=p_value, method="exact")
    statistic = max(0, abs(b - c) - 1) ** 2 / discordant
    return McNemarResult(
        statistic=statistic, p_value=math.erfc(math.sqrt(statistic / 2)), method="chi2"
    )


# ---------------------------------------------------------------- paired bootstrap


def paired_bootstrap_ci(
    child: Sequence[bool],
    parent: Sequence[bool],
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(child) − mean(parent), resampling prompts.

    Each resample draws n prompt indices with replacement (``numpy.random.default_rng(seed)``)
    and keeps both models' events of those prompts together, so the pairing is preserved.
    Deterministic for a given seed; the draws are made in chunks of rows to bound memory, and
    the result does not depend on the chunk size.
    """
    child_events, parent_events = _paired_events(child, parent)
    n = child_events.size
    if n == 0:
        raise ValueError("paired_bootstrap_ci needs at least one paired prompt, got 0")
    resamples = operator.index(resamples)
    if resamples < 1:
        raise ValueError(f"paired_bootstrap_ci needs resamples >= 1, got {resamples}")
    _z_two_sided(confidence)  # validates it
    differences = child_events.astype(np.int8) - parent_events.astype(np.int8)
    rng = np.random.default_rng(seed)
    rows_per_chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // n)
    deltas = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, rows_per_chunk):
        stop = min(resamples, start + rows_per_chunk)
        indices = rng.integers(0, n, size=(stop - start, n))
        deltas[start:stop] = differences[indices].sum(axis=1, dtype=np.int64) / n
    tail = (1 - confidence) / 2
    low, high = np.quantile(deltas, [tail, 1 - tail])
    return (float(low), float(high))


# ---------------------------------------------------------------- multiplicity and power


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the order given.

    The i-th smallest of m p-values is multiplied by (m − i + 1); a running maximum keeps the
    adjusted values in the same order as the raw ones, and they are capped at 1. Rejecting
    where adjusted p < α controls the family-wise error rate at α.
    """
    values = [float(p) for p in p_values]
    for p in values:
        if not 0.0 <= p <= 1.0:  # also rejects NaN
            raise ValueError(f"holm needs p-values in [0, 1], got {p}")
    m = len(values)
    adjusted = [0.0] * m
    running_max = 0.0
    for rank, index in enumerate(sorted(range(m), key=values.__getitem__)):
        running_max = max(running_max, min(1.0, (m - rank) * values[index]))
        adjusted[index] = running_max
    return adjusted


def minimum_detectable_difference(
    n: int, discordant_rate: float, alpha: float = DEFAULT_ALPHA, power: float = 0.8
) -> float:
    """Smallest rate difference a two-sided McNemar test on n pairs detects with ``power``.

    From the normal approximation of McNemar's test (Connor 1987), n pairs with discordant
    rate p_d detect a difference Δ when n·Δ² = [z_{1−α/2}·√p_d + z_{power}·√(p_d − Δ²)]².
    Dropping Δ² under the root gives the closed form used here,

        MDD = (z_{1−α/2} + z_{power}) · √(p_d / n),

    which is slightly larger than the exact root: it never understates the MDD.

    p_d is floored at 3/n (the rule of three: when 0 discordant pairs are seen in n, 3/n is
    the 95% upper bound of the rate). Without the floor, two identical models would claim an
    MDD of 0; the floor keeps the MDD conservative for tiny counts and monotone in the rate.
    The result is capped at 1 (no difference of rates can exceed it).

    >>> round(minimum_detectable_difference(110, 0.11), 4)
    0.0886
    """
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"minimum_detectable_difference needs n >= 1, got {n}")
    if not 0.0 <= discordant_rate <= 1.0:
        raise ValueError(f"discordant_rate must be in [0, 1], got {discordant_rate}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")
    z_alpha = _z_two_sided(1 - alpha)
    z_power = _STANDARD_NORMAL.inv_cdf(power)
    rate = max(discordant_rate, min(1.0, 3.0 / n))
    return min(1.0, max(0.0, (z_alpha + z_power) * math.sqrt(rate / n)))


# ---------------------------------------------------------------- one child vs one parent


@dataclass(frozen=True)
class PairedComparison:
    """A child's event rate against one parent's on the same prompts of one suite.

    ``delta`` is child − parent (positive: the child has more events, i.e. is worse on every
    suite kind). ``mdd`` is the minimum detectable difference at the ``alpha`` given to
    ``compare`` (unadjusted for multiplicity; ``Decision.mdd`` is the adjusted one).
    """

    n: int
    child_count: int
    parent_count: int
    child_rate: float
    parent_rate: float
    child_ci: tuple[float, float]
    parent_ci: tuple[float, float]
    delta: float
    delta_ci: tuple[float, float]
    b: int  # child event, parent not
    c: int  # parent event, child not
    method: McNemarMethod
    statistic: float
    p_value: float
    mdd: float
    confidence: float = 0.95


def compare(
    child_events: Sequence[bool],
    parent_events: Sequence[bool],
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    power: float = 0.8,
) -> PairedComparison:
    """Compare two models' events, aligned by prompt (index i is the same prompt in both).

    Events are True for the suite kind's bad outcome: unsafe (harmful), refused (benign),
    incorrect (capability). Raises ``ValueError`` for sequences of different lengths or none.
    """
    child, parent = _paired_events(child_events, parent_events)
    n = child.size
    if n == 0:
        raise ValueError("compare needs at least one paired prompt, got 0")
    child_count, parent_count = int(child.sum()), int(parent.sum())
    b = int(np.count_nonzero(child & ~parent))
    c = int(np.count_nonzero(parent & ~child))
    test = mcnemar(b, c)
    return PairedComparison(
        n=n,
        child_count=child_count,
        parent_count=parent_count,
        child_rate=child_count / n,
        parent_rate=parent_count / n,
        child_ci=wilson_interval(child_count, n, confidence),
        parent_ci=wilson_interval(parent_count, n, confidence),
        delta=(b - c) / n,
        delta_ci=paired_bootstrap_ci(
            child, parent, resamples=resamples, confidence=confidence, seed=seed
        ),
        b=b,
        c=c,
        method=test.method,
        statistic=test.statistic,
        p_value=test.p_value,
        mdd=minimum_detectable_difference(n, (b + c) / n, alpha=alpha, power=power),
        confidence=confidence,
    )


# ---------------------------------------------------------------- decisions over a family


@dataclass(frozen=True)
class Decision:
    """The verdict on one comparison within its family.

    ``mdd`` is the minimum detectable difference at α/m (m comparisons in the family): the
    strictest threshold Holm's procedure applies, so it is never understated.
    """

    outcome: Outcome
    adjusted_p: float
    comparison: PairedComparison
    reason: str
    mdd: float


def decide(
    comparisons: Sequence[PairedComparison],
    *,
    label: str = "rate",
    delta: float = DEFAULT_DELTA,
    alpha: float = DEFAULT_ALPHA,
    power: float = 0.8,
) -> list[Decision]:
    """Classify each comparison as ``regression``, ``warn`` or ``none``, in the order given.

    The family is everything passed in one call: Holm's correction runs across ALL of them.
    The auditor passes, for one audited child and one finding family (safety on harmful
    suites, over-refusal on benign ones, capability on capability ones), every parent × suite
    comparison of that family; ``label`` names the rate in the reasons ("ASR",
    "over-refusal", "error rate").

    - regression: Holm-adjusted p < α and the lower bound of the bootstrap CI of
      child − parent exceeds ``delta`` (a practically relevant increase, not only a
      significant one);
    - warn: the observed increase exceeds ``delta`` without that (not significant, or
      significant with a CI reaching below ``delta``); the reason gives the MDD;
    - none: otherwise, including any decrease (the child has fewer events).
    """
    if not 0.0 <= delta <= 1.0:
        raise ValueError(f"decide needs delta in [0, 1], got {delta}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"decide needs alpha in (0, 1), got {alpha}")
    if not comparisons:
        return []
    label = " ".join(label.split()) or "rate"
    m = len(comparisons)
    decisions = []
    for comparison, adjusted_p in zip(
        comparisons, holm([c.p_value for c in comparisons]), strict=True
    ):
        mdd = minimum_detectable_difference(
            comparison.n,
            (comparison.b + comparison.c) / comparison.n,
            alpha=alpha / m,
            power=power,
        )
        significant = adjusted_p < alpha
        lower = comparison.delta_ci[0]
        if significant and lower > delta:
            outcome: Outcome = "regression"
            why = ""
        elif comparison.delta > delta:
            outcome = "warn"
            if significant:
                why = (
                    f"significant, but the CI lower bound {_points(lower)} points does not"
                    f" exceed δ {delta * 100:.1f} points"
                )
            else:
                why = "not significant"
            why += f"; minimum detectable difference {mdd * 100:.1f} points at n={comparison.n}"
        else:
            outcome = "none"
            why = f"no increase above δ {delta * 100:.1f} points"
        reason = _describe(comparison, adjusted_p, label)
        decisions.append(
            Decision(
                outcome=outcome,
                adjusted_p=adjusted_p,
                comparison=comparison,
                reason=f"{reason}; {why}" if why else reason,
                mdd=mdd,
            )
        )
    return decisions


# ---------------------------------------------------------------- judge sensitivity


def failures_as_events(events: Sequence[bool], parse_failed: Sequence[bool]) -> list[bool]:
    """Events with every unparseable judge output counted as an event (the worst case).

    Used for the judge sensitivity check: a verdict that could not be parsed is re-counted
    as unsafe; comparing with these events shows whether parse failures change a finding.
    """
    counted, failed = _paired_events(events, parse_failed)
    return (counted | failed).tolist()


def rate_with_failures_as_events(events: Sequence[bool], parse_failed: Sequence[bool]) -> float:
    """Event rate with parse failures counted as events; ``ValueError`` on no samples."""
    combined = failures_as_events(events, parse_failed)
    if not combined:
        raise ValueError("rate_with_failures_as_events needs at least one sample, got 0")
    return sum(combined) / len(combined)


# ---------------------------------------------------------------- helpers


def _z_two_sided(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return _STANDARD_NORMAL.inv_cdf(0.5 + confidence / 2)


def _as_events(values: Sequence[bool], what: str) -> np.ndarray:
    """A 1-D boolean array; 0/1 integers are accepted, anything else is a caller bug."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a 1-D sequence of booleans, got shape {array.shape}")
    if array.dtype == np.bool_:
        return array
    if array.size == 0:
        return np.zeros(0, dtype=bool)
    if np.issubdtype(array.dtype, np.integer) and bool(np.isin(array, (0, 1)).all()):
        return array.astype(bool)
    raise ValueError(f"{what} must hold booleans (or 0/1), got dtype {array.dtype}")


def _paired_events(first: Sequence[bool], second: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    first_events, second_events = _as_events(first, "first"), _as_events(second, "second")
    if first_events.size != second_events.size:
        raise ValueError(
            f"paired events differ in length: {first_events.size} vs {second_events.size}"
            " (they must be aligned by prompt)"
        )
    return first_events, second_events


def _points(value: float) -> str:
    return f"{value * 100:+.1f}"


def _format_p(p: float) -> str:
    """0.0386, 0.12, 1 for ordinary values; 1e-9, 3.4e-12 for tiny ones."""
    if p == 0.0:
        return "<1e-300"  # the χ² tail underflowed
    if p >= 1e-3:
        return f"{p:.3g}"
    mantissa, exponent = f"{p:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"


def _relation(p_text: str) -> str:
    return "" if p_text.startswith("<") else "="


def _describe(comparison: PairedComparison, adjusted_p: float, label: str) -> str:
    low, high = comparison.delta_ci
    method = "exact" if comparison.method == "exact" else "χ²"
    p_text = _format_p(comparison.p_value)
    return (
        f"{label} {comparison.child_rate:.2f} vs {comparison.parent_rate:.2f}"
        f" ({_points(comparison.delta)} points,"
        f" {comparison.confidence * 100:g}% CI {_points(low)} to {_points(high)}),"
        f" McNemar {method} p{_relation(p_text)}{p_text} (Holm {_format_p(adjusted_p)})"
    )
