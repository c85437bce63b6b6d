"""The main job as one function: crawl if unknown → verify → audit → write files → brief.

``lineage audit`` and ``lineage demo`` both call ``run_audit_job``; so can any Python
caller, with no CLI in between. It decides nothing the stages do not: the crawler, the
verifier, the auditor and the brief writer keep their own rules. Progress is reported
through a callback (one line per step; the CLI prints it with Rich, a library caller may
log it or ignore it).

The heavy stage (``audit``: torch, transformers) is imported when the job runs, so that
importing this module, or the CLI that names it, stays quick.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.crawler import CrawlOptions, CrawlReport, crawl
from lineage.errors import EXIT_OK, EXIT_PROBLEMS, LineageError
from lineage.sources.base import Source
from lineage.verify import verify
from registry import queries
from registry.database import Registry

if TYPE_CHECKING:
    from audit.auditor import AuditOptions, AuditReport
    from audit.executors import Executor
    from audit.generation import GenerationSettings
    from audit.judges.base import Judge
    from audit.records import Suite
    from lineage.documents.verify import VerifyReport

Progress = Callable[[str], None]


def _silent(message: str) -> None:
    """The default progress callback: says nothing."""


@dataclass(frozen=True)
class AuditJob:
    """What to audit, how, and which files to write.

    ``verify_repos`` defaults to the audited repo; the demo audits a family from its aligned
    root and verifies (and writes the brief of) one merge in it.
    """

    repo_id: str
    source: Source
    suites: Sequence[Suite]
    judge: Judge
    settings: GenerationSettings
    options: AuditOptions
    crawl_options: CrawlOptions = field(default_factory=CrawlOptions)
    crawl_roots: Sequence[str] | None = None  # where an unknown repo's crawl starts; default: it
    recrawl: bool = False  # crawl even a known repo (the demo rebuilds its models each run)
    verify_repos: Sequence[str] | None = None
    out: Path | None = None  # audit.json and the per-sample logs go here
    briefs: Sequence[Path] = ()  # .html and/or .pdf
    brief_subject: str | None = None  # default: repo_id
    executor: Executor | None = None  # where evaluations run (audit.executors); None: here


@dataclass
class AuditOutcome:
    """What the job did: each stage's report and the files it wrote."""

    crawl: CrawlReport | None  # None when the registry already knew the repo
    verifications: dict[str, VerifyReport]
    audit: AuditReport
    files: list[Path] = field(default_factory=list)  # audit.json and sample logs
    briefs: list[Path] = field(default_factory=list)
    # A brief that could not be written: (its path, the one-line reason). The audit stands.
    brief_errors: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every step was done and every verdict earned; 1 otherwise."""
        crawled_ok = self.crawl is None or self.crawl.ok
        done = crawled_ok and not self.audit.incomplete and not self.brief_errors
        return EXIT_OK if done else EXIT_PROBLEMS


def run_audit_job(
    registry: Registry,
    job: AuditJob,
    *,
    progress: Progress = _silent,
    detail: Progress = _silent,
) -> AuditOutcome:
    """Run the main job; raise the stages' typed errors (LineageError, AuditError, ...).

    ``progress`` hears one line per stage; ``detail`` the audit's steps within a stage
    (loading a model, generating on a suite, judging), many lines per model.
    """
    from audit.auditor import audit
    from audit.sample_logs import write_sample_logs

    crawled = crawl_if_unknown(
        registry,
        job.source,
        job.repo_id,
        job.crawl_options,
        roots=job.crawl_roots,
        only_if_unknown=not job.recrawl,
    )
    if crawled is not None:
        progress(f"crawled {len(crawled.nodes)} repos with weight fingerprints")
    # The brief's lineage section and the findings need the verification.
    verifications = {}
    for repo_id in job.verify_repos or (job.repo_id,):
        verifications[repo_id] = verify(registry, repo_id)
        progress(_verified(repo_id, verifications[repo_id]))
    progress(
        f"auditing {job.repo_id}" + (" and every descendant" if job.options.descendants else "")
    )
    report = audit(
        registry,
        job.source,
        job.repo_id,
        job.suites,
        job.judge,
        job.settings,
        job.options,
        progress=detail,
        executor=job.executor,
    )
    outcome = AuditOutcome(crawl=crawled, verifications=verifications, audit=report)
    if job.out is not None:
        job.out.mkdir(parents=True, exist_ok=True)
        audit_json = job.out / "audit.json"
        audit_json.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
        outcome.files = [audit_json, *write_sample_logs(report, job.out / "samples")]
    _write_briefs(registry, job, outcome, progress)
    return outcome


def _verified(repo_id: str, report: VerifyReport) -> str:
    """One line on what verify found: the merge recipe it recovered, if any."""
    merge = report.to_dict().get("merge") or {}
    if not merge:
        return f"verified {repo_id}"
    weights = ", ".join(f"{k} {v:.2f}" for k, v in (merge.get("coefficients") or {}).items())
    return f"verified {repo_id}: {merge.get('method')} merge; weights recovered: {weights}"


def _write_briefs(
    registry: Registry, job: AuditJob, outcome: AuditOutcome, progress: Progress
) -> None:
    """Each brief asked for; one that cannot be written (no WeasyPrint for a PDF, a folder
    that is not writable) is recorded in the outcome, and the others are still written."""
    if not job.briefs:
        return
    from lineage.report.brief import write_brief

    subject = job.brief_subject or job.repo_id
    verify_brief_models(registry, subject, progress=progress)
    for path in job.briefs:
        try:
            outcome.briefs.append(write_brief(registry, subject, path))
        except LineageError as error:
            outcome.brief_errors.append((path, str(error)))
            continue
        progress(f"wrote {path}")


def verify_brief_models(
    registry: Registry, subject: str, *, progress: Progress = _silent
) -> dict[str, VerifyReport]:
    """Run ``lineage verify`` (and store its report) on each model the brief of ``subject``
    shows a verification of, where none is stored for its head revision yet.

    The brief only reads stored reports; this is the step before it. A model that cannot
    be verified (no readable weights) is left out, and the brief shows its stored findings.
    """
    from lineage.graph import lineage_graph
    from lineage.report.inputs import verification_candidates
    from registry.verifications import latest_verification

    with registry.session(write=False) as session:
        if queries.get_model(session, subject) is None:
            return {}  # the brief says it is not in the registry
        graph = lineage_graph(session, subject)
        ancestors = dict(queries.ancestors(session, subject))
        candidates = verification_candidates(subject, graph, ancestors)
        missing = [repo for repo in candidates if latest_verification(session, repo) is None]
    verified = {}
    for repo in missing:
        try:
            verified[repo] = verify(registry, repo)
        except LineageError:
            continue
        progress(_verified(repo, verified[repo]))
    return verified


def crawl_if_unknown(
    registry: Registry,
    source: Source,
    repo_id: str,
    options: CrawlOptions,
    *,
    roots: Sequence[str] | None = None,
    only_if_unknown: bool = True,
) -> CrawlReport | None:
    """Crawl from ``roots`` (default: ``repo_id``) when the registry has never seen
    ``repo_id``; the crawl's report, or None when it was known. ``only_if_unknown=False`` crawls
    whatever the registry holds."""
    if only_if_unknown:
        with registry.session() as session:
            if queries.get_model(session, repo_id) is not None:
                return None
    return crawl(registry, source, list(roots or (repo_id,)), options)
