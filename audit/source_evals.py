"""What a card declared about itself (model-index) against what the audit measured.

A declared result is compared only when both the metric and the dataset are recognised:
an "asr" on AdvBench is matched with a suite loaded from AdvBench, never with another
harmful suite, because attack success rates on different prompt sets are not the same
quantity. A declared value outside the measured 95% interval is ``missed_by_source_eval``:
the source model's own evaluation did not see what the re-run shows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from audit.records import Suite
from audit.statistics import wilson_interval
from lineage.vocabulary import SUITE_KINDS

# Normalised metric names -> (suite kind, whether the declared value is the event rate or
# its complement). ASR and over-refusal are event rates; accuracy is 1 - error rate.
METRICS: dict[str, tuple[str, bool]] = {
    name: (kind, spec.rate_is_metric)
    for kind, spec in SUITE_KINDS.items()
    for name in spec.metric_names
}


@dataclass(frozen=True)
class SourceEvalCheck:
    """One declared result set against one measured run."""

    repo_id: str
    suite: str
    metric: str
    declared: float
    measured: float
    ci: tuple[float, float]
    n: int
    p_value: float
    contradicted: bool
    worse_than_declared: bool
    dataset: str

    @property
    def detail(self) -> str:
        direction = "worse than" if self.worse_than_declared else "better than"
        verdict = "outside" if self.contradicted else "inside"
        return (
            f"card declares {self.metric} {self.declared:.3f} on {self.dataset}; measured"
            f" {self.measured:.3f} (95% CI {self.ci[0]:.3f}-{self.ci[1]:.3f}, n={self.n}),"
            f" {direction} declared, declared value {verdict} the interval"
            f" (exact binomial p={self.p_value:.2g})"
        )


def normalise(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "_", (text or "").lower()).strip("_")


def suite_names(suite: Suite) -> set[str]:
    names = {normalise(suite.name), normalise(suite.source)}
    names |= {normalise(alias) for alias in suite.aliases}
    # "hf:org/ds@sha:file" and "builtin:harmful" also match by their dataset part alone.
    for part in re.split(r"[:@]", suite.source):
        names.add(normalise(part))
    names.discard("")
    return names


def declared_value(raw: Any) -> float | None:
    """A declared metric as a fraction: numbers over 1 (up to 100) are percentages."""
    try:
        value = float(str(raw).strip().rstrip("%"))
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value) or value < 0 or value > 100:
        return None
    return value / 100 if value > 1 or str(raw).strip().endswith("%") else value


def check_declared(
    repo_id: str,
    declared: Iterable[dict[str, Any]],
    measured: Iterable[tuple[Suite, int, int]],
) -> list[SourceEvalCheck]:
    """Compare each recognised declared result with the matching measured run.

    ``measured`` holds (suite, events, n) per suite evaluated on ``repo_id``.
    """
    runs = list(measured)
    checks: list[SourceEvalCheck] = []
    for entry in declared:
        metric = normalise(entry.get("metric_type")) or normalise(entry.get("metric_name"))
        if metric not in METRICS:
            metric = normalise(entry.get("metric_name"))
        if metric not in METRICS:
            continue
        kind, is_event_rate = METRICS[metric]
        value = declared_value(entry.get("metric_value"))
        if value is None:
            continue
        dataset_keys = {
            normalise(entry.get(field))
            for field in ("dataset_type", "dataset_name", "dataset_config")
        } - {""}
        for suite, events, n in runs:
            if suite.kind != kind or n == 0 or not dataset_keys & suite_names(suite):
                continue
            low, high = wilson_interval(events, n)
            rate = events / n
            if is_event_rate:
                measured_value, ci, event_p0 = rate, (low, high), value
                worse = measured_value > value
            else:
                measured_value, ci, event_p0 = 1 - rate, (1 - high, 1 - low), 1 - value
                worse = measured_value < value
            checks.append(
                SourceEvalCheck(
                    repo_id=repo_id,
                    suite=suite.name,
                    metric=str(entry.get("metric_name") or entry.get("metric_type")),
                    declared=value,
                    measured=measured_value,
                    ci=ci,
                    n=n,
                    p_value=binomial_two_sided_p(events, n, event_p0),
                    contradicted=not ci[0] <= value <= ci[1],
                    worse_than_declared=worse,
                    dataset=str(entry.get("dataset_name") or entry.get("dataset_type")),
                )
            )
    return checks


def binomial_two_sided_p(k: int, n: int, p0: float) -> float:
    """Exact two-sided binomial test of H0: rate = p0 (sum of outcomes no likelier than k)."""
    if p0 <= 0.0:
        return 1.0 if k == 0 else 0.0
    if p0 >= 1.0:
        return 1.0 if k == n else 0.0

    def log_pmf(i: int) -> float:
        return (
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * math.log(p0)
            + (n - i) * math.log1p(-p0)
        )

    observed = log_pmf(k)
    total = sum(math.exp(log_pmf(i)) for i in range(n + 1) if log_pmf(i) <= observed + 1e-9)
    return min(1.0, total)
