"""Section 5, results: the measured rates of each model, the charts, the paired comparisons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from lineage.report.charts import category_chart_svg, rate_chart_svg
from lineage.report.filters import clip, short_sha
from lineage.report.inputs import BriefInputs, audit_suites
from lineage.report.views import Chart, ComparisonRow, ModelResult, ResultsInfo
from lineage.report.vocabulary import METRIC_LABELS
from lineage.vocabulary import SuiteKind


def build_results(inputs: BriefInputs) -> ResultsInfo | None:
    """The audit's measurements of the subject and its parents; None if never audited."""
    report = inputs.report
    return _results(report, inputs.subject, inputs.members) if report else None


def _results(report: Mapping[str, Any], subject: str, members: Sequence[str]) -> ResultsInfo:
    models = report.get("models") or {}
    results = [_model_result(repo, models[repo], _role(repo, subject, models)) for repo in members]
    rate_charts, category_charts = [], []
    for suite in audit_suites(report):
        if suite["kind"] != SuiteKind.HARMFUL:
            continue
        name = suite["name"]
        rows = [
            {
                "model": repo,
                "rate": models[repo]["suites"][name]["rate"],
                "ci": models[repo]["suites"][name]["ci"],
                "role": _role(repo, subject, models),
            }
            for repo in members
            if name in (models[repo].get("suites") or {})
        ]
        title = f"Attack success rate on {name}"
        rate_charts.append(Chart(title, Markup(rate_chart_svg(rows, title=title, label="ASR"))))
        categories: dict[str, dict[str, list[int]]] = {}
        for repo in members:
            by_category = ((models[repo].get("suites") or {}).get(name) or {}).get("by_category")
            for category, cell in sorted((by_category or {}).items()):
                categories.setdefault(category, {})[repo] = list(cell)
        title = f"Attack success rate by category on {name}"
        svg = category_chart_svg(list(members), dict(sorted(categories.items())), title=title)
        category_charts.append(Chart(title, Markup(svg)))
    comparisons = [
        _comparison_row(c) for c in report.get("comparisons", []) if c.get("model") == subject
    ]
    return ResultsInfo(
        models=results,
        rate_charts=rate_charts,
        category_charts=category_charts,
        safety=[c for c in comparisons if c.kind == SuiteKind.HARMFUL],
        over_refusal=[c for c in comparisons if c.kind == SuiteKind.BENIGN],
        capability=[c for c in comparisons if c.kind == SuiteKind.CAPABILITY],
        skipped=[clip(line) for line in report.get("skipped", [])],
    )


def _role(repo: str, subject: str, models: Mapping[str, Any]) -> str:
    """The model's role in this brief (an audit with descendants made parents subjects too)."""
    if repo == subject:
        return "subject"
    return "base" if (models.get(repo) or {}).get("role") == "base" else "parent"


def _model_result(repo: str, entry: Mapping[str, Any], role: str) -> ModelResult:
    return ModelResult(
        repo_id=repo,
        role=role,
        revision=short_sha(entry.get("revision")),
        n=entry.get("n"),
        asr=entry.get("asr"),
        asr_ci=entry.get("ci"),
        over_refusal=entry.get("over_refusal"),
        over_refusal_ci=entry.get("over_refusal_ci"),
        capability=entry.get("capability"),
        capability_ci=entry.get("capability_ci"),
        degenerate=int(entry.get("degenerate") or 0),
        parse_failures=int(entry.get("judge_parse_failures") or 0),
    )


def _comparison_row(c: Mapping[str, Any]) -> ComparisonRow:
    return ComparisonRow(
        child=c["model"],
        parent=c["against"],
        suite=c["suite"],
        kind=c["kind"],
        metric=METRIC_LABELS.get(c["kind"], "rate"),
        n=int(c["n"]),
        child_rate=float(c["child_rate"]),
        parent_rate=float(c["parent_rate"]),
        child_ci=list(c["child_ci"]),
        parent_ci=list(c["parent_ci"]),
        delta=float(c["delta"]),
        delta_ci=list(c["ci"]),
        b=int(c.get("b") or 0),
        c=int(c.get("c") or 0),
        test=str(c.get("test") or ""),
        p_value=float(c["p_value"]),
        adjusted_p=c.get("adjusted_p"),
        outcome=str(c.get("outcome") or "none"),
        mdd=c.get("mdd"),
    )
