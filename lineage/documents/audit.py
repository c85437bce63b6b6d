"""The audit report as a typed document: the JSON contract of ``lineage audit --json``.

``AuditReport.to_json()`` writes it, the registry stores it (``AuditRecord.report``), and
the brief, the graph exports and the CLI read it back through ``AuditDocument``, so no
reader restates a key or a default. The JSON is a public contract: fields are added, never
renamed; ``format_version`` counts the additions that change what a reader may rely on.

Every model allows extra keys (a later version may add fields) and dumps only the keys a
report actually holds (``exclude_unset``): a model evaluated on no benign suite has no
``over_refusal`` key, not a ``null`` one, and a finding has its comparison's numbers only if
it is a regression or a warning. A key promoted from extra to field is appended after the
existing fields, in the order the auditor writes it, so the dump keeps its key order. Reading a
stored report and dumping it again gives back the same JSON.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lineage.thresholds import DEFAULT_ALPHA, DEFAULT_DELTA

# 1: the contract as first published. A stored report without the field is version 1.
AUDIT_FORMAT_VERSION = 1


class _Document(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The JSON form: the keys this document was built with, in their order."""
        return self.model_dump(mode="json", exclude_unset=True)


class SuiteRunDoc(_Document):
    """One suite's run of one model, as the audit used it."""

    kind: str
    suite_hash: str
    n: int
    events: int
    rate: float
    ci: list[float]
    degenerate: int = 0
    judge_parse_failures: int = 0
    by_category: dict[str, Any] = Field(default_factory=dict)
    run_id: int | None = None
    # What an earlier run lent this one: "run" (cached whole), "responses" (re-judged), or
    # null when it was generated now.
    reused: str | None = None


class ModelDoc(_Document):
    """One evaluated model: its rates with their intervals, per family and per suite."""

    revision: str | None = None
    role: str = ""
    asr: float | None = None
    ci: list[float] | None = None
    n: int | None = None
    degenerate: int | None = None
    judge_parse_failures: int | None = None
    asr_if_unparsed_unsafe: float | None = None
    over_refusal: float | None = None
    over_refusal_ci: list[float] | None = None
    capability: float | None = None
    capability_ci: list[float] | None = None
    chat_template: str | None = None
    suites: dict[str, SuiteRunDoc] = Field(default_factory=dict)


class FindingDoc(_Document):
    """One finding: a regression, or a regression the source's own evaluation missed."""

    kind: str
    model: str
    against: str | None = None
    suite: str = ""
    delta: float = 0.0
    ci: list[float] = Field(default_factory=list)
    p_value: float | None = None
    detail: str = ""
    family: str = ""
    adjusted_p: float | None = None
    severity: str = "warning"
    # A comparison's numbers (a regression or a warning), in the order the audit writes them.
    suite_hash: str | None = None
    child_rate: float | None = None
    parent_rate: float | None = None
    n: int | None = None
    b: int | None = None
    c: int | None = None
    test: str | None = None
    mdd: float | None = None
    sensitivity_outcome: str | None = None
    # A card's declared result against the re-run (``missed_by_source_eval``).
    declared: float | None = None
    measured: float | None = None

    # The registry's record of a finding (``registry.findings.FindingRecord``): the audit
    # hands its findings to the registry as they are, the whole JSON as their details.
    @property
    def message(self) -> str:
        return self.detail

    @property
    def related_repo_id(self) -> str | None:
        return self.against

    @property
    def details(self) -> dict[str, Any]:
        """The finding as the report's JSON holds it, its extra numbers included (values
        as they are: a NaN stays a float until the registry makes it JSON-safe)."""
        return self.model_dump(exclude_unset=True)


class ComparisonDoc(_Document):
    """One paired comparison of a child with a parent on one suite, and its decision."""

    model: str
    against: str
    suite: str
    suite_hash: str = ""
    kind: str = ""
    n: int = 0
    child_rate: float = 0.0
    parent_rate: float = 0.0
    child_ci: list[float] = Field(default_factory=list)
    parent_ci: list[float] = Field(default_factory=list)
    delta: float = 0.0
    ci: list[float] = Field(default_factory=list)
    b: int = 0
    c: int = 0
    test: str = ""
    p_value: float | None = None
    adjusted_p: float | None = None
    outcome: str = ""
    mdd: float | None = None
    detail: str = ""
    sensitivity_outcome: str | None = None


class SuiteDoc(_Document):
    """One suite the audit ran: its name, kind, content hash, size and where it came from."""

    name: str | None = None
    kind: str | None = None
    hash: str | None = None
    size: int | None = None
    source: str | None = None
    left_out: dict[str, Any] = Field(default_factory=dict)


class GenerationDoc(_Document):
    """The generation settings the audit asked for (a run records what it actually used)."""

    max_new_tokens: int | None = None
    system_prompt: str | None = None
    batch_size: int | None = None
    device: str | None = None
    dtype: str | None = None
    backend: str | None = None  # transformers or vllm (--backend auto decided); older: None


class OptionsDoc(_Document):
    """How the audit decided: δ, α, the bootstrap, the suites and the generation settings."""

    delta: float = DEFAULT_DELTA
    alpha: float = DEFAULT_ALPHA
    descendants: bool = False
    bootstrap_resamples: int = 0
    seed: int = 0
    suites: list[SuiteDoc] = Field(default_factory=list)
    generation: GenerationDoc = Field(default_factory=GenerationDoc)


class JudgeDoc(_Document):
    id: str
    version: str = ""


class IncompleteDoc(_Document):
    """Why a subject's verdict is incomplete: how many parents it declares, which failed."""

    declared: int = 0
    not_evaluated: list[str] = Field(default_factory=list)


class AuditDocument(_Document):
    """A whole audit: the subject, every model evaluated, the comparisons and findings."""

    format_version: int = 1
    repo: str
    models: dict[str, ModelDoc] = Field(default_factory=dict)
    findings: list[FindingDoc] = Field(default_factory=list)
    comparisons: list[ComparisonDoc] = Field(default_factory=list)
    judge: JudgeDoc | None = None
    options: OptionsDoc = Field(default_factory=OptionsDoc)
    skipped: list[str] = Field(default_factory=list)
    incomplete: dict[str, IncompleteDoc] = Field(default_factory=dict)
    verdict: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuditDocument:
        """Read a report as ``to_json`` wrote it (raises pydantic's ValidationError)."""
        return cls.model_validate(data)
