"""Everything a compliance brief shows, read from the registry alone: ``build_context``.

``build_context(registry, repo_id)`` reads the model's inputs once (``lineage.report.inputs``)
and hands them to one pure builder per section (``lineage.report.sections``); the result,
a ``BriefContext``, is plain data, ordered deterministically, that the templates only lay
out::

    >>> context = build_context(registry, "org/merge")       # doctest: +SKIP
    >>> context.verdict.status, context.verdict.label          # doctest: +SKIP
    ('regressions', 'Regressions found')

No network, no clock: the brief's date is ``SOURCE_DATE_EPOCH`` or else the newest registry
timestamp among the rows used, so the same registry content gives the same brief. Every
string that came from a repository (cards, configs, prompts, responses) stays plain text
here; the templates escape it. The figures are the only markup, and they escape their
input themselves.

The names this module held before the report was split into stages are re-exported here.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from audit.records import EVENT_VERDICTS
from lineage import __version__
from lineage.errors import LineageError
from lineage.exporters import export_graph
from lineage.report.filters import (
    ci_range,
    ci_text,
    moment_text,
    p_equals,
    p_text,
    parameters_text,
    percent,
    points,
    points_ci,
    points_range,
    rate_ci,
    short_sha,
    signed,
)
from lineage.report.inputs import BriefInputs, load_brief_inputs
from lineage.report.sections.findings import build_findings
from lineage.report.sections.limitations import build_limitations, build_recommendations
from lineage.report.sections.lineage import build_lineage
from lineage.report.sections.manifest import MAPPING, build_manifest
from lineage.report.sections.method import build_method
from lineage.report.sections.remediation import build_remediation
from lineage.report.sections.results import build_results
from lineage.report.sections.subject import build_subject
from lineage.report.sections.verdict import build_verdict
from lineage.report.views import (
    AncestorRow,
    BriefContext,
    Chart,
    ComparisonRow,
    DeclaredEvaluationRow,
    Fact,
    FindingRow,
    LineageInfo,
    ManifestInfo,
    MappingRow,
    MergeRecipeInfo,
    MethodInfo,
    ModelResult,
    RecipeRow,
    ResultsInfo,
    SampleRow,
    SubjectInfo,
    SuiteRow,
    VerdictView,
    VerificationRow,
)
from lineage.report.vocabulary import (
    FINDING_TITLES,
    KIND_LABELS,
    METRIC_LABELS,
    REGRESSION_KINDS,
    SEVERITY_RANK,
)
from registry.database import Registry

__all__ = [
    "EVENT_VERDICTS",
    "FINDING_TITLES",
    "KIND_LABELS",
    "MAPPING",
    "METRIC_LABELS",
    "REGRESSION_KINDS",
    "SEVERITY_RANK",
    "AncestorRow",
    "BriefContext",
    "Chart",
    "ComparisonRow",
    "DeclaredEvaluationRow",
    "Fact",
    "FindingRow",
    "LineageInfo",
    "ManifestInfo",
    "MappingRow",
    "MergeRecipeInfo",
    "MethodInfo",
    "ModelResult",
    "RecipeRow",
    "ResultsInfo",
    "SampleRow",
    "SubjectInfo",
    "SuiteRow",
    "VerdictView",
    "VerificationRow",
    "assemble_context",
    "build_context",
    "ci_range",
    "ci_text",
    "moment_text",
    "p_equals",
    "p_text",
    "parameters_text",
    "percent",
    "points",
    "points_ci",
    "points_range",
    "rate_ci",
    "short_sha",
    "signed",
]


def build_context(registry: Registry, repo_id: str, *, redact: bool = False) -> BriefContext:
    """Read everything the brief of ``repo_id`` shows; raise if it is not in the registry."""
    return assemble_context(load_brief_inputs(registry, repo_id), redact=redact)


def assemble_context(inputs: BriefInputs, *, redact: bool = False) -> BriefContext:
    """The brief of ``inputs``, section by section; ``redact`` hashes prompts and answers."""
    subject = inputs.subject
    moment, date_source = brief_moment(inputs.snapshot.newest)
    lineage = build_lineage(inputs)
    findings = build_findings(inputs, redact=redact)
    results = build_results(inputs)
    method = build_method(inputs)
    return BriefContext(
        subject=subject,
        title=f"Compliance brief: {subject}",
        date=moment.date().isoformat(),
        moment=moment.isoformat().replace("+00:00", "Z"),
        date_source=date_source,
        tool_version=__version__,
        redacted=redact,
        verdict=build_verdict(inputs, results, findings),
        subject_info=build_subject(inputs),
        lineage=lineage,
        method=method,
        results=results,
        findings=findings,
        limitations=build_limitations(inputs, results, method, lineage),
        recommendations=build_recommendations(inputs, results, findings),
        manifest=build_manifest(inputs),
        mapping=list(MAPPING),
        bom_json=export_graph(inputs.bom_graph, "cyclonedx", subject=subject),
        remediation=build_remediation(inputs),
    )


def brief_moment(newest: datetime | None) -> tuple[datetime, str]:
    """``SOURCE_DATE_EPOCH`` (reproducible builds), else the newest registry timestamp used."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        if not epoch.isdigit():
            raise LineageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a count of seconds")
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc), "SOURCE_DATE_EPOCH"
    if newest is not None:
        return newest.replace(microsecond=0), "the newest registry record used"
    return datetime.fromtimestamp(0, tz=timezone.utc), "no timestamp recorded"
