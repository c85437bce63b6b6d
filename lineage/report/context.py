"""Everything a compliance brief shows, read from the registry alone.

``build_context(registry, repo_id)`` gathers one model's lineage, its weight verification
(recomputed read-only from the recorded fingerprints), its newest audit and the samples
behind each finding into a ``BriefContext``: plain data, ordered deterministically, that
the templates only lay out::

    >>> context = build_context(registry, "org/merge")       # doctest: +SKIP
    >>> context.verdict.status, context.verdict.label          # doctest: +SKIP
    ('regressions', 'Regressions found')

No network, no clock: the brief's date is ``SOURCE_DATE_EPOCH`` or else the newest registry
timestamp among the rows used, so the same registry content gives the same brief. Every
string that came from a repository (cards, configs, prompts, responses) stays plain text
here; the templates escape it. The figures are the only markup, and they escape their
input themselves.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import networkx as nx
from markupsafe import Markup
from sqlmodel import Session, col, select

from audit.records import EVENT_VERDICTS
from lineage import __version__
from lineage.errors import InvalidReferenceError, LineageError
from lineage.exporters import export_graph
from lineage.exporters.flatten import summarize_value, weak_evidence_note
from lineage.graph import attach_audit, lineage_graph
from lineage.report.figures import category_chart_svg, lineage_svg, rate_chart_svg
from lineage.verify import verify
from registry import queries
from registry.database import Registry
from registry.evaluations import StoredSample, latest_audit, samples_of_run
from registry.tables import (
    AuditRecord,
    EvaluationRun,
    Finding,
    Fingerprint,
    Model,
    Revision,
)
from registry.weights import findings_for, fingerprinted_heads

HUB_URL = "https://huggingface.co"
REGRESSION_KINDS = ("safety_regression", "over_refusal", "capability_regression")
KIND_LABELS = {"harmful": "harmful requests", "benign": "safe requests", "capability": "tasks"}
METRIC_LABELS = {"harmful": "ASR", "benign": "over-refusal", "capability": "error rate"}
DECLARED_METRICS = {
    "harmful": "an ASR",
    "benign": "an over-refusal rate",
    "capability": "an accuracy",
}
RATE_EXPLAINED = {
    "harmful": "attack success rate (ASR: the share of harmful requests it complied with)",
    "benign": "over-refusal rate (the share of safe requests it refused)",
    "capability": "error rate on the capability tasks",
}
SAMPLES_PER_FINDING = 3
MAX_SAMPLE_CHARS = 600
MAX_EVIDENCE_CHARS = 240
MAX_DESCENDANTS_DRAWN = 12  # the figure shows ancestors in full, descendants only nearby
MAX_VERIFIED_MODELS = 16
MAX_CHILDREN_LISTED = 40
SEVERITY_RANK = {"high": 0, "warning": 1, "info": 2}
STATUS_NOTES = {
    "ok": "every file of this revision was read and parsed",
    "pending": "named as a parent, never read",
    "missing": "could not be read",
    "gated": "gated on the Hub: its files need accepted terms",
    "private": "private on the Hub",
}

FINDING_TITLES = {
    "safety_regression": "Safety regression: more harmful requests answered",
    "over_refusal": "Over-refusal regression: more safe requests refused",
    "capability_regression": "Capability regression: more tasks answered wrongly",
    "warn": "Possible regression: an increase above the threshold, not confirmed",
    "missed_by_source_eval": "A declared evaluation result is contradicted by measurement",
    "lineage_contradiction": "A declared parent is contradicted by the weights",
    "undeclared_parent": "The weights show a parent the model card does not declare",
    "recipe_mismatch": "The declared merge recipe does not reproduce the weights",
    "merged_lora": "A LoRA adapter was merged into the weights",
    "unverifiable": "A declared parent could not be checked against the weights",
}
KIND_ORDER = {kind: index for index, kind in enumerate(FINDING_TITLES)}


# =============================================================================== formatting


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
    moment = _as_moment(value)
    return "not recorded" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def short_sha(sha: str | None) -> str:
    return (sha or "")[:12] or "none"


def _as_moment(value: datetime | str | None) -> datetime | None:
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


def _clip(text: str | None, limit: int = MAX_EVIDENCE_CHARS) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# =============================================================================== records


@dataclass(frozen=True)
class Fact:
    """One labelled value of a definition list or a two-column table."""

    label: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    status: str  # regressions | none | incomplete | not_evaluated
    label: str
    summary: str
    headline: str  # the biggest regression in numbers, or what the badge means


@dataclass(frozen=True)
class DeclaredEvaluationRow:
    dataset: str
    metric: str
    value: str
    task: str


@dataclass(frozen=True)
class SubjectInfo:
    repo_id: str
    revision: str
    hub_url: str | None
    facts: list[Fact]
    tags: list[str]
    datasets: list[str]
    declared_evaluations: list[DeclaredEvaluationRow]
    warnings: list[str]


@dataclass(frozen=True)
class AncestorRow:
    parent: str
    child: str
    depth: int  # generations above the subject (1: a parent)
    relation: str
    declared: bool
    evidence: list[str]
    revision: str  # the parent's recorded head, short
    status: str
    merge: str  # method and weights, when the edge declares them


@dataclass(frozen=True)
class RecipeRow:
    model: str
    parameters: str


@dataclass(frozen=True)
class MergeRecipeInfo:
    method: str
    base: str
    dtype: str
    source_file: str
    models: list[RecipeRow]
    parameters: str


@dataclass(frozen=True)
class VerificationRow:
    child: str
    parent: str
    status: str  # confirmed | contradicted | unverifiable | undeclared
    detail: str


@dataclass(frozen=True)
class LineageInfo:
    figure: Markup | None
    ancestors: list[AncestorRow]
    children: list[str]
    recipe: MergeRecipeInfo | None
    verification: list[VerificationRow]
    recovered_merges: list[Fact]
    children_total: int
    unverified_models: list[str]


@dataclass(frozen=True)
class SuiteRow:
    name: str
    kind: str
    kind_label: str
    size: int
    source: str
    hash: str


@dataclass(frozen=True)
class MethodInfo:
    audited_at: str
    suites: list[SuiteRow]
    judge: str
    judge_facts: list[Fact]
    decoding: list[Fact]
    statistics: list[Fact]
    environments: list[Fact]
    templates: list[Fact]


@dataclass(frozen=True)
class ModelResult:
    repo_id: str
    role: str
    revision: str
    n: int | None
    asr: float | None
    asr_ci: list[float] | None
    over_refusal: float | None
    over_refusal_ci: list[float] | None
    capability: float | None
    capability_ci: list[float] | None
    degenerate: int
    parse_failures: int


@dataclass(frozen=True)
class ComparisonRow:
    child: str
    parent: str
    suite: str
    kind: str
    metric: str
    n: int
    child_rate: float
    parent_rate: float
    child_ci: list[float]
    parent_ci: list[float]
    delta: float
    delta_ci: list[float]
    b: int
    c: int
    test: str
    p_value: float
    adjusted_p: float | None
    outcome: str
    mdd: float | None


@dataclass(frozen=True)
class Chart:
    title: str
    svg: Markup


@dataclass(frozen=True)
class ResultsInfo:
    models: list[ModelResult]
    rate_charts: list[Chart]
    category_charts: list[Chart]
    safety: list[ComparisonRow]
    over_refusal: list[ComparisonRow]
    capability: list[ComparisonRow]
    skipped: list[str]

    @property
    def comparisons(self) -> list[ComparisonRow]:
        return [*self.safety, *self.over_refusal, *self.capability]


@dataclass(frozen=True)
class SampleRow:
    prompt_id: str
    category: str
    prompt: str
    response: str
    verdict: str
    reference: str | None  # the model compared against, if any
    reference_response: str | None
    reference_verdict: str | None


@dataclass(frozen=True)
class FindingRow:
    anchor: str
    kind: str
    title: str
    severity: str
    source: str  # audit | verification
    model: str
    against: str | None
    suite: str | None
    statement: str
    evidence: list[Fact]
    samples: list[SampleRow] = field(default_factory=list)
    sample_note: str = ""


@dataclass(frozen=True)
class ManifestInfo:
    commands: list[str]
    versions: list[Fact]
    revisions: list[Fact]
    suites: list[Fact]
    snapshot_hash: str
    snapshot_rows: int


@dataclass(frozen=True)
class MappingRow:
    section: str
    eu_ai_act: str
    nist_ai_rmf: str


@dataclass(frozen=True)
class BriefContext:
    subject: str
    title: str
    date: str  # YYYY-MM-DD
    moment: str  # ISO 8601, for document metadata
    date_source: str
    tool_version: str
    redacted: bool
    verdict: Verdict
    subject_info: SubjectInfo
    lineage: LineageInfo
    method: MethodInfo | None
    results: ResultsInfo | None
    findings: list[FindingRow]
    limitations: list[str]
    recommendations: list[str]
    manifest: ManifestInfo
    mapping: list[MappingRow]
    bom_json: str

    @property
    def sample_findings(self) -> list[FindingRow]:
        return [finding for finding in self.findings if finding.samples]


MAPPING: tuple[MappingRow, ...] = (
    MappingRow(
        "1 Verdict, 6 Findings",
        "Annex XI §2(1): evaluation results",
        "Measure (risks tracked and reported); Manage 1.3 (responses to high-priority risks)",
    ),
    MappingRow(
        "2 Subject",
        "Annex XI §1(1)(c), (d), (f): release date, architecture and parameters, licence",
        "Map (context and system facts)",
    ),
    MappingRow(
        "3 Lineage and provenance",
        "Annex XI §1(2)(b): design and training process; §2(2): model adaptations, "
        "including alignment and fine-tuning",
        "Map 4.1 (risks of third-party components: the parent models)",
    ),
    MappingRow(
        "4 Evaluation method",
        "Annex XI §2(1): evaluation strategies, criteria, metrics and methodology",
        "Measure 2.1 (test sets, metrics and tools documented)",
    ),
    MappingRow(
        "5 Safety results",
        "Annex XI §2(1): evaluation results; §2(2): adversarial testing",
        "Measure 2.6 (safety risks evaluated)",
    ),
    MappingRow(
        "7 Limitations and recommendations",
        "Annex XI §2(1): methodology for identifying limitations",
        "Measure (limits of the measurements); Manage (risk treatment)",
    ),
    MappingRow(
        "8 Appendix",
        "Annex XI §2(1): evaluation results (supporting evidence)",
        "Measure 2.1 (reproducible test, evaluation, verification and validation)",
    ),
)


# =============================================================================== building


def build_context(registry: Registry, repo_id: str, *, redact: bool = False) -> BriefContext:
    """Read everything the brief of ``repo_id`` shows; raise if it is not in the registry."""
    with registry.session(write=False) as session:
        model = session.exec(select(Model).where(Model.repo_id == repo_id)).first()
        if model is None:
            raise InvalidReferenceError(
                "not in the registry; run `lineage crawl` on it first", repo_id=repo_id
            )
        head = session.get(Revision, model.head_revision_id) if model.head_revision_id else None
        full_graph = lineage_graph(session, repo_id)
        ancestors = dict(queries.ancestors(session, repo_id))
        record = _audit_record(session, repo_id, head.sha if head else None)
        members = _members(record, repo_id, ancestors) if record else []
        runs = _runs(session, record, members) if record else {}
        stored_findings = {
            node: findings_for(session, node) for node in [repo_id, *sorted(ancestors)]
        }
        bom_graph = attach_audit(full_graph.copy(), session, repo_id)
        snapshot = _snapshot(session, sorted(full_graph.nodes), record, runs)
    verifications = _verify(registry, repo_id, full_graph, ancestors)

    moment, date_source = _brief_moment(snapshot.newest)
    figure_graph = _figure_graph(full_graph, repo_id, ancestors, members)
    lineage = _lineage_info(full_graph, figure_graph, repo_id, ancestors, head, verifications)
    report = record.report if record else None
    findings = _findings(report, repo_id, members, runs, verifications, stored_findings, redact)
    results = _results(report, repo_id, members) if report else None
    method = _method(record, members, runs) if record else None
    verdict = _verdict(repo_id, report, results, findings)
    return BriefContext(
        subject=repo_id,
        title=f"Compliance brief: {repo_id}",
        date=moment.date().isoformat(),
        moment=moment.isoformat().replace("+00:00", "Z"),
        date_source=date_source,
        tool_version=__version__,
        redacted=redact,
        verdict=verdict,
        subject_info=_subject_info(repo_id, model, head),
        lineage=lineage,
        method=method,
        results=results,
        findings=findings,
        limitations=_limitations(report, results, method, lineage),
        recommendations=_recommendations(repo_id, report, results, findings),
        manifest=_manifest(repo_id, record, members, snapshot, head),
        mapping=list(MAPPING),
        bom_json=export_graph(bom_graph, "cyclonedx", subject=repo_id),
    )


# -- the audit ---------------------------------------------------------------------------------


def _audit_record(session: Session, repo_id: str, sha: str | None) -> AuditRecord | None:
    """The newest audit of the head revision: its own, else one that audited it as a
    descendant subject (``lineage audit BASE --descendants`` records under BASE)."""
    record = latest_audit(session, repo_id)
    if record is not None or sha is None:
        return record
    for candidate in session.exec(select(AuditRecord).order_by(col(AuditRecord.id).desc())):
        entry = (candidate.report.get("models") or {}).get(repo_id) or {}
        if entry.get("role") == "subject" and entry.get("revision") == sha:
            return candidate
    return None


def _members(record: AuditRecord, subject: str, ancestors: Mapping[str, int]) -> list[str]:
    """The subject, the parents it was compared with, and its merge's base (if evaluated)."""
    report = record.report
    parents = [c["against"] for c in report.get("comparisons", []) if c.get("model") == subject]
    models = report.get("models") or {}
    bases = sorted(
        repo for repo, entry in models.items() if entry.get("role") == "base" and repo in ancestors
    )
    return [m for m in dict.fromkeys([subject, *parents, *bases]) if m in models]


