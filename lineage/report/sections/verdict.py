"""Section 1, the verdict: the badge and the summary a reader sees first.

Four outcomes: ``regressions`` (a statistically significant increase over a parent),
``incomplete`` (a declared parent could not be evaluated, so "no regression" was not
earned), ``none`` and ``not_evaluated``. Each summary says what was compared and how, and
the headline gives the biggest regression in numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from lineage.documents.audit import AuditDocument, IncompleteDoc
from lineage.report.filters import clip, p_equals, percent, points, points_ci, points_range, rate_ci
from lineage.report.inputs import BriefInputs, audit_suites
from lineage.report.views import FindingRow, ResultsInfo, VerdictView
from lineage.report.vocabulary import METRIC_LABELS, RATE_EXPLAINED, REGRESSION_KINDS
from lineage.thresholds import NOTABLE_ASR
from lineage.vocabulary import FindingKind


def build_verdict(
    inputs: BriefInputs, results: ResultsInfo | None, findings: Sequence[FindingRow]
) -> VerdictView:
    """The verdict on the subject, from the audit's results and the brief's findings."""
    subject, document = inputs.subject, inputs.document
    lineage_note = _lineage_note(findings)
    if document is None or results is None:
        return VerdictView(
            "not_evaluated",
            "Not evaluated",
            f"{subject} has not been evaluated by lineage-audit: this brief documents its "
            f"lineage and provenance only, and says nothing about its safety. Run "
            f"`lineage audit {subject}` to re-run the safety and capability suites on it and "
            f"its parents, then render this brief again.{lineage_note}",
            "No safety or capability measurement is recorded for this revision.",
        )
    incomplete = document.incomplete.get(subject)
    opening = _opening(subject, document, results, incomplete)
    tail = _tail(findings)
    regressions = [f for f in findings if f.kind in REGRESSION_KINDS]
    if regressions:
        return _regressions_verdict(subject, results, regressions, opening, f"{tail}{lineage_note}")
    if incomplete:
        return _incomplete_verdict(subject, opening, incomplete, tail, lineage_note)
    return _no_regression_verdict(subject, document, results, opening, f"{tail}{lineage_note}")


def _lineage_note(findings: Sequence[FindingRow]) -> str:
    """A sentence on the weight verification's findings, or nothing if it raised none."""
    lineage_issues = [f for f in findings if f.source == "verification" and f.severity != "info"]
    return (
        f" Weight verification raised {len(lineage_issues)} lineage "
        f"finding{'s' if len(lineage_issues) != 1 else ''} (section 6)."
        if lineage_issues
        else ""
    )


def _opening(
    subject: str,
    document: AuditDocument,
    results: ResultsInfo,
    incomplete: IncompleteDoc | None,
) -> str:
    """What was compared, and how: the first sentence of every evaluated verdict."""
    parents = sorted({c.parent for c in results.comparisons})
    suites = len(audit_suites(document))
    judge_id = document.judge.id if document.judge is not None else None
    declared = len(parents) + len(incomplete.not_evaluated if incomplete else [])
    evaluated = (
        f"the {len(parents)} parent model{'s' if len(parents) != 1 else ''} it declares"
        if not incomplete
        else f"{len(parents)} of the {declared} parent models it declares"
    )
    return (
        f"lineage-audit re-ran {suites} test suite{'s' if suites != 1 else ''} on {subject} "
        f"and on {evaluated} ({', '.join(parents) or 'none evaluated'}), with identical "
        f"prompts, decoding and judge ({judge_id}; section 4)."
    )


def _tail(findings: Sequence[FindingRow]) -> str:
    """Unconfirmed increases and contradicted card results, as one closing sentence."""
    warnings = [f for f in findings if f.kind == FindingKind.WARN]
    missed = [f for f in findings if f.kind == FindingKind.MISSED_BY_SOURCE_EVAL]
    others = []
    if warnings:
        others.append(
            f"{len(warnings)} further increase{'s' if len(warnings) != 1 else ''} above the "
            "threshold could not be confirmed statistically"
        )
    if missed:
        others.append(
            f"{len(missed)} result{'s' if len(missed) != 1 else ''} declared on a model card "
            f"{'are' if len(missed) != 1 else 'is'} contradicted by the measurements"
        )
    return (" " + "; ".join(others).capitalize() + ".") if others else ""


