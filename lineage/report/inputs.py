"""Everything a brief rests on, read from the registry once: ``load_brief_inputs``.

This is the only module of the report that reads the registry. It gathers one model's
recorded lineage, the newest audit of its head revision with the very runs and samples that
audit compared, the stored findings, the weight verification of the subject and its
ancestors, and a digest of every row used; the section builders then work on the frozen
``BriefInputs`` alone::

    >>> inputs = load_brief_inputs(registry, "org/merge")    # doctest: +SKIP
    >>> inputs.record.repo_id, inputs.members                  # doctest: +SKIP
    ('org/merge', ('org/merge', 'org/a', 'org/b'))
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from itertools import permutations
from typing import Any

import networkx as nx
from sqlmodel import Session, col, select

from lineage.documents.audit import AuditDocument, SuiteDoc
from lineage.documents.remediation import RemediationDocument
from lineage.documents.verify import VerifyFinding, VerifyReport
from lineage.errors import InvalidReferenceError
from lineage.graph import attach_audit, lineage_graph
from lineage.report.filters import as_moment
from registry import queries
from registry.database import Registry
from registry.evaluations import StoredSample, audit_document, latest_audit, samples_of_run
from registry.findings import findings_for
from registry.remediations import latest_remediation
from registry.tables import AuditRecord, EvaluationRun, Finding, Fingerprint, Model, Revision
from registry.verifications import latest_verification
from registry.weights import fingerprinted_heads

MAX_VERIFIED_MODELS = 16  # the subject and its nearest ancestors; a deep family stops here


@dataclass(frozen=True)
class RunInputs:
    """One run the audit compared, with its samples in suite order."""

    row: EvaluationRun
    samples: list[StoredSample]


@dataclass(frozen=True)
class Verification:
    """What ``lineage verify`` concludes about one model's declared parents."""

    repo_id: str
    report: VerifyReport  # as ``lineage verify`` stored it, typed

    @property
    def findings(self) -> list[VerifyFinding]:
        """The findings ``lineage verify`` stored, with their details."""
        return list(self.report.findings)

    @property
    def data(self) -> dict[str, Any]:
        """The stored report's JSON contract (``VerifyReport.to_dict()``)."""
        return self.report.to_dict()


@dataclass(frozen=True)
class Snapshot:
    """A digest of the registry rows the brief rests on (the manifest quotes it)."""

    digest: str
    rows: int
    newest: datetime | None
    environments: list[str]


@dataclass(frozen=True)
class BriefInputs:
    """The registry content one brief shows, read once; the sections read only this."""

    subject: str
    model: Model
    head: Revision | None
    graph: nx.DiGraph  # the recorded lineage around the subject
    ancestors: Mapping[str, int]  # ancestor -> generations above the subject
    record: AuditRecord | None  # the newest audit of the head revision (its row)
    document: AuditDocument | None  # that audit's report, typed; None when never audited
    members: Sequence[str]  # the subject and the models the audit compared it with
    runs: Mapping[str, Mapping[str, RunInputs]]  # repo -> suite -> the run compared
    stored_findings: Mapping[str, list[Finding]]  # the subject first, then its ancestors
    verifications: Mapping[str, Verification]
    bom_graph: nx.DiGraph  # the lineage with the audit's results attached
    snapshot: Snapshot
    # The newest finished merge-back sweep with the subject as the fine-tune, if any.
    remediation: RemediationDocument | None = None


def load_brief_inputs(registry: Registry, repo_id: str) -> BriefInputs:
    """Read what the brief of ``repo_id`` shows; raise if it is not in the registry."""
    with registry.session(write=False) as session:
        model = session.exec(select(Model).where(Model.repo_id == repo_id)).first()
        if model is None:
            raise InvalidReferenceError(
                "not in the registry; run `lineage crawl` on it first", repo_id=repo_id
            )
        head = session.get(Revision, model.head_revision_id) if model.head_revision_id else None
        graph = lineage_graph(session, repo_id)
        ancestors = dict(queries.ancestors(session, repo_id))
        record = _audit_record(session, repo_id, head.sha if head else None)
        document = audit_document(record) if record else None
        members = _members(document, repo_id, ancestors) if document else []
        runs = _runs(session, record, members) if record else {}
        stored_findings = {
            node: findings_for(session, node) for node in [repo_id, *sorted(ancestors)]
        }
        verifications = _stored_verifications(
            session, verification_candidates(repo_id, graph, ancestors)
        )
        bom_graph = attach_audit(graph.copy(), session, repo_id)
        remediation = _remediation(session, repo_id, head)
        snapshot = _snapshot(session, sorted(graph.nodes), record, runs, verifications, remediation)
    return BriefInputs(
        subject=repo_id,
        model=model,
        head=head,
        graph=graph,
        ancestors=ancestors,
        record=record,
        document=document,
        members=members,
        runs=runs,
        stored_findings=stored_findings,
        verifications=verifications,
        bom_graph=bom_graph,
        snapshot=snapshot,
        remediation=remediation,
    )