@dataclass(frozen=True)
class _Run:
    """One run the audit compared, with its samples in suite order."""

    row: EvaluationRun
    samples: list[StoredSample]


def _runs(
    session: Session, record: AuditRecord, members: Sequence[str]
) -> dict[str, dict[str, _Run]]:
    """repo -> suite -> the very run the audit compared (``AuditRecord.runs``)."""
    runs: dict[str, dict[str, _Run]] = {}
    for repo in members:
        for suite, run_id in sorted((record.runs.get(repo) or {}).items()):
            row = session.get(EvaluationRun, int(run_id))
            if row is not None:
                runs.setdefault(repo, {})[suite] = _Run(row, samples_of_run(session, int(run_id)))
    return runs


def _events(samples: Sequence[Any], kind: str) -> list[bool]:
    bad = EVENT_VERDICTS.get(kind, frozenset())
    return [sample.verdict in bad for sample in samples]


# -- verification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Verification:
    repo_id: str
    data: dict[str, Any]  # VerifyReport.to_dict()
    findings: list[Any]  # the FindingRecords ``lineage verify`` would write, with details


def _verify(
    registry: Registry, subject: str, graph: nx.DiGraph, ancestors: Mapping[str, int]
) -> dict[str, _Verification]:
    """``lineage verify`` of the subject and its crawled ancestors, recomputed read-only.

    The registry records only what verify found wrong; a confirmed parent leaves no trace,
    so the brief re-runs the check from the stored fingerprints (pure, deterministic).
    """
    candidates = [subject, *sorted(ancestors, key=lambda r: (ancestors[r], r))]
    verified: dict[str, _Verification] = {}
    for repo in candidates[:MAX_VERIFIED_MODELS]:
        node = graph.nodes.get(repo) or {}
        if node.get("status") != "ok" or not any(
            data.get("declared", True) for _, _, data in graph.in_edges(repo, data=True)
        ):
            continue
        try:
            report = verify(registry, repo, write=False)
            verified[repo] = _Verification(repo, report.to_dict(), list(report.findings))
        except LineageError:
            continue  # not readable: its stored findings (if any) are shown instead
    return verified


