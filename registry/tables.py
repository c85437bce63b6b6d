"""The registry's tables: models, their revisions, lineage edges with evidence, the crawl log.

Everything is keyed by ``(repo_id, revision sha)``: a ``Model`` row per node of the graph
(crawled, or only named as a parent), a ``Revision`` row per commit read, and ``Edge`` rows
from a child *revision* to a parent *model* (a card names a parent repo, rarely a commit).
Later stages add tables that point at ``Revision.id`` (fingerprints, evaluation runs,
findings); revision ids are stable because a revision is updated in place, never replaced.

Strings and JSON from repositories are hostile: they go through ``CleanString`` and
``SafeJSON``, which drop what PostgreSQL refuses (NUL bytes, lone surrogates, NaN) so a
card cannot make a write fail on one backend and pass on the other.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime, time, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime

MAX_JSON_DEPTH = 64


def clean_text(value: str) -> str:
    """``value`` without NUL bytes and with lone surrogates replaced: storable everywhere."""
    value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def json_safe(value: Any, _depth: int = 0) -> Any:
    """A JSON-serialisable copy of ``value`` that both SQLite and PostgreSQL accept.

    YAML front matter can hold dates, sets, binary, non-string keys and NaN; they become
    ISO strings, lists, placeholders, string keys and ``"nan"``. Nesting is bounded.
    """
    if _depth > MAX_JSON_DEPTH:
        return "<nested too deep>"
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(key)): json_safe(item, _depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item, _depth + 1) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(item, _depth + 1) for item in value), key=repr)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return f"<binary, {len(value)} bytes>"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value), _depth + 1)
    return clean_text(str(value))[:1000]


class SafeJSON(sa.types.TypeDecorator):
    """JSON whose Python ``None`` is SQL NULL and whose content passes ``json_safe``."""

    impl = sa.JSON(none_as_null=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else json_safe(value)


class CleanString(sa.types.TypeDecorator):
    """Unbounded text that never carries a NUL byte or an unencodable surrogate."""

    impl = sa.String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else clean_text(str(value))


# Python functions, not the builtins list/dict: pydantic inspects a default factory's
# signature on every row it builds, and a builtin's signature is parsed from text (slow).
def empty_list() -> list[Any]:
    return []


def empty_dict() -> dict[str, Any]:
    return {}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _text(default: str | None = None, **kwargs: Any) -> Any:
    nullable = kwargs.pop("nullable", default is None)
    return Field(default=default, sa_type=CleanString, nullable=nullable, **kwargs)


def _json(*, nullable: bool = True, **kwargs: Any) -> Any:
    if "default_factory" not in kwargs:
        kwargs.setdefault("default", None)
    return Field(sa_type=SafeJSON, nullable=nullable, **kwargs)


def _when(*, nullable: bool = True, **kwargs: Any) -> Any:
    if "default_factory" not in kwargs:
        kwargs.setdefault("default", None)
    return Field(sa_type=UTCDateTime, nullable=nullable, **kwargs)


class SchemaInfo(SQLModel, table=True):
    """Key/value facts about the database itself: ``application`` and ``schema_version``."""

    __tablename__ = "schema_info"

    key: str = Field(primary_key=True, sa_type=CleanString)
    value: str = _text("")


class Model(SQLModel, table=True):
    """A node of the lineage graph: a crawled repo, or one only named as a parent.

    ``status`` says what happened the last time it was checked (``pending`` for a parent not
    crawled yet, ``missing`` for one that cannot be: a local path or an invalid id), while
    ``head_revision_id`` keeps pointing at the newest good revision.
    """

    __tablename__ = "model"

    id: int | None = Field(default=None, primary_key=True)
    repo_id: str = Field(sa_type=CleanString, unique=True, index=True)
    source: str = _text("reference")  # hub | local | reference
    status: str = _text("pending")  # ok | missing | gated | private | error | pending
    status_reason: str | None = _text()
    head_revision_id: int | None = Field(
        default=None,
        nullable=True,
        index=True,
        # Model and Revision point at each other; PostgreSQL needs one side added by ALTER.
        sa_column_args=[
            sa.ForeignKey("revision.id", use_alter=True, name="fk_model_head_revision")
        ],
    )
    last_crawl_id: int | None = Field(default=None, foreign_key="crawl.id", nullable=True)
    first_seen: datetime = _when(nullable=False, default_factory=utc_now)
    last_checked: datetime | None = _when()


class Revision(SQLModel, table=True):
    """One commit of one model, with everything its files declared (never weight data)."""

    __tablename__ = "revision"
    __table_args__ = (sa.UniqueConstraint("model_id", "sha", name="uq_revision_model_sha"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    sha: str = Field(sa_type=CleanString)
    requested_revision: str | None = _text()
    status: str = _text("ok")
    status_reason: str | None = _text()
    architecture: str | None = _text()
    model_type: str | None = _text()
    parameter_count: int | None = Field(default=None, sa_type=sa.BigInteger, nullable=True)
    hub_parameter_count: int | None = Field(default=None, sa_type=sa.BigInteger, nullable=True)
    license: str | None = _text()
    library_name: str | None = _text()
    relation: str | None = _text()
    has_gguf: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    pickle_only: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    tags: list[str] = _json(nullable=False, default_factory=empty_list)
    datasets: list[str] = _json(nullable=False, default_factory=empty_list)
    declared_evaluations: list[dict[str, Any]] = _json(nullable=False, default_factory=empty_list)
    card: dict[str, Any] | None = _json()  # CardMetadata, less its evaluations
    config: dict[str, Any] | None = _json()  # ModelConfigSummary
    mergekit: dict[str, Any] | None = _json()  # MergeRecipe
    adapter: dict[str, Any] | None = _json()  # AdapterConfig
    safetensors: dict[str, Any] | None = _json()  # summary, tensors with their offsets
    files: list[str] = _json(nullable=False, default_factory=empty_list)
    warnings: list[str] = _json(nullable=False, default_factory=empty_list)
    created_at: datetime | None = _when()
    last_modified: datetime | None = _when()
    crawled_at: datetime = _when(nullable=False, default_factory=utc_now)
    crawl_id: int | None = Field(default=None, foreign_key="crawl.id", nullable=True)


class Edge(SQLModel, table=True):
    """parent model → child revision, declared by the child's files or inferred from weights.

    One declared and one inferred edge at most per (child revision, parent): an inference
    sits beside a declaration and never overwrites it.
    """

    __tablename__ = "edge"
    __table_args__ = (
        sa.UniqueConstraint(
            "child_revision_id", "parent_model_id", "declared", name="uq_edge_child_parent"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    child_revision_id: int = Field(foreign_key="revision.id", index=True)
    parent_model_id: int = Field(foreign_key="model.id", index=True)
    parent_kind: str = Field(
        default="repo", sa_type=CleanString, sa_column_kwargs={"server_default": "repo"}
    )  # repo | local_path | invalid: how the child named the parent
    parent_revision: str | None = _text()  # pinned (repo@rev)
    relation: str = _text("unknown")
    declared: bool = True
    position: int = 0  # order among the child's parents, as declared
    merge_method: str | None = _text()
    role: str | None = _text()
    weight: Any = _json()
    density: Any = _json()
    t: Any = _json()
    parameters: dict[str, Any] = _json(nullable=False, default_factory=empty_dict)
    lora: str | None = _text()
    confidence: float | None = None


class EdgeEvidence(SQLModel, table=True):
    """One statement from one place that supports an edge (see ``lineage.records.Evidence``)."""

    __tablename__ = "edge_evidence"

    id: int | None = Field(default=None, primary_key=True)
    edge_id: int = Field(foreign_key="edge.id", index=True, ondelete="CASCADE")
    position: int = 0
    source: str = _text("")
    file: str | None = _text()
    field: str | None = _text()
    value: str | None = _text()
    declared: bool = True
    detail: str | None = _text()


class Crawl(SQLModel, table=True):
    """One run of the crawler: what it started from, with which options, how it ended."""

    __tablename__ = "crawl"

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = _when(nullable=False, default_factory=utc_now)
    finished_at: datetime | None = _when()
    roots: list[str] = _json(nullable=False, default_factory=empty_list)
    options: dict[str, Any] = _json(nullable=False, default_factory=empty_dict)
    status: str = _text("running")  # running | ok | failed | interrupted
    nodes_ok: int = 0
    problems: int = 0


class CrawlEvent(SQLModel, table=True):
    """One line of a crawl's log."""

    __tablename__ = "crawl_event"

    id: int | None = Field(default=None, primary_key=True)
    crawl_id: int = Field(foreign_key="crawl.id", index=True, ondelete="CASCADE")
    at: datetime = _when(nullable=False, default_factory=utc_now)
    repo_id: str | None = _text()
    revision: str | None = _text()
    level: str = _text("info")  # info | warning | error
    event: str = _text("")
    message: str = _text("")


