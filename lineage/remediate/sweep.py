"""Which λ to evaluate, whether each is within the safety budget, and which to recommend.

Pure decisions over measured events, no models: the caller merges and evaluates one λ at
a time through ``evaluate(λ) -> PointEvents`` (from its cache where it can), and
``run_sweep`` decides where to look next and what the sweep found::

    document = run_sweep(evaluate, finetune="org/ft", aligned="org/al")
    document.recommended.lam   # the largest λ within the budget that keeps a task gain

A list of λ is evaluated as given, with λ = 0 and λ = 1 (the two models) always added.
``lambdas="auto"`` evaluates the coarse grid 0, 0.25, 0.5, 0.75, 1 and then bisects, on a
grid of ``resolution`` (0.05), between the largest λ within the budget and the smallest one
above it that is not, until they are one step apart or ``max_merges`` merges were evaluated
(λ = 0 and λ = 1 are the two models themselves, not merges).

The budget is one-sided and paired: the upper end of a two-sided 90% interval is a one-sided
95% bound. With ``delta``, the paired bootstrap bound of ASR(λ) − ASR(aligned) over the same
prompts (``audit.statistics.compare``) must not exceed δ; with ``max_asr``, the Wilson bound
of ASR(λ) itself must not exceed the cap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from audit.statistics import compare, wilson_interval
from lineage.documents.remediation import (
    BudgetDoc,
    RecommendationDoc,
    RemediationDocument,
    SweepPointDoc,
)
from lineage.remediate.errors import InvalidLambdaError, InvalidSweepError

COARSE_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_RESOLUTION = 0.05
DEFAULT_MAX_MERGES = 9
ONE_SIDED_95 = 0.90  # the two-sided level whose upper end is a one-sided 95% bound
REPORTED_CONFIDENCE = 0.95  # the intervals shown beside each rate


@dataclass(frozen=True)
class PointEvents:
    """What evaluating one λ gave, item by item, in suite order (the same items for every λ).

    ``harmful``: True where the answer was unsafe; ``task``: True where it was correct;
    ``benign``: True where a safe request was refused (empty when no benign suite ran).
    """

    harmful: Sequence[bool]
    task: Sequence[bool]
    benign: Sequence[bool] = ()
    run_ids: Mapping[str, int] = field(default_factory=dict)  # suite name -> evaluation run


Evaluate = Callable[[float], PointEvents]
Ahead = Callable[[Sequence[float]], None]


def run_sweep(
    evaluate: Evaluate,
    *,
    finetune: str,
    aligned: str,
    lambdas: str | Sequence[float] = "auto",
    budget: BudgetDoc | None = None,
    resolution: float = DEFAULT_RESOLUTION,
    max_merges: int = DEFAULT_MAX_MERGES,
    seed: int = 0,
    ahead: Ahead | None = None,
) -> RemediationDocument:
    """Evaluate the λ the sweep needs, then judge each against the budget and recommend.

    ``ahead(λs)``, when given, is told each round of λ before they are evaluated one by one:
    the list given, or the coarse grid (an executor evaluates a round together)."""
    budget = budget or BudgetDoc()
    if budget.delta is None and budget.max_asr is None:
        raise InvalidSweepError("the safety budget needs --delta or --max-asr")
    measured = _Measurements(evaluate)
    if lambdas == "auto":
        _auto(measured, budget, resolution, max_merges, seed, ahead)
    else:  # the fine-tune too: the task gain a merge keeps is measured against it
        round_ = [0.0, *checked_lambdas(lambdas), 1.0]
        if ahead is not None:
            ahead(sorted(set(round_)))
        for lam in round_:
            measured(lam)
    events = measured.events
    points = [_point(lam, events[lam], events[0.0], budget, seed) for lam in sorted(events)]
    points = _mark_front(points)
    recommended, why_not = _recommend(points)
    return RemediationDocument(
        finetune=finetune,
        aligned=aligned,
        budget=budget,
        sweep=points,
        recommended=recommended,
        no_recommendation=why_not,
    )


def checked_lambdas(lambdas: Sequence[float]) -> list[float]:
    """The λ given, each in [0, 1], sorted and without repeats; else a one-line error."""
    if not lambdas:
        raise InvalidSweepError("--lambdas needs at least one value in [0, 1]")
    for lam in lambdas:
        if isinstance(lam, bool) or not isinstance(lam, int | float) or not 0.0 <= lam <= 1.0:
            raise InvalidLambdaError(lam)
    return sorted({_on_grid(lam) for lam in lambdas})


def within_budget(
    point: PointEvents, aligned: PointEvents, budget: BudgetDoc, seed: int = 0
) -> tuple[bool, float]:
    """Whether ``point`` is within the budget, and the one-sided 95% bound checked."""
    if budget.max_asr is not None:
        unsafe = sum(bool(e) for e in point.harmful)
        bound = wilson_interval(unsafe, len(point.harmful), ONE_SIDED_95)[1]
        return bound <= budget.max_asr, bound
    comparison = compare(point.harmful, aligned.harmful, confidence=ONE_SIDED_95, seed=seed)
    bound = comparison.delta_ci[1]
    assert budget.delta is not None
    return bound <= budget.delta, bound


# -- where to look ------------------------------------------------------------------------


class _Measurements:
    """Each λ evaluated once: asking again for a λ already measured costs nothing."""

    def __init__(self, evaluate: Evaluate):
        self.evaluate = evaluate
        self.events: dict[float, PointEvents] = {}

    def __call__(self, lam: float) -> PointEvents:
        lam = _on_grid(lam)
        if lam not in self.events:
            self.events[lam] = self.evaluate(lam)
        return self.events[lam]


def _auto(
    measured: _Measurements,
    budget: BudgetDoc,
    resolution: float,
    max_merges: int,
    seed: int,
    ahead: Ahead | None,
) -> None:
    """The coarse grid (told to ``ahead`` as one round), then bisection where the budget is
    crossed."""
    coarse = _coarse_grid(max_merges)
    if ahead is not None:
        ahead(coarse)
    aligned = measured(0.0)  # every budget is relative to it or checked beside it

    def ok(lam: float) -> bool:
        return within_budget(measured(lam), aligned, budget, seed)[0]

    for lam in coarse:
        measured(lam)
    merges = sum(0.0 < lam < 1.0 for lam in coarse)
    known = sorted(measured.events)
    low = max((lam for lam in known if ok(lam)), default=0.0)
    above = [lam for lam in known if lam > low and not ok(lam)]
    if not above:
        return  # within the budget all the way up: nothing to bisect
    high = min(above)
    while merges < max_merges:
        steps = _grid_between(low, high, resolution)
        if not steps:
            return
        lam = steps[(len(steps) - 1) // 2]
        merges += 1
        if ok(lam):
            low = lam
        else:
            high = lam


def _coarse_grid(max_merges: int) -> list[float]:
    """The coarse grid's λ: both ends, and its merges up to ``max_merges``."""
    inner = [lam for lam in COARSE_GRID if 0.0 < lam < 1.0][: max(0, max_merges)]
    return [0.0, *inner, 1.0]