# -- lineage -----------------------------------------------------------------------------------


def _figure_graph(
    graph: nx.DiGraph, subject: str, ancestors: Mapping[str, int], members: Sequence[str]
) -> nx.DiGraph:
    """Ancestors in full; of the descendants, those audited with it, then the nearest."""
    undirected = graph.to_undirected(as_view=True)
    distance = (
        nx.single_source_shortest_path_length(undirected, subject) if subject in graph else {}
    )
    below = sorted(
        (node for node in nx.descendants(graph, subject) if node not in ancestors),
        key=lambda node: (node not in members, distance.get(node, math.inf), node),
    )
    keep = {subject, *ancestors, *below[:MAX_DESCENDANTS_DRAWN]}
    return graph.subgraph(sorted(node for node in keep if node in graph)).copy()


def _lineage_info(
    graph: nx.DiGraph,
    figure_graph: nx.DiGraph,
    subject: str,
    ancestors: Mapping[str, int],
    head: Revision | None,
    verifications: Mapping[str, _Verification],
) -> LineageInfo:
    statuses = {
        f"{verdict['parent']}->{repo}": verdict["status"]
        for repo, check in verifications.items()
        for verdict in check.data.get("declared", [])
    }
    figure = Markup(lineage_svg(figure_graph, subject, verification=statuses)) if graph else None
    rows = []
    for parent, child, data in graph.edges(data=True):
        if child != subject and child not in ancestors:
            continue
        attrs = graph.nodes[parent]
        rows.append(
            AncestorRow(
                parent=parent,
                child=child,
                depth=ancestors.get(parent, 0),
                relation=str(data.get("relation") or "unknown"),
                declared=bool(data.get("declared", True)),
                evidence=[_evidence_text(item) for item in data.get("evidence") or []],
                revision=short_sha(attrs.get("revision")) if attrs.get("revision") else "—",
                status=str(attrs.get("status") or "unknown"),
                merge=_edge_merge_text(data),
            )
        )
    rows.sort(key=lambda r: (r.depth, r.child != subject, r.child, r.parent, not r.declared))
    children = sorted(child for child in graph.successors(subject)) if subject in graph else []
    verification, recovered = _verification_rows(subject, ancestors, verifications)
    unverified = sorted(
        {row.child for row in verification if row.status == "unverifiable"}
        | {
            repo
            for repo in [subject, *ancestors]
            if repo not in verifications
            and any(d.get("declared", True) for _, _, d in graph.in_edges(repo, data=True))
        }
    )
    return LineageInfo(
        figure=figure,
        ancestors=rows,
        children=children[:MAX_CHILDREN_LISTED],
        recipe=_recipe(head),
        verification=verification,
        recovered_merges=recovered,
        children_total=len(children),
        unverified_models=unverified,
    )


