"""Section 8, the appendix: how to reproduce the brief, what it rests on, and the mapping to
the EU AI Act and the NIST AI RMF."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from lineage import __version__
from lineage.documents.audit import AuditDocument
from lineage.report.inputs import BriefInputs, Snapshot, audit_suites
from lineage.report.views import Fact, ManifestInfo, MappingRow
from lineage.thresholds import DEFAULT_DELTA
from registry.tables import AuditRecord, Revision


def build_manifest(inputs: BriefInputs) -> ManifestInfo:
    """The commands that reproduce the brief, the versions and revisions, the snapshot."""
    return _manifest(
        inputs.subject,
        inputs.record,
        inputs.document,
        inputs.members,
        inputs.snapshot,
        inputs.head,
    )


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


def _manifest(
    subject: str,
    record: AuditRecord | None,
    document: AuditDocument | None,
    members: Sequence[str],
    snapshot: Snapshot,
    head: Revision | None,
) -> ManifestInfo:
    quoted = shlex.quote(subject)
    commands = [f"lineage crawl {quoted}", f"lineage verify {quoted}"]
    versions = [Fact("lineage-audit (this brief)", __version__)]
    revisions = [Fact(subject, head.sha if head else "none recorded")]
    suites: list[Fact] = []
    if record is not None and document is not None:
        options = document.options
        audited = record.repo_id
        arguments = [f"lineage audit {shlex.quote(audited)}"]
        for suite in audit_suites(document):
            source = str(suite.source or suite.name)
            spec = source.removeprefix("builtin:") if source.startswith("builtin:") else source
            arguments.append(f"--suite {shlex.quote(spec)}")
            suites.append(Fact(str(suite.name), suite.hash or ""))
        judge = (document.judge.id if document.judge is not None else None) or record.judge_id
        arguments.append(f"--judge {shlex.quote(str(judge))}")
        generation = options.generation
        if generation.max_new_tokens:
            arguments.append(f"--max-new-tokens {generation.max_new_tokens}")
        if generation.system_prompt:
            arguments.append(f"--system-prompt {shlex.quote(generation.system_prompt)}")
        if generation.dtype and generation.dtype != "auto":
            arguments.append(f"--dtype {shlex.quote(generation.dtype)}")
        if options.delta != DEFAULT_DELTA:
            arguments.append(f"--delta {options.delta:g}")
        if options.descendants:
            arguments.append("--descendants")
        commands.append(" \\\n    ".join(arguments))
        versions.append(Fact("Audit judge", f"{record.judge_id} version {record.judge_version}"))
        models = document.models
        revisions = [
            Fact(repo, str((models[repo].revision if repo in models else None) or ""))
            for repo in members
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