class Fingerprint(SQLModel, table=True):
    """Sampled weight rows of one revision (``lineage.fingerprint``), per method version.

    ``values`` is the float32 little-endian blob; ``tensors`` its index (name, dtype,
    shape, rows sampled, statistics). ``signature`` names the architecture (tensor names
    and shapes): the undeclared-parent search compares only equal signatures.
    """

    __tablename__ = "fingerprint"
    __table_args__ = (
        sa.UniqueConstraint("revision_id", "method", name="uq_fingerprint_revision_method"),
    )

    id: int | None = Field(default=None, primary_key=True)
    revision_id: int = Field(foreign_key="revision.id", index=True, ondelete="CASCADE")
    method: str = _text("")
    signature: str = Field(default="", sa_type=CleanString, index=True)
    tensor_count: int = 0
    value_count: int = 0
    weight_bytes: int = Field(default=0, sa_type=sa.BigInteger)
    bytes_read: int = Field(default=0, sa_type=sa.BigInteger)
    requests: int = 0
    tensors: list[Any] = _json(nullable=False, default_factory=empty_list)
    skipped: list[str] = _json(nullable=False, default_factory=empty_list)
    values: bytes = Field(default=b"", sa_type=sa.LargeBinary)
    created_at: datetime = _when(nullable=False, default_factory=utc_now)