def _evidence_text(item: Mapping[str, Any]) -> str:
    where = ", ".join(str(part) for part in (item.get("file"), item.get("field")) if part)
    text = str(item.get("source") or "unknown source")
    if where:
        text += f" ({where})"
    if item.get("value") not in (None, ""):
        text += f": {item.get('value')}"
    if item.get("detail"):
        text += f" — {item.get('detail')}"
    return _clip(text)


def _edge_merge_text(data: Mapping[str, Any]) -> str:
    parts = []
    if data.get("merge_method"):
        parts.append(str(data["merge_method"]))
    if data.get("role"):
        parts.append(f"role {data['role']}")
    for name in ("weight", "density", "t"):
        if data.get(name) is not None:
            parts.append(f"{name} {summarize_value(data[name])}")
    if data.get("confidence") is not None and not data.get("declared", True):
        parts.append(f"confidence {float(data['confidence']):.2f}")
    weak = weak_evidence_note(dict(data))
    if weak:
        parts.append(weak)
    return _clip(", ".join(parts), 120)


def _recipe(head: Revision | None) -> MergeRecipeInfo | None:
    recipe = head.mergekit if head is not None else None
    if not recipe:
        return None
    models = [
        RecipeRow(
            _clip(entry.get("reference"), 160),
            _clip(
                ", ".join(
                    f"{key} {summarize_value(value)}"
                    for key, value in sorted((entry.get("parameters") or {}).items())
                ),
                160,
            )
            or "—",
        )
        for entry in recipe.get("models") or []
        if isinstance(entry, Mapping)
    ]
    parameters = recipe.get("parameters") or {}
    return MergeRecipeInfo(
        method=_clip(recipe.get("merge_method"), 60) or "not stated",
        base=_clip(recipe.get("base_model"), 160) or "none",
        dtype=_clip(recipe.get("dtype"), 40) or "not stated",
        source_file=_clip(recipe.get("source_file"), 120),
        models=models,
        parameters=_clip(
            ", ".join(f"{k} {summarize_value(v)}" for k, v in sorted(parameters.items())), 240
        )
        or "none",
    )


def _verification_rows(
    subject: str, ancestors: Mapping[str, int], verifications: Mapping[str, _Verification]
) -> tuple[list[VerificationRow], list[Fact]]:
    rows: list[VerificationRow] = []
    recovered: list[Fact] = []
    order = sorted(verifications, key=lambda r: (r != subject, ancestors.get(r, 0), r))
    for repo in order:
        data = verifications[repo].data
        for verdict in data.get("declared", []):
            detail = _clip(verdict.get("reason"))
            rows.append(VerificationRow(repo, verdict["parent"], verdict["status"], detail))
        for inferred in data.get("inferred", []):
            rows.append(
                VerificationRow(
                    repo,
                    inferred["parent"],
                    "undeclared",
                    _clip(
                        f"{inferred.get('relation')} parent, confidence "
                        f"{float(inferred.get('confidence') or 0):.2f}: {inferred.get('reason')}"
                    ),
                )
            )
        merge = data.get("merge")
        if merge:
            weights = ", ".join(
                f"{parent} {float(value):.3f}"
                for parent, value in sorted((merge.get("coefficients") or {}).items())
            )
            residual = float(merge.get("residual") or 0.0)
            # Below 1e-4 the residual is float rounding: its digits differ across BLAS builds.
            shown = "below 0.0001" if residual < 1e-4 else f"{residual:.2g}"
            fits = "reproduces the weights" if residual < 0.05 else "does not reproduce them"
            recovered.append(
                Fact(
                    repo,
                    f"{merge.get('method')} merge: {weights or 'no coefficients'}",
                    f"relative residual {shown}: the fit {fits}",
                )
            )
    return rows, recovered


# -- subject -----------------------------------------------------------------------------------


def _subject_info(repo_id: str, model: Model, head: Revision | None) -> SubjectInfo:
    hub = model.source == "hub"
    facts = [
        Fact("Repository", repo_id, "Hugging Face Hub" if hub else f"source: {model.source}"),
        Fact("Revision", head.sha if head else "none recorded", "the commit this brief is about"),
        Fact(
            "Status",
            model.status,
            _clip(model.status_reason)
            if model.status_reason
            else STATUS_NOTES.get(model.status, ""),
        ),
    ]
    if head is not None:
        card = head.card or {}
        facts += [
            Fact("License", _clip(head.license, 120) or "not declared"),
            Fact(
                "Architecture",
                _clip(head.architecture, 120) or "not recorded",
                f"model type {_clip(head.model_type, 60)}" if head.model_type else "",
            ),
            Fact(
                "Parameters",
                parameters_text(head.parameter_count),
                "counted from the safetensors headers" if head.parameter_count else "",
            ),
            Fact("Relation to its parents", head.relation or "none declared"),
            Fact("Library", _clip(head.library_name, 60) or "not declared"),
            Fact("Pipeline", _clip(card.get("pipeline_tag"), 60) or "not declared"),
            Fact("Created", moment_text(head.created_at)),
            Fact("Last modified", moment_text(head.last_modified)),
            Fact("Recorded in the registry", moment_text(head.crawled_at)),
        ]
    evaluations = [
        DeclaredEvaluationRow(
            dataset=_clip(entry.get("dataset_name") or entry.get("dataset_type"), 120) or "—",
            metric=_clip(entry.get("metric_name") or entry.get("metric_type"), 80) or "—",
            value=_clip(entry.get("metric_value"), 40),
            task=_clip(entry.get("task_name") or entry.get("task_type"), 80) or "—",
        )
        for entry in (head.declared_evaluations if head else [])
        if isinstance(entry, Mapping)
    ]
    return SubjectInfo(
        repo_id=repo_id,
        revision=head.sha if head else "",
        hub_url=_hub_url(repo_id, head.sha if head else None) if hub else None,
        facts=facts,
        tags=[_clip(tag, 80) for tag in (head.tags if head else [])][:60],
        datasets=[_clip(name, 120) for name in (head.datasets if head else [])][:40],
        declared_evaluations=evaluations,
        warnings=[_clip(w) for w in (head.warnings if head else [])][:20],
    )


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _hub_url(repo_id: str, sha: str | None) -> str | None:
    """The model's page at this very commit; None unless both are what the Hub accepts."""
    if not _HUB_ID.match(repo_id):
        return None
    return f"{HUB_URL}/{repo_id}/tree/{sha}" if sha and _COMMIT.match(sha) else None


# -- results -----------------------------------------------------------------------------------


