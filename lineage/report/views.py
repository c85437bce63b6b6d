"""The brief's view models: plain, frozen data that the templates only lay out.

Each section builder in ``lineage.report.sections`` returns one of these; ``BriefContext``
holds them all. Every string that came from a repository stays plain text here (the
templates escape it); the figures are the only markup, and they escape their input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup


@dataclass(frozen=True)
class Fact:
    """One labelled value of a definition list or a two-column table."""

    label: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class VerdictView:
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
class SweepRow:
    """One λ of the remediation sweep, formatted."""

    lam: str
    asr: str
    task: str
    over_refusal: str
    within_budget: bool
    pareto: bool
    chosen: bool


@dataclass(frozen=True)
class RemediationInfo:
    """The merge-back sweep of the subject with its aligned parent (Farn et al. 2024)."""

    intro: str  # what the subject is to the sweep: its fine-tune, or its recommended merge
    aligned: str
    budget: str
    rows: list[SweepRow]
    figure: Markup
    recommendation: str
    caveats: list[str]


@dataclass(frozen=True)
class BriefContext:
    subject: str
    title: str
    date: str  # YYYY-MM-DD
    moment: str  # ISO 8601, for document metadata
    date_source: str
    tool_version: str
    redacted: bool
    verdict: VerdictView
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
    remediation: RemediationInfo | None = None

    @property
    def sample_findings(self) -> list[FindingRow]:
        return [finding for finding in self.findings if finding.samples]