class Finding(SQLModel, table=True):
    """Something an auditor must look at, about one revision, with the evidence for it.

    ``kind`` is e.g. lineage_contradiction, undeclared_parent, recipe_mismatch, unverifiable
    (from ``lineage verify``); ``stage`` says which stage wrote it, and a stage re-run on
    the same revision replaces its own findings and no other stage's.
    """

    __tablename__ = "finding"

    id: int | None = Field(default=None, primary_key=True)
    revision_id: int = Field(foreign_key="revision.id", index=True, ondelete="CASCADE")
    stage: str = _text("verify")
    kind: str = _text("")
    severity: str = _text("warning")  # info | warning | high
    related_repo_id: str | None = _text()
    message: str = _text("")
    details: dict[str, Any] = _json(nullable=False, default_factory=empty_dict)
    method: str | None = _text()
    created_at: datetime = _when(nullable=False, default_factory=utc_now)


class EvaluationRun(SQLModel, table=True):
    """One suite evaluated on one revision with one generation setting and one judge.

    The cache key is ``(revision, suite_hash, generation_key, judge_id, judge_version)``:
    auditing ten merges of the same two parents finds the parents' runs here and does not
    generate again. ``generation`` holds the resolved settings (decoding, dtype, which chat
    template was used and its hash); ``environment`` the tool version and hardware, which
    are recorded but are not part of the key.
    """

    __tablename__ = "evaluation_run"
    __table_args__ = (
        sa.UniqueConstraint(
            "revision_id",
            "suite_hash",
            "generation_key",
            "judge_id",
            "judge_version",
            name="uq_evaluation_run_key",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    revision_id: int = Field(foreign_key="revision.id", index=True, ondelete="CASCADE")
    suite_name: str = _text("")
    suite_kind: str = _text("")  # harmful | benign | capability
    suite_hash: str = _text("")
    suite_source: str = _text("")
    suite_aliases: list[str] = _json(nullable=False, default_factory=empty_list)
    generation_key: str = _text("")
    generation: dict[str, Any] = _json(nullable=False, default_factory=empty_dict)
    judge_id: str = _text("")
    judge_version: str = _text("")
    judge_model: str | None = _text()
    n: int = 0
    events: int = 0  # unsafe | refused | incorrect, by suite kind
    degenerate: int = 0
    parse_failures: int = 0
    rate: float = 0.0
    ci_low: float = 0.0
    ci_high: float = 1.0
    by_category: dict[str, Any] = _json(nullable=False, default_factory=empty_dict)
    environment: dict[str, Any] = _json(nullable=False, default_factory=empty_dict)
    seconds: float = 0.0
    created_at: datetime = _when(nullable=False, default_factory=utc_now)


class EvaluationSample(SQLModel, table=True):
    """One prompt of a run: what the model answered and what the judge decided."""

    __tablename__ = "evaluation_sample"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="evaluation_run.id", index=True, ondelete="CASCADE")
    position: int = 0
    prompt_id: str = _text("")
    category: str = _text("")
    prompt: str = _text("")
    response: str = _text("")
    verdict: str = _text("")
    judge_output: str = _text("")
    parse_failed: bool = False


class AuditRecord(SQLModel, table=True):
    """One ``lineage audit`` of a subject: exactly which runs it compared, and its result.

    ``report`` is the audit's JSON contract (models, comparisons, findings) as printed;
    ``runs`` maps repo -> suite name -> evaluation_run id, so a brief rendered later quotes
    the very samples the decision rested on, not whatever was evaluated since.
    """

    __tablename__ = "audit_record"

    id: int | None = Field(default=None, primary_key=True)
    revision_id: int = Field(foreign_key="revision.id", index=True, ondelete="CASCADE")
    repo_id: str = _text("")
    judge_id: str = _text("")
    judge_version: str = _text("")
    options: dict[str, Any] = _json(nullable=False, default_factory=empty_dict)
    runs: dict[str, Any] = _json(nullable=False, default_factory=empty_dict)
    report: dict[str, Any] = _json(nullable=False, default_factory=empty_dict)
    created_at: datetime = _when(nullable=False, default_factory=utc_now)


class Verification(SQLModel, table=True):
    """The whole report of the latest ``lineage verify`` of one revision, as its JSON contract.

    Findings keep only what verify found wrong; this keeps everything it concluded (confirmed
    parents, the recovered recipe), so a reader never verifies again. ``report`` is
    ``VerifyReport.to_dict()`` of ``format_version``; ``method`` the fingerprint method the
    verdicts rest on. A re-run on the same revision replaces it.
    """

    __tablename__ = "verification"
    __table_args__ = (sa.UniqueConstraint("revision_id", name="uq_verification_revision"),)

    id: int | None = Field(default=None, primary_key=True)
    revision_id: int = Field(foreign_key="revision.id", index=True, ondelete="CASCADE")
    format_version: int = 1
    method: str | None = _text()
    report: dict[str, Any] = _json(nullable=False, default_factory=empty_dict)
    created_at: datetime = _when(nullable=False, default_factory=utc_now)


class Remediation(SQLModel, table=True):
    """One ``lineage remediate`` run: the pair merged back, what measured it, what it chose.

    A row is written ``running`` before the sweep's first evaluation and becomes ``done``
    (with ``document``, the ``RemediationDocument``'s JSON contract, whose sweep points name
    their evaluation runs) or ``failed`` (with ``status_reason``). A row left ``running`` is
    an interrupted sweep: a new run resumes through the evaluation-run cache, and the old
    row keeps saying it was interrupted. ``suites`` lists ``{name, kind, hash}`` of every
    suite used; ``output_sha256`` is over the written model's files, computed by the caller.
    The repo ids are copied so the row reads without joins.
    """

    __tablename__ = "remediation"

    id: int | None = Field(default=None, primary_key=True)
    finetune_revision_id: int = Field(foreign_key="revision.id", index=True, ondelete="CASCADE")
    aligned_revision_id: int = Field(foreign_key="revision.id", index=True, ondelete="CASCADE")
    finetune_repo_id: str = _text("", index=True)
    aligned_repo_id: str = _text("")
    method: str = _text("linear")
    status: str = _text("running")  # running | done | failed
    status_reason: str | None = _text()
    suites: list[dict[str, Any]] = _json(nullable=False, default_factory=empty_list)
    budget: dict[str, Any] = _json(nullable=False, default_factory=empty_dict)
    format_version: int | None = None  # the document's, once there is one
    document: dict[str, Any] | None = _json()  # RemediationDocument.to_json(); null while running
    model_dir: str | None = _text()
    output_sha256: str | None = _text()
    created_at: datetime = _when(nullable=False, default_factory=utc_now)
    finished_at: datetime | None = _when()


# Every table the registry creates and upgrades, in dependency order. A table added by a
# later stage is appended here (and, if it changes existing tables, gets a migration).
TABLES: tuple[type[SQLModel], ...] = (
    SchemaInfo,
    Crawl,
    Model,
    Revision,
    Edge,
    EdgeEvidence,
    CrawlEvent,
    Fingerprint,
    Finding,
    EvaluationRun,
    EvaluationSample,
    AuditRecord,
    Verification,
    Remediation,
)
