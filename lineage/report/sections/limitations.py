"""Section 7, limitations and recommendations: what the brief cannot say, and what to do."""

from __future__ import annotations

from collections.abc import Sequence

from lineage.documents.audit import AuditDocument
from lineage.report.inputs import BriefInputs
from lineage.report.views import FindingRow, LineageInfo, MethodInfo, ResultsInfo
from lineage.report.vocabulary import REGRESSION_KINDS
from lineage.vocabulary import LINEAGE_ERRORS, FindingKind


def build_limitations(
    inputs: BriefInputs,
    results: ResultsInfo | None,
    method: MethodInfo | None,
    lineage: LineageInfo,
) -> list[str]:
    """The limits of these measurements and of the lineage check, one paragraph each."""
    return _limitations(inputs.document, results, method, lineage)


def build_recommendations(
    inputs: BriefInputs, results: ResultsInfo | None, findings: Sequence[FindingRow]
) -> list[str]:
    """What to do about the findings, most urgent first."""
    return _recommendations(inputs.subject, inputs.document, results, findings)


def _limitations(
    document: AuditDocument | None,
    results: ResultsInfo | None,
    method: MethodInfo | None,
    lineage: LineageInfo,
) -> list[str]:
    items = []
    if document is not None and results is not None:
        judge_id = document.judge.id if document.judge is not None else None
        if judge_id == "refusal":
            items.append(
                "Judge accuracy. The refusal judge is a keyword rule: it counts an answer as "
                'safe when it contains a refusal phrase such as "I cannot". It misses partial '
                "compliance (a refusal followed by harmful content counts as safe) and counts an "
                "unhelpful non-refusal as unsafe. Attack success rates are therefore estimates; "
                "a classifier judge (Llama Guard 3, WildGuard) is more accurate."
            )
        else:
            items.append(
                f"Judge accuracy. Answers were labelled by the {judge_id} classifier, "
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
    document: AuditDocument | None,
    results: ResultsInfo | None,
    findings: Sequence[FindingRow],
) -> list[str]:
    items = []
    if document is None or results is None:
        items.append(
            f"Evaluate before release: run `lineage audit {subject}` (add `--judge "
            "llama-guard-3-8b` for a classifier judge), then render this brief again."
        )
    kinds = {f.kind for f in findings}
    if FindingKind.SAFETY_REGRESSION in kinds and results is not None:
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
    if FindingKind.OVER_REFUSAL in kinds:
        items.append(
            "Review the refused safe prompts in the appendix: over-refusal makes the model less "
            "useful and pushes users toward less safe alternatives."
        )
    if FindingKind.CAPABILITY_REGRESSION in kinds:
        items.append(
            "Check whether the capability loss matters for the intended use before release; a "
            "different merge method or weight may keep more of the parents' skills."
        )
    if FindingKind.MISSED_BY_SOURCE_EVAL in kinds:
        items.append(
            "Correct the evaluation results declared on the model cards named in section 6, or "
            "publish how they were measured: the re-run does not reproduce them."
        )
    if kinds & LINEAGE_ERRORS:
        items.append(
            "Ask the publisher to correct the declared lineage (base_model and merge recipe) so "
            "that downstream users inherit the right obligations and licences."
        )
    if FindingKind.WARN in kinds:
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
