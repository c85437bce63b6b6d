"""``lineage audit``: evaluate a model and its parents identically, decide what regressed.

    plan (registry graph) -> evaluate every node on every suite (cached) ->
    paired comparisons child vs each parent -> Holm per child and finding family ->
    findings in the registry -> AuditReport (the JSON contract and the CLI table)

Finding families and the event each counts:
    safety        harmful suites     unsafe answers (ASR)        -> safety_regression
    over_refusal  benign suites      refusals of safe prompts    -> over_refusal
    capability    capability suites  wrong answers               -> capability_regression
A family's increase above delta without significance is a ``warn``; a card's declared
result outside the measured interval is ``missed_by_source_eval``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from audit.backends import AUTO, choose_backend
from audit.errors import ModelLoadError
from audit.executors import EvaluationContext, EvaluationTask, Executor
from audit.generation import GenerationSettings
from audit.judges.base import Judge
from audit.plan import AuditPlan, build_plan
from audit.records import Suite
from audit.runner import EvaluatedRun, NodeEvaluator
from audit.source_evals import check_declared
from audit.statistics import (
    Decision,
    PairedComparison,
    compare,
    decide,
    failures_as_events,
)
from audit.suites.identity import distinct_suites
from lineage.documents.audit import AUDIT_FORMAT_VERSION, AuditDocument, FindingDoc
from lineage.sources.base import Source
from lineage.thresholds import DEFAULT_ALPHA, DEFAULT_DELTA
from lineage.vocabulary import (
    REGRESSION_KINDS,
    SOURCE_EVAL_FAMILY,
    SUITE_KINDS,
    FindingKind,
    Severity,
    Stage,
    SuiteKind,
)
from registry.database import Registry
from registry.evaluations import save_audit
from registry.findings import replace_findings
from registry.snapshots import recorded_revision

STAGE = Stage.AUDIT
SOURCE_EVAL_STAGE = Stage.SOURCE_EVAL


@dataclass(frozen=True)
class AuditOptions:
    delta: float = DEFAULT_DELTA  # smallest increase that matters (2 points)
    alpha: float = DEFAULT_ALPHA
    descendants: bool = False
    bootstrap_resamples: int = 10_000
    seed: int = 0


@dataclass
class ComparisonResult:
    child: str
    parent: str
    suite: Suite
    comparison: PairedComparison
    decision: Decision
    sensitivity_outcome: str | None = None  # with unparseable judge outputs counted bad

    def to_json(self) -> dict[str, Any]:
        c, d = self.comparison, self.decision
        return {
            "model": self.child,
            "against": self.parent,
            "suite": self.suite.name,
            "suite_hash": self.suite.content_hash,
            "kind": self.suite.kind,
            "n": c.n,
            "child_rate": c.child_rate,
            "parent_rate": c.parent_rate,
            "child_ci": list(c.child_ci),
            "parent_ci": list(c.parent_ci),
            "delta": c.delta,
            "ci": list(c.delta_ci),
            "b": c.b,
            "c": c.c,
            "test": c.method,
            "p_value": c.p_value,
            "adjusted_p": d.adjusted_p,
            "outcome": d.outcome,
            "mdd": d.mdd,
            "detail": d.reason,
            "sensitivity_outcome": self.sensitivity_outcome,
        }


@dataclass
class AuditReport:
    repo: str
    plan: AuditPlan
    runs: dict[str, dict[str, EvaluatedRun]]  # repo -> suite name -> run
    comparisons: list[ComparisonResult]
    findings: list[FindingDoc]  # each with its comparison's numbers as extra fields
    judge: str
    judge_version: str
    options: dict[str, Any] = field(default_factory=dict)

    def model_summary(self, repo: str) -> dict[str, Any]:
        runs = self.runs.get(repo, {})
        node = self.plan.nodes[repo]
        summary: dict[str, Any] = {"revision": node.sha, "role": self.plan.roles[repo]}
        first = {
            kind: next((r for r in runs.values() if r.suite.kind == kind), None)
            for kind in SuiteKind
        }
        harmful, benign, capability = (
            first[SuiteKind.HARMFUL],
            first[SuiteKind.BENIGN],
            first[SuiteKind.CAPABILITY],
        )
        if harmful is not None:
            summary.update(
                asr=round(harmful.rate, 6),
                ci=[round(v, 6) for v in harmful.ci],
                n=harmful.n,
                degenerate=harmful.degenerate,
                judge_parse_failures=harmful.parse_failures,
                asr_if_unparsed_unsafe=round(harmful.rate_if_unparsed_are_events, 6),
            )
        if benign is not None:
            summary["over_refusal"] = round(benign.rate, 6)
            summary["over_refusal_ci"] = [round(v, 6) for v in benign.ci]
        if capability is not None:
            summary["capability"] = round(1 - capability.rate, 6)
            low, high = capability.ci
            summary["capability_ci"] = [round(1 - high, 6), round(1 - low, 6)]
        generation = next(iter(runs.values())).generation if runs else {}
        summary["chat_template"] = generation.get("template_source")
        summary["suites"] = {
            name: {
                "kind": run.suite.kind,
                "suite_hash": run.suite.content_hash,
                "n": run.n,
                "events": run.event_count,
                "rate": round(run.rate, 6),
                "ci": [round(v, 6) for v in run.ci],
                "degenerate": run.degenerate,
                "judge_parse_failures": run.parse_failures,
                "by_category": run.by_category(),
                "run_id": run.run_id,
                "reused": run.reused or None,
            }
            for name, run in runs.items()
        }
        return summary

    def to_json(self) -> dict[str, Any]:
        """The JSON contract (``lineage.documents.AuditDocument``): fields are added, never
        renamed."""
        return {
            "format_version": AUDIT_FORMAT_VERSION,
            "repo": self.repo,
            "models": {repo: self.model_summary(repo) for repo in self.plan.evaluation_order},
            "findings": [finding.details for finding in self.findings],
            "comparisons": [result.to_json() for result in self.comparisons],
            "judge": {"id": self.judge, "version": self.judge_version},
            "options": dict(self.options),
            "skipped": list(self.plan.skipped),
            "incomplete": {
                subject: {"declared": self.plan.declared.get(subject, 0), "not_evaluated": lines}
                for subject, lines in self.plan.not_evaluated.items()
            },
            "verdict": self.verdict(self.repo),
        }

    def to_document(self) -> AuditDocument:
        """The report as the typed document the registry stores and the readers load."""
        return AuditDocument.from_json(self.to_json())

    def verdict(self, subject: str) -> str:
        """``regression``, ``incomplete: N of M parents not evaluated`` or ``no regression``.

        A regression against a parent that was evaluated is earned; "no regression" is only
        earned when every declared parent (and the base) was evaluated.
        """
        if any(f.model == subject for f in self.regressions):
            return "regression"
        missing = self.plan.not_evaluated.get(subject)
        if missing:
            declared = max(self.plan.declared.get(subject, 0), len(missing))
            return f"incomplete: {len(missing)} of {declared} parents not evaluated"
        return "no regression"

    @property
    def incomplete(self) -> dict[str, list[str]]:
        """Subjects whose declared parents were not all evaluated, with the reasons."""
        return dict(self.plan.not_evaluated)

    def run_ids(self, members: list[str] | None = None) -> dict[str, dict[str, int]]:
        return {
            repo: {name: run.run_id for name, run in runs.items()}
            for repo, runs in self.runs.items()
            if members is None or repo in members
        }

    def subject_json(self, subject: str) -> dict[str, Any]:
        """The contract restricted to one subject: itself, its parents and base, and the
        comparisons and findings about them (what a brief of that subject shows)."""
        members = self.plan.members(subject)
        data = self.to_json()
        data["repo"] = subject
        data["verdict"] = self.verdict(subject)
        data["incomplete"] = {s: v for s, v in data["incomplete"].items() if s == subject}
        data["models"] = {repo: data["models"][repo] for repo in members}
        data["comparisons"] = [c for c in data["comparisons"] if c["model"] == subject]
        data["findings"] = [
            f
            for f in data["findings"]
            if f["model"] == subject
            or (f["kind"] == FindingKind.MISSED_BY_SOURCE_EVAL and f["model"] in members)
        ]
        return data

    @property
    def regressions(self) -> list[FindingDoc]:
        return [f for f in self.findings if f.kind in REGRESSION_KINDS]


def audit(
    registry: Registry,
    source: Source,
    repo_id: str,
    suites: Sequence[Suite],
    judge: Judge,
    settings: GenerationSettings,
    options: AuditOptions = AuditOptions(),
    *,
    progress: Callable[[str], None] = lambda message: None,
    executor: Executor | None = None,
) -> AuditReport:
    """Evaluate ``repo_id`` (and descendants on request) and its parents; record findings.

    Each suite is its content hash under a name of its own (``distinct_suites``): two files
    of one format, or a user file named like a built-in suite, stay apart. With an
    ``executor`` the evaluations missing from the registry are planned first and run there
    (``audit.executors``); the decisions are then made here from the recorded runs.
    """
    suites = distinct_suites(suites)
    with registry.session(write=False) as session:
        plan = build_plan(session, repo_id, descendants=options.descendants)
    evaluator = NodeEvaluator(registry, source, settings, judge, progress)
    settings = evaluator.settings = _settled_backend(evaluator, plan, progress)
    failed: dict[str, str] = {}
    if executor is not None:
        tasks = _missing_evaluations(evaluator, plan, suites)
        context = EvaluationContext(registry.connection_url(), source, settings, judge.info.id)
        failed = executor.run(tasks, context, progress=progress)
    runs: dict[str, dict[str, EvaluatedRun]] = {}
    for repo in plan.evaluation_order:
        try:
            if repo in failed:  # reported by the executor, after its retry
                raise ModelLoadError(failed[repo], subject=repo)
            runs[repo] = evaluator.evaluate(plan.nodes[repo], suites)
        except ModelLoadError as error:
            if plan.roles[repo] == "subject":
                raise
            # A gated or vanished parent must not void the comparisons with the others.
            plan.drop(repo, error.reason)

    comparisons = _compare_all(plan, runs, suites, options)
    findings = [_regression_finding(result) for result in comparisons]
    findings = [finding for finding in findings if finding is not None]
    source_findings = _source_eval_findings(plan, runs)
    report = AuditReport(
        repo_id,
        plan,
        runs,
        comparisons,
        findings + source_findings,
        judge.info.id,
        judge.info.version,
        options={
            "delta": options.delta,
            "alpha": options.alpha,
            "descendants": options.descendants,
            "bootstrap_resamples": options.bootstrap_resamples,
            "seed": options.seed,
            "suites": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "hash": s.content_hash,
                    "size": len(s),
                    "source": s.source,
                    "left_out": dict(s.left_out),
                }
                for s in suites
            ],
            "generation": {
                "max_new_tokens": settings.max_new_tokens,
                "system_prompt": settings.system_prompt,
                "batch_size": settings.batch_size,
                "device": settings.device,
                "dtype": settings.dtype,
                "backend": settings.backend,
            },
        },
    )
    _record_findings(registry, report)
    # One record per subject: a brief of any audited descendant finds its own audit.
    with registry.session() as session:
        for subject in plan.subjects:
            save_audit(
                session,
                plan.nodes[subject].revision_id,
                subject,
                judge_id=judge.info.id,
                judge_version=judge.info.version,
                options=report.options,
                runs=report.run_ids(plan.members(subject)),
                report=report.subject_json(subject),
            )
    return report


# -- statistics -------------------------------------------------------------------------------


def _settled_backend(
    evaluator: NodeEvaluator, plan: AuditPlan, progress: Callable[[str], None]
) -> GenerationSettings:
    """The settings with ``--backend auto`` decided once for every model of the plan (from
    their config.json files, no weights): a child and its parents run on one backend."""
    settings = evaluator.settings
    if settings.backend != AUTO:
        return settings
    folders = []
    for repo in plan.evaluation_order:
        try:
            folders.append(evaluator.config_folder(plan.nodes[repo]))
        except ModelLoadError:
            continue  # an unreadable model is reported when it is evaluated
    chosen = choose_backend(AUTO, folders)
    progress(f"generation backend: {chosen} (auto, for all {len(folders)} models)")
    return replace(settings, backend=chosen)


def _missing_evaluations(
    evaluator: NodeEvaluator, plan: AuditPlan, suites: Sequence[Suite]
) -> list[EvaluationTask]:
    """One task per model with suites not yet in the registry, in evaluation order. A model
    whose tokenizer cannot be read is left to ``evaluate``, which reports it as it always has."""
    tasks = []
    for repo in plan.evaluation_order:
        try:
            missing = evaluator.missing(plan.nodes[repo], suites)
        except ModelLoadError:
            continue
        if missing:
            tasks.append(EvaluationTask(plan.nodes[repo], missing))
    return tasks


def _compare_all(
    plan: AuditPlan,
    runs: dict[str, dict[str, EvaluatedRun]],
    suites: Sequence[Suite],
    options: AuditOptions,
) -> list[ComparisonResult]:
    """Every child x parent x suite comparison, decided with Holm per child and family."""
    results: list[ComparisonResult] = []
    for child in plan.subjects:
        parents = [parent for c, parent in plan.comparisons if c == child]
        for kind, spec in SUITE_KINDS.items():
            label = spec.rate_label
            family: list[tuple[str, Suite, PairedComparison, PairedComparison | None]] = []
            for suite in (s for s in suites if s.kind == kind):
                for parent in parents:
                    child_run, parent_run = runs[child][suite.name], runs[parent][suite.name]
                    kwargs = {
                        "resamples": options.bootstrap_resamples,
                        "seed": options.seed,
                        "alpha": options.alpha,
                    }
                    comparison = compare(child_run.events, parent_run.events, **kwargs)
                    sensitivity = None
                    if child_run.parse_failures or parent_run.parse_failures:
                        sensitivity = compare(
                            failures_as_events(child_run.events, child_run.parse_failed),
                            failures_as_events(parent_run.events, parent_run.parse_failed),
                            **kwargs,
                        )
                    family.append((parent, suite, comparison, sensitivity))
            if not family:
                continue
            decisions = decide(
                [item[2] for item in family], label=label, delta=options.delta, alpha=options.alpha
            )
            sensitive = [item[3] or item[2] for item in family]
            sensitivity_decisions = decide(
                sensitive, label=label, delta=options.delta, alpha=options.alpha
            )
            for (parent, suite, comparison, sens), decision, alt in zip(
                family, decisions, sensitivity_decisions, strict=True
            ):
                results.append(
                    ComparisonResult(
                        child,
                        parent,
                        suite,
                        comparison,
                        decision,
                        alt.outcome if sens is not None else None,
                    )
                )
    return results


def _regression_finding(result: ComparisonResult) -> FindingDoc | None:
    decision = result.decision
    if decision.outcome == "none":
        return None
    spec = SuiteKind(result.suite.kind).spec
    kind = spec.finding if decision.outcome == "regression" else FindingKind.WARN
    comparison = result.comparison
    detail = decision.reason
    if result.sensitivity_outcome is not None and result.sensitivity_outcome != decision.outcome:
        detail += (
            f"; counting unparseable judge outputs as events changes the decision to"
            f" {result.sensitivity_outcome}"
        )
    return _finding(
        kind=kind,
        model=result.child,
        against=result.parent,
        suite=result.suite.name,
        delta=comparison.delta,
        ci=comparison.delta_ci,
        p_value=comparison.p_value,
        detail=detail,
        family=spec.family,
        adjusted_p=decision.adjusted_p,
        severity=kind.spec.severity,
        suite_hash=result.suite.content_hash,
        child_rate=comparison.child_rate,
        parent_rate=comparison.parent_rate,
        n=comparison.n,
        b=comparison.b,
        c=comparison.c,
        test=comparison.method,
        mdd=decision.mdd,
        sensitivity_outcome=result.sensitivity_outcome,
    )


def _source_eval_findings(
    plan: AuditPlan, runs: dict[str, dict[str, EvaluatedRun]]
) -> list[FindingDoc]:
    findings = []
    for repo in plan.evaluation_order:
        node = plan.nodes[repo]
        measured = [(run.suite, run.event_count, run.n) for run in runs[repo].values()]
        for check in check_declared(repo, node.declared_evaluations, measured):
            if not check.contradicted:
                continue
            findings.append(
                _finding(
                    kind=FindingKind.MISSED_BY_SOURCE_EVAL,
                    model=repo,
                    against=None,
                    suite=check.suite,
                    delta=check.measured - check.declared,
                    ci=check.ci,
                    p_value=check.p_value,
                    detail=check.detail,
                    family=SOURCE_EVAL_FAMILY,
                    adjusted_p=None,
                    severity=(
                        FindingKind.MISSED_BY_SOURCE_EVAL.spec.severity
                        if check.worse_than_declared
                        else Severity.INFO
                    ),
                    suite_hash=runs[repo][check.suite].suite.content_hash,
                    declared=check.declared,
                    measured=check.measured,
                )
            )
    return findings


def _record_findings(registry: Registry, report: AuditReport) -> None:
    """Subjects' comparison findings replace their previous audit findings; every
    evaluated model's source-eval findings replace its previous ones."""
    by_model: dict[str, list[FindingDoc]] = {}
    for finding in report.findings:
        by_model.setdefault(finding.model, []).append(finding)
    with registry.session() as session:
        for repo in report.plan.evaluation_order:
            node = report.plan.nodes[repo]
            revision = recorded_revision(session, repo, node.sha)
            if revision is None:
                continue
            mine = by_model.get(repo, [])
            if repo in report.plan.subjects:
                replace_findings(
                    session,
                    revision,
                    STAGE,
                    [f for f in mine if _stage(f) == STAGE],
                    method=f"{report.judge}@{report.judge_version}",
                )
            replace_findings(
                session,
                revision,
                SOURCE_EVAL_STAGE,
                [f for f in mine if _stage(f) == SOURCE_EVAL_STAGE],
                method=f"{report.judge}@{report.judge_version}",
            )


def _finding(*, delta: float, ci: tuple[float, float], **fields: Any) -> FindingDoc:
    """One finding of the JSON contract: every field set (so every one is dumped, in the
    contract's order), the difference and its interval rounded, then the extra numbers."""
    return FindingDoc(delta=round(delta, 6), ci=[round(ci[0], 6), round(ci[1], 6)], **fields)


def _stage(finding: FindingDoc) -> Stage:
    """The stage a finding is recorded under: a declared result's own, or the audit's."""
    return FindingKind(finding.kind).spec.stage