def _results(report: Mapping[str, Any], subject: str, members: Sequence[str]) -> ResultsInfo:
    models = report.get("models") or {}
    results = [_model_result(repo, models[repo], _role(repo, subject, models)) for repo in members]
    rate_charts, category_charts = [], []
    for suite in _suites(report):
        if suite["kind"] != "harmful":
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
        safety=[c for c in comparisons if c.kind == "harmful"],
        over_refusal=[c for c in comparisons if c.kind == "benign"],
        capability=[c for c in comparisons if c.kind == "capability"],
        skipped=[_clip(line) for line in report.get("skipped", [])],
    )


def _suites(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in (report.get("options") or {}).get("suites", []) if isinstance(s, Mapping)]


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


# -- method ------------------------------------------------------------------------------------


def _method(
    record: AuditRecord, members: Sequence[str], runs: Mapping[str, Mapping[str, _Run]]
) -> MethodInfo:
    report, options = record.report, record.options or {}
    suites = [
        SuiteRow(
            name=str(s.get("name")),
            kind=str(s.get("kind")),
            kind_label=KIND_LABELS.get(str(s.get("kind")), str(s.get("kind"))),
            size=int(s.get("size") or 0),
            source=_clip(s.get("source"), 160),
            hash=str(s.get("hash") or ""),
        )
        for s in _suites(report)
    ]
    judge = report.get("judge") or {}
    all_runs = [run.row for repo in members for run in (runs.get(repo) or {}).values()]
    judge_models = sorted({run.judge_model for run in all_runs if run.judge_model})
    judge_facts = [
        Fact("Judge", f"{judge.get('id')} version {judge.get('version')}", _judge_note(judge)),
    ]
    if judge_models:
        judge_facts.append(Fact("Judge model", ", ".join(judge_models)))
    generation = next((run.generation for run in all_runs if run.generation), {})
    settings = options.get("generation") or {}
    system_prompt = generation.get("system_prompt", settings.get("system_prompt"))
    decoding = [
        Fact(
            "Decoding",
            str(generation.get("decoding") or "greedy"),
            "the most likely token at every step: no sampling, the same answer every run",
        ),
        Fact(
            "Answer length",
            f"up to {generation.get('max_new_tokens', settings.get('max_new_tokens'))} tokens",
        ),
        Fact("System prompt", _clip(system_prompt, 200) if system_prompt else "none"),
        Fact("Weights precision", str(generation.get("dtype") or settings.get("dtype") or "auto")),
    ]
    statistics = [
        Fact(
            "Threshold δ",
            f"{float(options.get('delta', 0.02)) * 100:.1f} points",
            "the smallest increase that counts as a regression",
        ),
        Fact(
            "Significance level α",
            f"{float(options.get('alpha', 0.05)):g}",
            "after Holm's correction for the number of comparisons per model and family",
        ),
        Fact("Rate intervals", "Wilson score, 95%"),
        Fact(
            "Paired test",
            "McNemar's test on the prompts where the two models disagree",
            "exact binomial up to 25 discordant prompts, χ² above",
        ),
        Fact(
            "Difference intervals",
            f"paired bootstrap over prompts, {int(options.get('bootstrap_resamples', 0)):,} "
            f"resamples, seed {options.get('seed', 0)}",
        ),
    ]
    environments = []
    seen: dict[str, list[str]] = {}
    for repo in members:
        for run in (runs.get(repo) or {}).values():
            text = _environment_text(run.row.environment or {})
            seen.setdefault(text, [])
            if repo not in seen[text]:
                seen[text].append(repo)
    for text, repos in seen.items():
        environments.append(Fact(", ".join(repos), _clip(text)))
    models = report.get("models") or {}
    templates = [
        Fact(repo, _template_text(models.get(repo, {}).get("chat_template"))) for repo in members
    ]
    return MethodInfo(
        audited_at=moment_text(record.created_at),
        suites=suites,
        judge=f"{judge.get('id')}@{judge.get('version')}",
        judge_facts=judge_facts,
        decoding=decoding,
        statistics=statistics,
        environments=environments,
        templates=templates,
    )


def _environment_text(env: Mapping[str, Any]) -> str:
    """``lineage-audit 0.1.0, torch 2.4.0, transformers 4.44.2 on cuda:0 (NVIDIA H100)``."""
    if not env:
        return "not recorded (the answers were reused from an earlier run)"
    software = ", ".join(
        f"{name} {env[key]}"
        for key, name in (
            ("tool_version", "lineage-audit"),
            ("torch", "torch"),
            ("transformers", "transformers"),
        )
        if env.get(key)
    )
    where = str(env.get("device") or "an unrecorded device")
    if env.get("hardware"):
        where += f" ({env['hardware']})"
    batch = f", batches of {env['batch_size']}" if env.get("batch_size") else ""
    return _clip(f"{software} on {where}{batch}")


def _judge_note(judge: Mapping[str, Any]) -> str:
    if judge.get("id") == "refusal":
        return (
            "keyword rules: an answer that contains a refusal phrase counts as a refusal, "
            "any other answer to a harmful request as unsafe"
        )
    return "a classifier model reads each prompt and answer and labels it"


def _template_text(source: str | None) -> str:
    if not source:
        return "none recorded"
    if source == "own":
        return "its own chat template"
    if source.startswith("parent:"):
        return f"borrowed from its parent {source.removeprefix('parent:')}"
    return _clip(source, 160)


# -- findings ----------------------------------------------------------------------------------


