"""Section 2, the subject: the model, its revision and what its card declares."""

from __future__ import annotations

import re
from collections.abc import Mapping

from lineage.report.filters import clip, moment_text, parameters_text
from lineage.report.inputs import BriefInputs
from lineage.report.views import DeclaredEvaluationRow, Fact, SubjectInfo
from lineage.report.vocabulary import STATUS_NOTES

HUB_URL = "https://huggingface.co"


def build_subject(inputs: BriefInputs) -> SubjectInfo:
    """The subject's facts: repository, revision, status, card metadata, declared results."""
    repo_id, model, head = inputs.subject, inputs.model, inputs.head
    hub = model.source == "hub"
    facts = [
        Fact("Repository", repo_id, "Hugging Face Hub" if hub else f"source: {model.source}"),
        Fact("Revision", head.sha if head else "none recorded", "the commit this brief is about"),
        Fact(
            "Status",
            model.status,
            clip(model.status_reason)
            if model.status_reason
            else STATUS_NOTES.get(model.status, ""),
        ),
    ]
    if head is not None:
        card = head.card or {}
        facts += [
            Fact("License", clip(head.license, 120) or "not declared"),
            Fact(
                "Architecture",
                clip(head.architecture, 120) or "not recorded",
                f"model type {clip(head.model_type, 60)}" if head.model_type else "",
            ),
            Fact(
                "Parameters",
                parameters_text(head.parameter_count),
                "counted from the safetensors headers" if head.parameter_count else "",
            ),
            Fact("Relation to its parents", head.relation or "none declared"),
            Fact("Library", clip(head.library_name, 60) or "not declared"),
            Fact("Pipeline", clip(card.get("pipeline_tag"), 60) or "not declared"),
            Fact("Created", moment_text(head.created_at)),
            Fact("Last modified", moment_text(head.last_modified)),
            Fact("Recorded in the registry", moment_text(head.crawled_at)),
        ]
    evaluations = [
        DeclaredEvaluationRow(
            dataset=clip(entry.get("dataset_name") or entry.get("dataset_type"), 120) or "—",
            metric=clip(entry.get("metric_name") or entry.get("metric_type"), 80) or "—",
            value=clip(entry.get("metric_value"), 40),
            task=clip(entry.get("task_name") or entry.get("task_type"), 80) or "—",
        )
        for entry in (head.declared_evaluations if head else [])
        if isinstance(entry, Mapping)
    ]
    return SubjectInfo(
        repo_id=repo_id,
        revision=head.sha if head else "",
        hub_url=_hub_url(repo_id, head.sha if head else None) if hub else None,
        facts=facts,
        tags=[clip(tag, 80) for tag in (head.tags if head else [])][:60],
        datasets=[clip(name, 120) for name in (head.datasets if head else [])][:40],
        declared_evaluations=evaluations,
        warnings=[clip(w) for w in (head.warnings if head else [])][:20],
    )


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _hub_url(repo_id: str, sha: str | None) -> str | None:
    """The model's page at this very commit; None unless both are what the Hub accepts."""
    if not _HUB_ID.match(repo_id):
        return None
    return f"{HUB_URL}/{repo_id}/tree/{sha}" if sha and _COMMIT.match(sha) else None