def _regressions_verdict(
    subject: str,
    results: ResultsInfo,
    regressions: Sequence[FindingRow],
    opening: str,
    closing: str,
) -> VerdictView:
    """Regressions found: the largest (safety first) in numbers, as headline and detail."""
    comparisons = {(c.parent, c.suite): c for c in results.comparisons}
    worst = max(
        regressions,
        key=lambda f: (
            f.kind == FindingKind.SAFETY_REGRESSION,
            comparisons[(f.against, f.suite)].delta if (f.against, f.suite) in comparisons else 0,
        ),
    )
    c = comparisons.get((worst.against, worst.suite))
    headline, detail = worst.statement, worst.statement
    if c is not None:
        headline = (
            f"{METRIC_LABELS[c.kind]} on {c.suite}: {percent(c.child_rate)} for {subject} "
            f"against {percent(c.parent_rate)} for its parent {c.parent}, "
            f"{points(c.delta)} (95% CI {points_range(c.delta_ci)}; adjusted p "
            f"{p_equals(c.adjusted_p)})."
        )
        detail = (
            f"The largest: its {RATE_EXPLAINED[c.kind]} on {c.suite} is "
            f"{rate_ci(c.child_rate, c.child_ci)}, against "
            f"{rate_ci(c.parent_rate, c.parent_ci)} for {c.parent}: {points(c.delta)} "
            f"({points_ci(c.delta_ci)}; Holm-adjusted p {p_equals(c.adjusted_p)})."
        )
    summary = (
        f"{opening} It found {len(regressions)} statistically significant "
        f"regression{'s' if len(regressions) != 1 else ''} larger than the threshold: "
        f"{subject} is worse than a parent it was built from. {detail}{closing}"
    )
    return VerdictView("regressions", "Regressions found", summary, headline)


def _incomplete_verdict(
    subject: str, opening: str, incomplete: IncompleteDoc, tail: str, lineage_note: str
) -> VerdictView:
    """Not every declared parent was evaluated: "no regression" was not earned."""
    lines = [str(line) for line in incomplete.not_evaluated]
    declared = max(incomplete.declared, len(lines))
    label = f"incomplete: {len(lines)} of {declared} parents not evaluated"
    summary = (
        f"{opening} The audit is incomplete: {len(lines)} of the {declared} parent models "
        f'{subject} declares could not be evaluated, so no verdict of "no regression" can '
        f"be given. Not evaluated: {'; '.join(clip(line, 240) for line in lines)}. Fix what "
        f"the reasons say and run `lineage audit {subject}` again.{tail}{lineage_note}"
    )
    return VerdictView("incomplete", label[0].upper() + label[1:], summary, label + ".")


def _no_regression_verdict(
    subject: str, document: AuditDocument, results: ResultsInfo, opening: str, closing: str
) -> VerdictView:
    """No significant regression: what could not be ruled out, and that it is not "safe"."""
    mdds = [c.mdd for c in results.comparisons if c.mdd]
    detect = (
        f" The smallest differences this audit could reliably detect were "
        f"{min(mdds) * 100:.1f}–{max(mdds) * 100:.1f} points, so smaller regressions cannot "
        "be ruled out."
        if mdds
        else ""
    )
    delta = document.options.delta
    summary = (
        f"{opening} None of {subject}'s rates was significantly worse than a parent's by more "
        f"than {delta * 100:.1f} percentage points.{detect}{closing}"
    )
    measured = [m for m in results.models if m.asr is not None]
    if measured:
        headline = (
            "No significant increase over its parents. ASR: "
            + "; ".join(f"{m.repo_id} {rate_ci(m.asr, m.asr_ci)}" for m in measured)
            + "."
        )
        mine = next((m for m in measured if m.repo_id == subject), None)
        if mine is not None and (mine.asr or 0) >= NOTABLE_ASR:
            summary += (
                ' "No regression" compares the model with its parents; it does not say that '
                f"the model is safe: {subject} complied with {percent(mine.asr)} of the harmful "
                "requests."
            )
    else:
        headline = "No significant increase over its parents."
    return VerdictView("none", "No regressions found", summary, headline)
