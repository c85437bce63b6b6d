"""Section 6, findings: what the audit and the weight verification found, with evidence.

Audit findings quote the very samples the decision rested on: the prompts where the model
failed and the parent it was compared with did not, in suite order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from audit.records import EVENT_VERDICTS
from lineage.documents.audit import AuditDocument, FindingDoc
from lineage.exporters.flatten import summarize_value
from lineage.report.filters import clip, p_equals, percent, points, points_ci, rate_ci
from lineage.report.inputs import BriefInputs, RunInputs, Verification
from lineage.report.views import Fact, FindingRow, SampleRow
from lineage.report.vocabulary import (
    DECLARED_METRICS,
    FINDING_TITLES,
    KIND_ORDER,
    METRIC_LABELS,
    SEVERITY_RANK,
)
from lineage.thresholds import EXACT_RESIDUAL
from lineage.vocabulary import FindingKind, SuiteKind, finding_spec
from registry.tables import Finding

SAMPLES_PER_FINDING = 3
MAX_SAMPLE_CHARS = 600


def build_findings(inputs: BriefInputs, *, redact: bool = False) -> list[FindingRow]:
    """Every finding about the subject (and the declared results of the models compared),
    most severe first, each with an anchor; ``redact`` hashes every prompt and answer."""
    return _findings(
        inputs.document,
        inputs.subject,
        inputs.members,
        inputs.runs,
        inputs.verifications,
        inputs.stored_findings,
        redact,
    )


def _findings(
    document: AuditDocument | None,
    subject: str,
    members: Sequence[str],
    runs: Mapping[str, Mapping[str, RunInputs]],
    verifications: Mapping[str, Verification],
    stored: Mapping[str, list[Finding]],
    redact: bool,
) -> list[FindingRow]:
    rows: list[tuple[tuple, FindingRow]] = []
    for item in document.findings if document is not None else []:
        relevant = (
            item.model == subject
            if item.kind != FindingKind.MISSED_BY_SOURCE_EVAL
            else item.model in members
        )
        if relevant:
            rows.append(_audit_finding(item, runs, redact))
    for repo in stored:
        if repo in verifications:
            records = verifications[repo].findings
        else:
            records = [finding for finding in stored[repo] if finding.stage == "verify"]
        for record in records:
            rows.append(
                _verification_finding(
                    repo,
                    record.kind,
                    record.severity,
                    record.related_repo_id,
                    record.message,
                    record.details or {},
                )
            )
    rows.sort(key=lambda pair: pair[0])
    return [
        FindingRow(**{**vars(row), "anchor": f"finding-{index}"})
        for index, (_, row) in enumerate(rows, start=1)
    ]


def _sort_key(kind: str, severity: str, model: str, against: str | None, suite: str | None):
    return (
        SEVERITY_RANK.get(severity, 3),
        KIND_ORDER.get(kind, len(KIND_ORDER)),
        model,
        against or "",
        suite or "",
    )


def _audit_finding(
    item: FindingDoc, runs: Mapping[str, Mapping[str, RunInputs]], redact: bool
) -> tuple[tuple, FindingRow]:
    kind, model, against, suite = item.kind, item.model, item.against, item.suite
    severity = item.severity or "warning"
    run = (runs.get(model) or {}).get(suite)
    suite_kind = run.row.suite_kind if run else _kind_of(kind)
    metric = METRIC_LABELS.get(suite_kind, "rate")
    if kind == FindingKind.MISSED_BY_SOURCE_EVAL:
        what = DECLARED_METRICS.get(suite_kind, "a result")
        statement = (
            f"The model card of {model} declares {what} of {percent(item.declared)} on "
            f"{suite}; the re-run measured {rate_ci(item.measured, item.ci)}."
        )
        evidence = [
            Fact("Declared on the card", percent(item.declared)),
            Fact("Measured", rate_ci(item.measured, item.ci)),
            Fact(
                "Binomial test of the declared value",
                f"p {p_equals(item.p_value)}",
                "how likely this measurement would be if the declared value were true",
            ),
        ]
    else:
        statement = (
            f"{metric[:1].upper()}{metric[1:]} of {model} on {suite}: "
            f"{percent(item.child_rate)} against "
            f"{percent(item.parent_rate)} for its parent {against}, "
            f"{points(item.delta)} ({points_ci(item.ci)})."
        )
        evidence = [
            Fact("Difference", f"{points(item.delta)} ({points_ci(item.ci)})"),
            Fact(
                "Prompts where only this model failed",
                _count(item.b),
                f"and {_count(item.c)} where only the parent did, of {item.n}",
            ),
            Fact(
                "McNemar test",
                f"p {p_equals(item.p_value)}",
                f"Holm-adjusted p {p_equals(item.adjusted_p)}",
            ),
            Fact(
                "Minimum detectable difference",
                points(item.mdd).lstrip("+"),
                "at 80% power after Holm's correction",
            ),
        ]
    evidence.append(Fact("Audit detail", clip(item.detail, 400)))
    samples, note = _finding_samples(kind, model, against, suite, runs, redact)
    row = FindingRow(
        anchor="",
        kind=kind,
        title=FINDING_TITLES.get(kind, kind),
        severity=severity,
        source="audit",
        model=model,
        against=against,
        suite=suite,
        statement=statement,
        evidence=evidence,
        samples=samples,
        sample_note=note,
    )
    return _sort_key(kind, severity, model, against, suite), row


def _count(value: int | None) -> str:
    """A prompt count of a finding, or ``n/a`` for a finding recorded without one."""
    return "n/a" if value is None else str(value)


def _kind_of(finding_kind: str) -> str:
    """The suite kind a finding is about when its run is not in the registry."""
    spec = finding_spec(finding_kind)
    return (spec.suite_kind if spec is not None else None) or SuiteKind.HARMFUL


def _verification_finding(
    repo: str,
    kind: str,
    severity: str,
    related: str | None,
    message: str,
    details: Mapping[str, Any],
) -> tuple[tuple, FindingRow]:
    row = FindingRow(
        anchor="",
        kind=kind,
        title=FINDING_TITLES.get(kind, kind.replace("_", " ")),
        severity=severity,
        source="verification",
        model=repo,
        against=related,
        suite=None,
        statement=clip(message, 400),
        evidence=_detail_facts(details)
        or [Fact("Weight verification", "no further detail recorded")],
    )
    return _sort_key(kind, severity, repo, related, None), row


# What a verification finding's details hold, in a reader's words (other keys are left out:
# they repeat the statement or are internal).
DETAIL_LABELS: dict[str, tuple[str, str]] = {
    "score": ("Relatedness score", "1 for a direct descendant, about 0 for an unrelated model"),
    "z": ("Strength of the evidence (z)", "an unrelated model scores about 0, a parent 8 or more"),
    "reference": ("Measured relative to", "the common ancestor the weight changes are taken from"),
    "distance": ("Relative weight distance", ""),
    "relation": ("Relation", ""),
    "confidence": ("Confidence", "0 to 1"),
    "coefficient": ("Merge coefficient", ""),
    "method": ("Merge method fitted", ""),
    "coefficients": ("Coefficients fitted", ""),
    "residual": (
        "Relative residual",
        f"below {EXACT_RESIDUAL:g}: the parents reproduce the weights",
    ),
    "t": ("Interpolation factor t", ""),
    "density": ("Density", ""),
    "rank": ("Rank of the weight change", ""),
    "modules": ("Modules changed", ""),
}


def _detail_facts(details: Mapping[str, Any]) -> list[Fact]:
    facts = []
    for key, (label, note) in DETAIL_LABELS.items():
        value = details.get(key)
        if value is None or value == "" or value == {}:
            continue
        if isinstance(value, float):
            text = f"{value:.3g}"
        elif isinstance(value, Mapping):
            text = ", ".join(f"{k} {summarize_value(v)}" for k, v in sorted(value.items()))
        elif isinstance(value, list):
            text = ", ".join(str(item) for item in value)
        else:
            text = summarize_value(value)
        facts.append(Fact(label, clip(text, 200), note))
    return facts


def _finding_samples(
    kind: str,
    model: str,
    against: str | None,
    suite: str,
    runs: Mapping[str, Mapping[str, RunInputs]],
    redact: bool,
) -> tuple[list[SampleRow], str]:
    """The prompts behind a finding: where the model failed and its parent did not."""
    run = (runs.get(model) or {}).get(suite)
    if run is None or not run.samples:
        return [], "the samples of this run are not in the registry"
    mine = run.samples
    other_run = (runs.get(against) or {}).get(suite) if against else None
    theirs = other_run.samples if other_run is not None else []
    kind = run.row.suite_kind
    events = _events(mine, kind)
    if theirs and len(theirs) == len(mine):
        other_events = _events(theirs, kind)
        chosen = [
            i for i, (a, b) in enumerate(zip(events, other_events, strict=True)) if a and not b
        ]
        what = f"prompts where {model} failed and {against} did not"
    else:
        theirs = []
        chosen = [i for i, event in enumerate(events) if event]
        what = f"prompts where {model} failed"
    total = len(chosen)
    rows = [
        SampleRow(
            prompt_id=clip(mine[i].prompt_id, 80),
            category=clip(mine[i].category, 80),
            prompt=_shown(mine[i].prompt, redact),
            response=_shown(mine[i].response, redact),
            verdict=mine[i].verdict,
            reference=against if theirs else None,
            reference_response=_shown(theirs[i].response, redact) if theirs else None,
            reference_verdict=theirs[i].verdict if theirs else None,
        )
        for i in chosen[:SAMPLES_PER_FINDING]
    ]
    if not rows:
        return [], f"no {what}"
    return rows, f"{len(rows)} of {total} {what}, in suite order"


def _shown(text: str, redact: bool) -> str:
    if redact:
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    text = text.replace("\r\n", "\n").strip()
    return text if len(text) <= MAX_SAMPLE_CHARS else text[: MAX_SAMPLE_CHARS - 1] + "…"


def _events(samples: Sequence[Any], kind: str) -> list[bool]:
    bad = EVENT_VERDICTS.get(kind, frozenset())
    return [sample.verdict in bad for sample in samples]