def _remediation(
    session: Session, repo_id: str, head: Revision | None
) -> RemediationDocument | None:
    """The newest finished sweep of ``repo_id`` as the fine-tune; else, when ``repo_id`` is a
    linear merge of two models, the sweep of that pair that recommended its weights (the
    published model of ``lineage remediate``)."""
    found = latest_remediation(session, repo_id, status="done")
    if found is not None:
        return found[1]
    recipe = head.mergekit if head is not None else None
    if not recipe or recipe.get("merge_method") != "linear":
        return None
    weights = {
        entry.get("reference"): (entry.get("parameters") or {}).get("weight")
        for entry in recipe.get("models") or []
        if isinstance(entry, Mapping)
    }
    if len(weights) != 2:
        return None
    for aligned, finetune in permutations(weights, 2):
        found = latest_remediation(session, str(finetune), str(aligned), status="done")
        document = found[1] if found is not None else None
        weight = weights[finetune]
        if (
            document is not None
            and document.recommended is not None
            and isinstance(weight, int | float)
            and math.isclose(float(weight), document.recommended.lam, abs_tol=1e-6)
        ):
            return document
    return None


def audit_suites(document: AuditDocument) -> list[SuiteDoc]:
    """The suites an audit ran, as its report lists them."""
    return list(document.options.suites)


# -- the audit ---------------------------------------------------------------------------------


def _audit_record(session: Session, repo_id: str, sha: str | None) -> AuditRecord | None:
    """The newest audit of the head revision: its own, else one that audited it as a
    descendant subject (``lineage audit BASE --descendants`` records under BASE)."""
    record = latest_audit(session, repo_id)
    if record is not None or sha is None:
        return record
    return queries.audit_with_subject(session, repo_id, sha)


def _members(document: AuditDocument, subject: str, ancestors: Mapping[str, int]) -> list[str]:
    """The subject, the parents it was compared with, and its merge's base (if evaluated)."""
    parents = [c.against for c in document.comparisons if c.model == subject]
    models = document.models
    bases = sorted(
        repo for repo, entry in models.items() if entry.role == "base" and repo in ancestors
    )
    return [m for m in dict.fromkeys([subject, *parents, *bases]) if m in models]


def _runs(
    session: Session, record: AuditRecord, members: Sequence[str]
) -> dict[str, dict[str, RunInputs]]:
    """repo -> suite -> the very run the audit compared (``AuditRecord.runs``)."""
    runs: dict[str, dict[str, RunInputs]] = {}
    for repo in members:
        for suite, run_id in sorted((record.runs.get(repo) or {}).items()):
            row = session.get(EvaluationRun, int(run_id))
            if row is not None:
                runs.setdefault(repo, {})[suite] = RunInputs(
                    row, samples_of_run(session, int(run_id))
                )
    return runs


# -- verification ------------------------------------------------------------------------------


def verification_candidates(
    subject: str, graph: nx.DiGraph, ancestors: Mapping[str, int]
) -> list[str]:
    """The models whose ``lineage verify`` the brief shows: the subject and its crawled
    ancestors that declare a parent, nearest first, at most ``MAX_VERIFIED_MODELS``."""
    candidates = [subject, *sorted(ancestors, key=lambda r: (ancestors[r], r))]
    shown = []
    for repo in candidates[:MAX_VERIFIED_MODELS]:
        node = graph.nodes.get(repo) or {}
        declared = any(data.get("declared", True) for _, _, data in graph.in_edges(repo, data=True))
        if node.get("status") == "ok" and declared:
            shown.append(repo)
    return shown


def _stored_verifications(session: Session, repos: Sequence[str]) -> dict[str, Verification]:
    """The report ``lineage verify`` stored for each model's head revision. A model never
    verified at its head has none: the brief shows its stored findings instead (run
    ``lineage verify``, or let ``lineage audit`` / ``lineage brief`` do it, first)."""
    verified: dict[str, Verification] = {}
    for repo in repos:
        report = latest_verification(session, repo)
        if report is not None:
            verified[repo] = Verification(repo, report)
    return verified


# -- snapshot ----------------------------------------------------------------------------------


def _snapshot(
    session: Session,
    nodes: Sequence[str],
    record: AuditRecord | None,
    runs: Mapping[str, Mapping[str, RunInputs]],
    verifications: Mapping[str, Verification],
    remediation: RemediationDocument | None = None,
) -> Snapshot:
    """A sha256 over canonical JSON of every registry row the brief rests on.

    The lineage graph's models with their head revisions, edges, findings and fingerprints;
    the fingerprints of every other model of the same architecture (verification searches
    them for undeclared parents); the stored verify reports shown; the audit record with its
    runs and samples. Row ids and the verification rows' timestamps are left out: they
    depend on insertion order and on when verify ran, not on content.
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
    if verifications:
        tables["verifications"] = [
            {"repo": repo, "report": verifications[repo].data} for repo in sorted(verifications)
        ]
    if remediation is not None:  # only then: a brief without one keeps its digest
        tables["remediation"] = [remediation.to_json()]
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
    return Snapshot(
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
        moment = as_moment(value)
        assert moment is not None
        moments.append(moment)
        return moment.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    return str(value)
