"""Evaluation runs in the registry: find a cached run, reuse generated responses, save.

A run is keyed by ``(revision, suite hash, generation key, judge id, judge version)``.
Responses depend only on the first three, so a new judge over an old run re-judges the
stored responses instead of generating them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, delete, select

from lineage.documents import AuditDocument
from registry.errors import RegistryDamagedError
from registry.tables import AuditRecord, EvaluationRun, EvaluationSample, Model


@dataclass(frozen=True)
class RunKey:
    revision_id: int
    suite_hash: str
    generation_key: str
    judge_id: str
    judge_version: str


@dataclass
class StoredSample:
    prompt_id: str
    category: str
    prompt: str
    response: str
    verdict: str
    judge_output: str = ""
    parse_failed: bool = False


@dataclass
class RunRecord:
    """Everything about a run but its key, as the auditor hands it over to be saved."""

    suite_name: str
    suite_kind: str
    suite_source: str
    suite_aliases: list[str]
    generation: dict[str, Any]
    judge_model: str | None
    n: int
    events: int
    degenerate: int
    parse_failures: int
    rate: float
    ci_low: float
    ci_high: float
    by_category: dict[str, Any]
    environment: dict[str, Any]
    seconds: float
    samples: list[StoredSample] = field(default_factory=list)


def _key_filter(key: RunKey) -> Any:
    return (
        (EvaluationRun.revision_id == key.revision_id)
        & (EvaluationRun.suite_hash == key.suite_hash)
        & (EvaluationRun.generation_key == key.generation_key)
        & (EvaluationRun.judge_id == key.judge_id)
        & (EvaluationRun.judge_version == key.judge_version)
    )


def find_run(session: Session, key: RunKey) -> EvaluationRun | None:
    return session.exec(select(EvaluationRun).where(_key_filter(key))).first()


def find_responses(
    session: Session, key: RunKey
) -> tuple[list[StoredSample], dict[str, Any]] | None:
    """Samples and environment of a run of the same revision, suite and generation (any
    judge): its responses can be judged again without generating them again."""
    run = session.exec(
        select(EvaluationRun)
        .where(
            EvaluationRun.revision_id == key.revision_id,
            EvaluationRun.suite_hash == key.suite_hash,
            EvaluationRun.generation_key == key.generation_key,
        )
        .order_by(col(EvaluationRun.id).desc())
    ).first()
    return None if run is None else (run_samples(session, run), dict(run.environment))


def run_samples(session: Session, run: EvaluationRun) -> list[StoredSample]:
    rows = session.exec(
        select(EvaluationSample)
        .where(EvaluationSample.run_id == run.id)
        .order_by(col(EvaluationSample.position))
    ).all()
    return [
        StoredSample(
            row.prompt_id,
            row.category,
            row.prompt,
            row.response,
            row.verdict,
            row.judge_output,
            row.parse_failed,
        )
        for row in rows
    ]


def save_run(session: Session, key: RunKey, record: RunRecord) -> EvaluationRun:
    """Store a run and its samples, replacing a run with the same key."""
    old = find_run(session, key)
    if old is not None:
        session.exec(delete(EvaluationSample).where(col(EvaluationSample.run_id) == old.id))
        session.delete(old)
        session.flush()
    run = EvaluationRun(
        revision_id=key.revision_id,
        suite_hash=key.suite_hash,
        generation_key=key.generation_key,
        judge_id=key.judge_id,
        judge_version=key.judge_version,
        **{name: value for name, value in vars(record).items() if name != "samples"},
    )
    session.add(run)
    session.flush()
    session.add_all(
        EvaluationSample(run_id=run.id, position=position, **vars(sample))
        for position, sample in enumerate(record.samples)
    )
    session.flush()
    return run


def save_audit(
    session: Session,
    revision_id: int,
    repo_id: str,
    *,
    judge_id: str,
    judge_version: str,
    options: dict[str, Any],
    runs: dict[str, dict[str, int]],
    report: dict[str, Any],
) -> AuditRecord:
    record = AuditRecord(
        revision_id=revision_id,
        repo_id=repo_id,
        judge_id=judge_id,
        judge_version=judge_version,
        options=options,
        runs=runs,
        report=report,
    )
    session.add(record)
    session.flush()
    return record


def latest_audit(session: Session, repo_id: str) -> AuditRecord | None:
    """The newest audit of the head revision of ``repo_id`` (None: never audited)."""
    return session.exec(
        select(AuditRecord)
        .join(Model, col(Model.head_revision_id) == col(AuditRecord.revision_id))
        .where(Model.repo_id == repo_id)
        .order_by(col(AuditRecord.id).desc())
    ).first()


def audit_document(record: AuditRecord) -> AuditDocument:
    """``record``'s report, typed; a stored report that no longer reads is damage."""
    try:
        return AuditDocument.from_json(record.report)
    except ValidationError as error:
        row = f"audit record {record.id} of {record.repo_id}"
        raise RegistryDamagedError.unreadable_document(row, "an audit document", error) from error


def samples_of_run(session: Session, run_id: int) -> list[StoredSample]:
    run = session.get(EvaluationRun, run_id)
    return [] if run is None else run_samples(session, run)
