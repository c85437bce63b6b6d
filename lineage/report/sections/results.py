"""Section 5, results: the measured rates of each model, the charts, the paired comparisons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup

from lineage.documents.audit import AuditDocument, ComparisonDoc, ModelDoc
from lineage.report.charts import category_chart_svg, rate_chart_svg
from lineage.report.filters import clip, short_sha
from lineage.report.inputs import BriefInputs, audit_suites
from lineage.report.views import Chart, ComparisonRow, ModelResult, ResultsInfo
from lineage.report.vocabulary import METRIC_LABELS
from lineage.vocabulary import SuiteKind


def build_results(inputs: BriefInputs) -> ResultsInfo | None:
    """The audit's measurements of the subject and its parents; None if never audited."""
    document = inputs.document
    return _results(document, inputs.subject, inputs.members) if document else None


def _results(document: AuditDocument, subject: str, members: Sequence[str]) -> ResultsInfo:
    models = document.models
    results = [_model_result(repo, models[repo], _role(repo, subject, models)) for repo in members]
    rate_charts, category_charts = [], []
    for suite in audit_suites(document):
        if suite.kind != SuiteKind.HARMFUL:
            continue
        name = str(suite.name)
        rows = [
            {
                "model": repo,
                "rate": models[repo].suites[name].rate,
                "ci": models[repo].suites[name].ci,
                "role": _role(repo, subject, models),
            }
            for repo in members
            if name in models[repo].suites
        ]
        title = f"Attack success rate on {name}"
        rate_charts.append(Chart(title, Markup(rate_chart_svg(rows, title=title, label="ASR"))))
        categories: dict[str, dict[str, list[int]]] = {}
        for repo in members:
            run = models[repo].suites.get(name)
            by_category = run.by_category if run is not None else {}
            for category, cell in sorted(by_category.items()):
                categories.setdefault(category, {})[repo] = list(cell)
        title = f"Attack success rate by category on {name}"
        svg = category_chart_svg(list(members), dict(sorted(categories.items())), title=title)
        category_charts.append(Chart(title, Markup(svg)))
    comparisons = [_comparison_row(c) for c in document.comparisons if c.model == subject]
    return ResultsInfo(
        models=results,
        rate_charts=rate_charts,
        category_charts=category_charts,
        safety=[c for c in comparisons if c.kind == SuiteKind.HARMFUL],
        over_refusal=[c for c in comparisons if c.kind == SuiteKind.BENIGN],
        capability=[c for c in comparisons if c.kind == SuiteKind.CAPABILITY],
        skipped=[clip(line) for line in document.skipped],
    )


def _role(repo: str, subject: str, models: Mapping[str, ModelDoc]) -> str:
    """The model's role in this brief (an audit with descendants made parents subjects too)."""
    if repo == subject:
        return "subject"
    entry = models.get(repo)
    return "base" if entry is not None and entry.role == "base" else "parent"


def _model_result(repo: str, entry: ModelDoc, role: str) -> ModelResult:
    return ModelResult(
        repo_id=repo,
        role=role,
        revision=short_sha(entry.revision),
        n=entry.n,
        asr=entry.asr,
        asr_ci=entry.ci,
        over_refusal=entry.over_refusal,
        over_refusal_ci=entry.over_refusal_ci,
        capability=entry.capability,
        capability_ci=entry.capability_ci,
        degenerate=entry.degenerate or 0,
        parse_failures=entry.judge_parse_failures or 0,
    )


def _comparison_row(c: ComparisonDoc) -> ComparisonRow:
    return ComparisonRow(
        child=c.model,
        parent=c.against,
        suite=c.suite,
        kind=c.kind,
        metric=METRIC_LABELS.get(c.kind, "rate"),
        n=c.n,
        child_rate=c.child_rate,
        parent_rate=c.parent_rate,
        child_ci=list(c.child_ci),
        parent_ci=list(c.parent_ci),
        delta=c.delta,
        delta_ci=list(c.ci),
        b=c.b,
        c=c.c,
        test=c.test,
        p_value=float(c.p_value),  # type: ignore[arg-type]  # a comparison always has one
        adjusted_p=c.adjusted_p,
        outcome=c.outcome or "none",
        mdd=c.mdd,
    )