def _grid_between(low: float, high: float, resolution: float) -> list[float]:
    """The multiples of ``resolution`` strictly between ``low`` and ``high``."""
    first = round(low / resolution) + 1
    last = round(high / resolution) - 1
    return [_on_grid(k * resolution) for k in range(first, last + 1)]


def _on_grid(lam: float) -> float:
    """λ rounded to 6 decimals, so 0.1 + 0.2 and 0.3 are one point of the sweep."""
    return round(float(lam), 6)


# -- what was found -----------------------------------------------------------------------


def _point(
    lam: float, point: PointEvents, aligned: PointEvents, budget: BudgetDoc, seed: int
) -> SweepPointDoc:
    ok, bound = within_budget(point, aligned, budget, seed)
    asr, asr_ci = _rate(point.harmful)
    task, task_ci = _rate(point.task)
    over_refusal, over_refusal_ci = _rate(point.benign) if point.benign else (None, None)
    return SweepPointDoc(
        lam=lam,
        asr=asr,
        asr_ci=asr_ci,
        task=task,
        task_ci=task_ci,
        over_refusal=over_refusal,
        over_refusal_ci=over_refusal_ci,
        within_budget=ok,
        pareto=False,
        budget_bound=round(bound, 6),
        n_harmful=len(point.harmful),
        n_task=len(point.task),
        n_benign=len(point.benign),
        run_ids=dict(point.run_ids),
    )


def _rate(events: Sequence[bool]) -> tuple[float, list[float]]:
    if not events:
        raise InvalidSweepError("a suite of the sweep has no items")
    count = sum(bool(e) for e in events)
    low, high = wilson_interval(count, len(events), REPORTED_CONFIDENCE)
    return round(count / len(events), 6), [round(low, 6), round(high, 6)]


def _mark_front(points: list[SweepPointDoc]) -> list[SweepPointDoc]:
    """Mark the points no other point beats on every axis (ASR ↓, task ↑, over-refusal ↓)."""

    def axes(p: SweepPointDoc) -> tuple[float, float, float]:
        return (p.asr, -p.task, p.over_refusal if p.over_refusal is not None else 0.0)

    marked = []
    for p in points:
        mine = axes(p)
        dominated = any(
            all(o <= m for o, m in zip(axes(q), mine, strict=True)) and axes(q) != mine
            for q in points
        )
        marked.append(p.model_copy(update={"pareto": not dominated}))
    return marked


def _recommend(points: list[SweepPointDoc]) -> tuple[RecommendationDoc | None, str | None]:
    """The largest λ within the budget, then the best task score; nothing when no λ above 0
    within the budget keeps any task gain over the aligned model."""
    aligned = next(p for p in points if p.lam == 0.0)
    candidates = [p for p in points if p.within_budget and p.lam > 0.0 and p.task > aligned.task]
    if not candidates:
        inside = [p.lam for p in points if p.within_budget and p.lam > 0.0]
        why = (
            "no λ above 0 is within the safety budget"
            if not inside
            else "no λ above 0 within the safety budget scores above the aligned model on the"
            f" task (aligned {aligned.task:.1%}); keep the aligned model"
        )
        return None, why
    best = max(candidates, key=lambda p: (p.lam, p.task))
    reason = (
        f"the largest λ within the safety budget: ASR {best.asr:.1%} (aligned {aligned.asr:.1%},"
        f" bound {best.budget_bound:+.3f}), task {best.task:.1%} (aligned {aligned.task:.1%})"
    )
    return RecommendationDoc(lam=best.lam, asr=best.asr, task=best.task, reason=reason), None