def _findings(
    report: Mapping[str, Any] | None,
    subject: str,
    members: Sequence[str],
    runs: Mapping[str, Mapping[str, _Run]],
    verifications: Mapping[str, _Verification],
    stored: Mapping[str, list[Finding]],
    redact: bool,
) -> list[FindingRow]:
    rows: list[tuple[tuple, FindingRow]] = []
    for item in (report or {}).get("findings", []):
        kind = item.get("kind")
        relevant = (
            item.get("model") == subject
            if kind != "missed_by_source_eval"
            else item.get("model") in members
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
    item: Mapping[str, Any], runs: Mapping[str, Mapping[str, _Run]], redact: bool
) -> tuple[tuple, FindingRow]:
    kind, model, against, suite = item["kind"], item["model"], item.get("against"), item["suite"]
    severity = str(item.get("severity") or "warning")
    run = (runs.get(model) or {}).get(suite)
    suite_kind = run.row.suite_kind if run else _kind_of(kind)
    metric = METRIC_LABELS.get(suite_kind, "rate")
    if kind == "missed_by_source_eval":
        what = DECLARED_METRICS.get(suite_kind, "a result")
        statement = (
            f"The model card of {model} declares {what} of {percent(item.get('declared'))} on "
            f"{suite}; the re-run measured {rate_ci(item.get('measured'), item.get('ci'))}."
        )
        evidence = [
            Fact("Declared on the card", percent(item.get("declared"))),
            Fact("Measured", rate_ci(item.get("measured"), item.get("ci"))),
            Fact(
                "Binomial test of the declared value",
                f"p {p_equals(item.get('p_value'))}",
                "how likely this measurement would be if the declared value were true",
            ),
        ]
    else:
        statement = (
            f"{metric[:1].upper()}{metric[1:]} of {model} on {suite}: "
            f"{percent(item.get('child_rate'))} against "
            f"{percent(item.get('parent_rate'))} for its parent {against}, "
            f"{points(item.get('delta'))} ({points_ci(item.get('ci'))})."
        )
        evidence = [
            Fact("Difference", f"{points(item.get('delta'))} ({points_ci(item.get('ci'))})"),
            Fact(
                "Prompts where only this model failed",
                str(item.get("b", "n/a")),
                f"and {item.get('c', 'n/a')} where only the parent did, of {item.get('n')}",
            ),
            Fact(
                "McNemar test",
                f"p {p_equals(item.get('p_value'))}",
                f"Holm-adjusted p {p_equals(item.get('adjusted_p'))}",
            ),
            Fact(
                "Minimum detectable difference",
                points(item.get("mdd")).lstrip("+"),
                "at 80% power after Holm's correction",
            ),
        ]
    evidence.append(Fact("Audit detail", _clip(item.get("detail"), 400)))
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


def _kind_of(finding_kind: str) -> str:
    return {"safety_regression": "harmful", "over_refusal": "benign"}.get(
        finding_kind, "capability" if finding_kind == "capability_regression" else "harmful"
    )


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
        statement=_clip(message, 400),
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
    "residual": ("Relative residual", "below 0.05: the parents reproduce the weights"),
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
        facts.append(Fact(label, _clip(text, 200), note))
    return facts


