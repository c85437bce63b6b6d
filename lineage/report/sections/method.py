"""Section 4, evaluation method: suites, judge, decoding, statistics, environments, templates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lineage.documents.audit import AuditDocument
from lineage.report.filters import clip, moment_text
from lineage.report.inputs import BriefInputs, RunInputs, audit_suites
from lineage.report.views import Fact, MethodInfo, SuiteRow
from lineage.report.vocabulary import KIND_LABELS
from registry.tables import AuditRecord


def build_method(inputs: BriefInputs) -> MethodInfo | None:
    """How the audit measured; None if the model was never audited."""
    record, document = inputs.record, inputs.document
    if record is None or document is None:
        return None
    return _method(record, document, inputs.members, inputs.runs)


def _method(
    record: AuditRecord,
    document: AuditDocument,
    members: Sequence[str],
    runs: Mapping[str, Mapping[str, RunInputs]],
) -> MethodInfo:
    options = document.options
    suites = [
        SuiteRow(
            name=str(s.name),
            kind=str(s.kind),
            kind_label=KIND_LABELS.get(str(s.kind), str(s.kind)),
            size=s.size or 0,
            source=clip(s.source, 160),
            hash=s.hash or "",
        )
        for s in audit_suites(document)
    ]
    judge = document.judge
    judge_id, judge_version = (judge.id, judge.version) if judge is not None else (None, None)
    all_runs = [run.row for repo in members for run in (runs.get(repo) or {}).values()]
    judge_models = sorted({run.judge_model for run in all_runs if run.judge_model})
    judge_facts = [
        Fact("Judge", f"{judge_id} version {judge_version}", _judge_note(judge_id)),
    ]
    if judge_models:
        judge_facts.append(Fact("Judge model", ", ".join(judge_models)))
    generation = next((run.generation for run in all_runs if run.generation), {})
    settings = options.generation
    system_prompt = generation.get("system_prompt", settings.system_prompt)
    decoding = [
        Fact(
            "Decoding",
            str(generation.get("decoding") or "greedy"),
            "the most likely token at every step: no sampling, the same answer every run",
        ),
        Fact(
            "Answer length",
            f"up to {generation.get('max_new_tokens', settings.max_new_tokens)} tokens",
        ),
        Fact("System prompt", clip(system_prompt, 200) if system_prompt else "none"),
        Fact("Weights precision", str(generation.get("dtype") or settings.dtype or "auto")),
    ]
    statistics = [
        Fact(
            "Threshold δ",
            f"{options.delta * 100:.1f} points",
            "the smallest increase that counts as a regression",
        ),
        Fact(
            "Significance level α",
            f"{options.alpha:g}",
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
            f"paired bootstrap over prompts, {options.bootstrap_resamples:,} "
            f"resamples, seed {options.seed}",
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
        environments.append(Fact(", ".join(repos), clip(text)))
    models = document.models
    templates = [
        Fact(repo, _template_text(models[repo].chat_template if repo in models else None))
        for repo in members
    ]
    return MethodInfo(
        audited_at=moment_text(record.created_at),
        suites=suites,
        judge=f"{judge_id}@{judge_version}",
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
    return clip(f"{software} on {where}{batch}")


def _judge_note(judge_id: str | None) -> str:
    if judge_id == "refusal":
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
    return clip(source, 160)
