"""The λ sweep's decisions on families whose truth is known, item by item.

Each synthetic family says, for every λ, which harmful prompts get an unsafe answer and which
task items a correct one; the sweep must find the largest λ within the budget, evaluate no
more merges than it may, and say plainly when nothing qualifies.
"""

from __future__ import annotations

import json

import pytest

from lineage.documents.remediation import BudgetDoc, RemediationDocument
from lineage.remediate.errors import InvalidLambdaError, InvalidSweepError
from lineage.remediate.sweep import (
    DEFAULT_MAX_MERGES,
    PointEvents,
    checked_lambdas,
    run_sweep,
)

N = 200  # items per suite: large enough that a 50-point jump is far outside any interval


def step_family(unsafe_from: float, *, task_gain: bool = True):
    """ASR 0 below ``unsafe_from`` and 50% from it on; task accuracy grows with λ (or not)."""
    calls: list[float] = []

    def evaluate(lam: float) -> PointEvents:
        calls.append(lam)
        harmful = [lam >= unsafe_from and i % 2 == 0 for i in range(N)]
        solved = int(N * (0.4 + 0.5 * lam)) if task_gain else int(N * 0.4)
        task = [i < solved for i in range(N)]
        benign = [lam < 0.1 and i < 20 for i in range(N)]  # the aligned model over-refuses
        return PointEvents(harmful=harmful, task=task, benign=benign)

    return evaluate, calls


def test_auto_finds_the_largest_lambda_within_the_budget() -> None:
    evaluate, calls = step_family(0.6)
    document = run_sweep(evaluate, finetune="org/ft", aligned="org/al")
    assert document.recommended is not None
    assert document.recommended.lam == pytest.approx(0.55)  # the last grid step below 0.6
    inside = {p.lam for p in document.sweep if p.within_budget}
    outside = {p.lam for p in document.sweep if not p.within_budget}
    assert max(inside) == pytest.approx(0.55) and min(outside) == pytest.approx(0.6)
    merges = [lam for lam in calls if 0 < lam < 1]
    assert len(merges) == len(set(merges)) <= DEFAULT_MAX_MERGES  # each λ evaluated once
    assert calls[0] == 0.0 and 1.0 in calls


def test_the_budget_is_a_paired_upper_bound_not_the_point_estimate() -> None:
    """A child 4 points above the aligned model on 200 prompts: its point estimate is within
    δ = 0.05, but the paired one-sided 95% bound is not; δ = 0.10 admits it."""

    def evaluate(lam: float) -> PointEvents:
        unsafe = 8 if 0 < lam < 1 else (0 if lam == 0 else N)  # 4% against 0%; ft all
        return PointEvents(harmful=[i < unsafe for i in range(N)], task=[lam > 0] * N)

    strict = run_sweep(evaluate, finetune="f", aligned="a", lambdas=[0.5])
    loose = run_sweep(
        evaluate, finetune="f", aligned="a", lambdas=[0.5], budget=BudgetDoc(delta=0.1)
    )
    (half,) = [p for p in strict.sweep if p.lam == 0.5]
    assert half.asr == pytest.approx(0.04) and half.budget_bound > 0.05 and not half.within_budget
    assert strict.recommended is None
    assert loose.recommended is not None and loose.recommended.lam == 0.5


def test_an_absolute_cap_checks_the_asr_itself() -> None:
    evaluate, _ = step_family(0.6)
    document = run_sweep(
        evaluate,
        finetune="f",
        aligned="a",
        lambdas=[0.25, 0.5, 0.75],
        budget=BudgetDoc(delta=None, max_asr=0.6),
    )
    # 50% ASR from 0.6 on: its one-sided 95% Wilson bound (~0.56) is under a 60% cap; the
    # fine-tune (λ = 1, always measured) is then within the budget and keeps the most task.
    assert [p.lam for p in document.sweep] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert all(p.within_budget for p in document.sweep)
    assert document.recommended is not None and document.recommended.lam == 1.0


def test_no_task_gain_within_the_budget_recommends_nothing_and_says_why() -> None:
    evaluate, _ = step_family(0.3, task_gain=False)
    document = run_sweep(evaluate, finetune="f", aligned="a")
    assert document.recommended is None
    assert "keep the aligned model" in (document.no_recommendation or "")
    data = document.to_json()
    assert data["recommended"] is None and data["model_dir"] is None


def test_the_pareto_front_and_the_json_contract() -> None:
    evaluate, _ = step_family(0.6)
    document = run_sweep(evaluate, finetune="org/ft", aligned="org/al", lambdas=[0.5, 0.75, 1])
    data = json.loads(json.dumps(document.to_json()))
    assert list(data)[:8] == [
        "format_version",
        "finetune",
        "aligned",
        "method",
        "budget",
        "sweep",
        "recommended",
        "no_recommendation",
    ]
    assert data["budget"] == {"delta": 0.05, "max_asr": None}
    point = data["sweep"][0]
    for key in ("lambda", "asr", "asr_ci", "task", "task_ci", "over_refusal", "within_budget"):
        assert key in point
    assert data["recommended"]["lambda"] == 0.5 and data["recommended"]["reason"]
    # λ = 0.75 has λ = 1's ASR and a lower task score: dominated. 0 (no ASR, least task but
    # more over-refusal) and 0.5 (no ASR, more task, no over-refusal) are not both optimal:
    # 0.5 beats 0 on every axis.
    front = {p["lambda"] for p in data["sweep"] if p["pareto"]}
    assert front == {0.5, 1.0}
    assert RemediationDocument.from_json(data).to_json() == data


@pytest.mark.parametrize("bad", [[-0.1], [1.5], [float("nan")], [0.5, True], []])
def test_lambdas_outside_the_unit_interval_are_one_line_usage_errors(bad) -> None:
    with pytest.raises((InvalidLambdaError, InvalidSweepError)) as raised:
        checked_lambdas(bad)
    assert raised.value.exit_code == 2 and "\n" not in str(raised.value)


def test_a_budget_that_says_nothing_is_refused() -> None:
    evaluate, _ = step_family(0.6)
    with pytest.raises(InvalidSweepError, match="--delta or --max-asr"):
        run_sweep(evaluate, finetune="f", aligned="a", budget=BudgetDoc(delta=None))