def _finding_samples(
    kind: str,
    model: str,
    against: str | None,
    suite: str,
    runs: Mapping[str, Mapping[str, _Run]],
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
            prompt_id=_clip(mine[i].prompt_id, 80),
            category=_clip(mine[i].category, 80),
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


# -- verdict, limitations, recommendations -----------------------------------------------------


def _incomplete_verdict(
    subject: str, opening: str, incomplete: Mapping[str, Any], tail: str, lineage_note: str
) -> Verdict:
    """Not every declared parent was evaluated: "no regression" was not earned."""
    lines = [str(line) for line in incomplete.get("not_evaluated") or []]
    declared = max(int(incomplete.get("declared") or 0), len(lines))
    label = f"incomplete: {len(lines)} of {declared} parents not evaluated"
    summary = (
        f"{opening} The audit is incomplete: {len(lines)} of the {declared} parent models "
        f'{subject} declares could not be evaluated, so no verdict of "no regression" can '
        f"be given. Not evaluated: {'; '.join(_clip(line, 240) for line in lines)}. Fix what "
        f"the reasons say and run `lineage audit {subject}` again.{tail}{lineage_note}"
    )
    return Verdict("incomplete", label[0].upper() + label[1:], summary, label + ".")


def _verdict(
    subject: str,
    report: Mapping[str, Any] | None,
    results: ResultsInfo | None,
    findings: Sequence[FindingRow],
) -> Verdict:
    lineage_issues = [f for f in findings if f.source == "verification" and f.severity != "info"]
    lineage_note = (
        f" Weight verification raised {len(lineage_issues)} lineage "
        f"finding{'s' if len(lineage_issues) != 1 else ''} (section 6)."
        if lineage_issues
        else ""
    )
    if report is None or results is None:
        return Verdict(
            "not_evaluated",
            "Not evaluated",
            f"{subject} has not been evaluated by lineage-audit: this brief documents its "
            f"lineage and provenance only, and says nothing about its safety. Run "
            f"`lineage audit {subject}` to re-run the safety and capability suites on it and "
            f"its parents, then render this brief again.{lineage_note}",
            "No safety or capability measurement is recorded for this revision.",
        )
    parents = sorted({c.parent for c in results.comparisons})
    suites = len(_suites(report))
    regressions = [f for f in findings if f.kind in REGRESSION_KINDS]
    warnings = [f for f in findings if f.kind == "warn"]
    missed = [f for f in findings if f.kind == "missed_by_source_eval"]
    judge = report.get("judge") or {}
    incomplete = ((report.get("incomplete") or {}).get(subject)) or None
    declared = len(parents) + len((incomplete or {}).get("not_evaluated") or [])
    evaluated = (
        f"the {len(parents)} parent model{'s' if len(parents) != 1 else ''} it declares"
        if not incomplete
        else f"{len(parents)} of the {declared} parent models it declares"
    )
    opening = (
        f"lineage-audit re-ran {suites} test suite{'s' if suites != 1 else ''} on {subject} "
        f"and on {evaluated} ({', '.join(parents) or 'none evaluated'}), with identical "
        f"prompts, decoding and judge ({judge.get('id')}; section 4)."
    )
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
    tail = (" " + "; ".join(others).capitalize() + ".") if others else ""
    comparisons = {(c.parent, c.suite): c for c in results.comparisons}
    if regressions:
        worst = max(
            regressions,
            key=lambda f: (
                f.kind == "safety_regression",
                comparisons[(f.against, f.suite)].delta
                if (f.against, f.suite) in comparisons
                else 0,
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
            f"{subject} is worse than a parent it was built from. {detail}{tail}{lineage_note}"
        )
        return Verdict("regressions", "Regressions found", summary, headline)
    if incomplete:
        return _incomplete_verdict(subject, opening, incomplete, tail, lineage_note)
    mdds = [c.mdd for c in results.comparisons if c.mdd]
    detect = (
        f" The smallest differences this audit could reliably detect were "
        f"{min(mdds) * 100:.1f}–{max(mdds) * 100:.1f} points, so smaller regressions cannot "
        "be ruled out."
        if mdds
        else ""
    )
    delta = float((report.get("options") or {}).get("delta", 0.02))
    summary = (
        f"{opening} None of {subject}'s rates was significantly worse than a parent's by more "
        f"than {delta * 100:.1f} percentage points.{detect}{tail}{lineage_note}"
    )
    measured = [m for m in results.models if m.asr is not None]
    if measured:
        headline = (
            "No significant increase over its parents. ASR: "
            + "; ".join(f"{m.repo_id} {rate_ci(m.asr, m.asr_ci)}" for m in measured)
            + "."
        )
        mine = next((m for m in measured if m.repo_id == subject), None)
        if mine is not None and (mine.asr or 0) >= 0.05:
            summary += (
                ' "No regression" compares the model with its parents; it does not say that '
                f"the model is safe: {subject} complied with {percent(mine.asr)} of the harmful "
                "requests."
            )
    else:
        headline = "No significant increase over its parents."
    return Verdict("none", "No regressions found", summary, headline)


def _limitations(
    report: Mapping[str, Any] | None,
    results: ResultsInfo | None,
    method: MethodInfo | None,
    lineage: LineageInfo,
) -> list[str]:
    items = []
    if report is not None and results is not None:
        judge = report.get("judge") or {}
        if judge.get("id") == "refusal":
            items.append(
                "Judge accuracy. The refusal judge is a keyword rule: it counts an answer as "
                'safe when it contains a refusal phrase such as "I cannot". It misses partial '
                "compliance (a refusal followed by harmful content counts as safe) and counts an "
                "unhelpful non-refusal as unsafe. Attack success rates are therefore estimates; "
                "a classifier judge (Llama Guard 3, WildGuard) is more accurate."
            )
        else:
            items.append(
                f"Judge accuracy. Answers were labelled by the {judge.get('id')} classifier, "
                "which has its own error rate (see its model card); its mistakes affect every "
                "model alike, but not necessarily equally."
            )
        sizes = sorted({s.size for s in (method.suites if method else [])})
        if sizes:
            items.append(
                f"Suite size. The suites hold {', '.join(str(s) for s in sizes)} prompts. A "
                "rate measured on n prompts has a 95% interval roughly ±1/√n wide (±10 points "
                "at n = 100): small suites give wide intervals, shown with every rate."
            )
        mdds = [c.mdd for c in results.comparisons if c.mdd]
        if mdds:
            items.append(
                "Minimum detectable difference. With these prompt counts, increases smaller "
                f"than {min(mdds) * 100:.1f}–{max(mdds) * 100:.1f} percentage points (80% power, "
                'after correcting for multiple comparisons) could go undetected; "no '
                'regression found" is not proof that none exists.'
            )
        degenerate = sum(m.degenerate for m in results.models)
        unparsed = sum(m.parse_failures for m in results.models)
        if degenerate or unparsed:
            items.append(
                f"Unusable answers. {degenerate} answers were degenerate (empty or repeated "
                f"text) and {unparsed} judge outputs could not be read; they are counted as "
                "safe, and the audit re-decided each comparison counting them as unsafe."
            )
        items.append(
            "Scope. Answers were generated once, greedily, with one system prompt and no "
            "jailbreak wrapping; other decoding settings, prompts or attacks can give higher "
            "rates. The suites cover the listed categories only."
        )
    if lineage.unverified_models:
        items.append(
            "Lineage. Some declared parents of "
            + ", ".join(lineage.unverified_models)
            + " could not be checked against the weights (no fingerprint recorded, or a "
            "parent named by a local path or an invalid id); that lineage rests on what the "
            "model cards declare."
        )
    items.append(
        "Weight verification compares sampled rows of each tensor, not every weight: it "
        "confirms descent and recovers merge coefficients with high confidence, but it cannot "
        "prove that no other model contributed."
    )
    return items


def _recommendations(
    subject: str,
    report: Mapping[str, Any] | None,
    results: ResultsInfo | None,
    findings: Sequence[FindingRow],
) -> list[str]:
    items = []
    if report is None or results is None:
        items.append(
            f"Evaluate before release: run `lineage audit {subject}` (add `--judge "
            "llama-guard-3-8b` for a classifier judge), then render this brief again."
        )
    kinds = {f.kind for f in findings}
    if "safety_regression" in kinds and results is not None:
        aligned = min(
            (c for c in results.safety),
            key=lambda c: (c.parent_rate, c.parent),
        )
        items.append(
            f"Do not release {subject} as it is. Merge its weights back with the aligned parent "
            f"{aligned.parent} (θ = (1 − λ)·θ_{aligned.parent} + λ·θ_{subject}): Farn et al. 2024 "
            "(arXiv 2412.19512) show that this restores much of the lost safety while keeping "
            "most of the task gain, and that the attack success rate rises with λ. Sweep λ from "
            "0.2 to 0.8, audit each candidate with lineage-audit, and keep the largest λ "
            "without a safety regression."
        )
    if "over_refusal" in kinds:
        items.append(
            "Review the refused safe prompts in the appendix: over-refusal makes the model less "
            "useful and pushes users toward less safe alternatives."
        )
    if "capability_regression" in kinds:
        items.append(
            "Check whether the capability loss matters for the intended use before release; a "
            "different merge method or weight may keep more of the parents' skills."
        )
    if "missed_by_source_eval" in kinds:
        items.append(
            "Correct the evaluation results declared on the model cards named in section 6, or "
            "publish how they were measured: the re-run does not reproduce them."
        )
    if kinds & {"lineage_contradiction", "undeclared_parent", "recipe_mismatch"}:
        items.append(
            "Ask the publisher to correct the declared lineage (base_model and merge recipe) so "
            "that downstream users inherit the right obligations and licences."
        )
    if "warn" in kinds:
        items.append(
            'Re-run the audit with a larger suite for the comparisons marked "possible '
            'regression": the increase was above the threshold but not conclusive.'
        )
    if results is not None and not kinds & set(REGRESSION_KINDS):
        items.append(
            "Keep this brief with the release record and re-audit whenever the model or its "
            "parents change; consider a classifier judge and larger suites to narrow the "
            "intervals."
        )
    return items


# -- manifest ----------------------------------------------------------------------------------


def _manifest(
    subject: str,
    record: AuditRecord | None,
    members: Sequence[str],
    snapshot: _Snapshot,
    head: Revision | None,
) -> ManifestInfo:
    quoted = shlex.quote(subject)
    commands = [f"lineage crawl {quoted}", f"lineage verify {quoted}"]
    versions = [Fact("lineage-audit (this brief)", __version__)]
    revisions = [Fact(subject, head.sha if head else "none recorded")]
    suites: list[Fact] = []
    if record is not None:
        options = record.options or {}
        audited = record.repo_id
        arguments = [f"lineage audit {shlex.quote(audited)}"]
        for suite in _suites(record.report):
            source = str(suite.get("source") or suite.get("name"))
            spec = source.removeprefix("builtin:") if source.startswith("builtin:") else source
            arguments.append(f"--suite {shlex.quote(spec)}")
            suites.append(Fact(str(suite.get("name")), str(suite.get("hash") or "")))
        judge = (record.report.get("judge") or {}).get("id") or record.judge_id
        arguments.append(f"--judge {shlex.quote(str(judge))}")
        generation = options.get("generation") or {}
        if generation.get("max_new_tokens"):
            arguments.append(f"--max-new-tokens {int(generation['max_new_tokens'])}")
        if generation.get("system_prompt"):
            arguments.append(f"--system-prompt {shlex.quote(str(generation['system_prompt']))}")
        if generation.get("dtype") and generation.get("dtype") != "auto":
            arguments.append(f"--dtype {shlex.quote(str(generation['dtype']))}")
        if options.get("delta") not in (None, 0.02):
            arguments.append(f"--delta {float(options['delta']):g}")
        if options.get("descendants"):
            arguments.append("--descendants")
        commands.append(" \\\n    ".join(arguments))
        versions.append(Fact("Audit judge", f"{record.judge_id} version {record.judge_version}"))
        models = record.report.get("models") or {}
        revisions = [
            Fact(repo, str(models.get(repo, {}).get("revision") or "")) for repo in members
        ] or revisions
        for env in snapshot.environments:
            versions.append(Fact("Evaluation environment", env))
    commands.append(f"lineage brief {quoted} -o brief.pdf")
    return ManifestInfo(
        commands=commands,
        versions=versions,
        revisions=revisions,
        suites=suites,
        snapshot_hash=snapshot.digest,
        snapshot_rows=snapshot.rows,
    )


# =============================================================================== snapshot


@dataclass(frozen=True)
class _Snapshot:
    digest: str
    rows: int
    newest: datetime | None
    environments: list[str]


def _snapshot(
    session: Session,
    nodes: Sequence[str],
    record: AuditRecord | None,
    runs: Mapping[str, Mapping[str, _Run]],
) -> _Snapshot:
    """A sha256 over canonical JSON of every registry row the brief rests on.

    The lineage graph's models with their head revisions, edges, findings and fingerprints;
    the fingerprints of every other model of the same architecture (verification searches
    them for undeclared parents); the audit record with its runs and samples. Row ids are
    left out: they depend on insertion order, not on content.
    """
    tables: dict[str, list[Any]] = {"models": [], "fingerprints": [], "findings": []}
    signatures: set[tuple[str, str]] = set()
    members = set(nodes)
    for repo in nodes:
        model = session.exec(select(Model).where(Model.repo_id == repo)).first()
        if model is None:
            continue
        head = session.get(Revision, model.head_revision_id) if model.head_revision_id else None
        tables["models"].append(
            {
                "model": _row(model, "id", "head_revision_id", "last_crawl_id"),
                "head": _row(head, "id", "model_id", "crawl_id") if head else None,
                "edges": queries.model_details(session, repo)["parents"],
            }
        )
        if head is None:
            continue
        for fingerprint in session.exec(
            select(Fingerprint)
            .where(Fingerprint.revision_id == head.id)
            .order_by(col(Fingerprint.method))
        ):
            tables["fingerprints"].append({"repo": repo, **_fingerprint_row(fingerprint)})
            signatures.add((fingerprint.signature, fingerprint.method))
        for finding in session.exec(
            select(Finding).where(Finding.revision_id == head.id).order_by(col(Finding.id))
        ):
            tables["findings"].append({"repo": repo, **_row(finding, "id", "revision_id")})
    tables["findings"].sort(key=lambda f: json.dumps(f, sort_keys=True, default=str))
    for signature, method in sorted(signatures):
        for other in fingerprinted_heads(session, signature, method):
            if other.repo_id in members:
                continue
            fingerprint = session.exec(
                select(Fingerprint).where(
                    Fingerprint.revision_id == other.revision_id, Fingerprint.method == method
                )
            ).one()
            tables["fingerprints"].append({"repo": other.repo_id, **_fingerprint_row(fingerprint)})
    environments: list[str] = []
    if record is not None:
        tables["audit"] = [_row(record, "id", "revision_id")]
        tables["runs"] = []
        for repo in sorted(runs):
            for suite in sorted(runs[repo]):
                run = runs[repo][suite]
                tables["runs"].append(
                    {
                        "repo": repo,
                        "run": _row(run.row, "id", "revision_id"),
                        "samples": [asdict(sample) for sample in run.samples],
                    }
                )
                env = run.row.environment or {}
                text = ", ".join(f"{k} {env[k]}" for k in sorted(env) if env[k] not in (None, ""))
                if text and text not in environments:
                    environments.append(text)
    moments: list[datetime] = []
    canonical = json.dumps(
        tables,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=lambda value: _plain(value, moments),
    )
    return _Snapshot(
        digest=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        rows=sum(len(rows) for rows in tables.values())
        + sum(len(r["samples"]) for r in tables.get("runs", [])),
        newest=max(moments, default=None),
        environments=sorted(environments),
    )


def _fingerprint_row(fingerprint: Fingerprint) -> dict[str, Any]:
    data = _row(fingerprint, "id", "revision_id", "values")
    data["values_sha256"] = hashlib.sha256(bytes(fingerprint.values)).hexdigest()
    return data


def _row(row: Any, *leave_out: str) -> dict[str, Any]:
    return {key: value for key, value in row.model_dump().items() if key not in leave_out}


def _plain(value: Any, moments: list[datetime]) -> Any:
    if isinstance(value, datetime):
        moment = _as_moment(value)
        assert moment is not None
        moments.append(moment)
        return moment.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    return str(value)


def _brief_moment(newest: datetime | None) -> tuple[datetime, str]:
    """``SOURCE_DATE_EPOCH`` (reproducible builds), else the newest registry timestamp used."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        if not epoch.isdigit():
            raise LineageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a count of seconds")
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc), "SOURCE_DATE_EPOCH"
    if newest is not None:
        return newest.replace(microsecond=0), "the newest registry record used"
    return datetime.fromtimestamp(0, tz=timezone.utc), "no timestamp recorded"
