"""``lineage audit``: crawl if needed, evaluate the model and its parents, print the verdicts.

Kept apart from ``app.py`` because it is the one command that loads models; its heavy
imports (torch, transformers) happen only when it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lineage.cli import render
from lineage.cli.common import (
    DbOption,
    JsonOption,
    LocalOption,
    open_registry,
    print_problems,
    resolve_source,
)
from lineage.cli.evaluation_options import (
    AllowPickleOption,
    BackendOption,
    BatchSizeOption,
    DeviceOption,
    DtypeOption,
    ExecutorOption,
    JudgeOption,
    MaxNewTokensOption,
    RayAddressOption,
    SuiteOption,
    SystemPromptOption,
    TrustRemoteCodeOption,
    WorkersOption,
    build_executor,
    chosen_backend,
)
from lineage.pipeline import AuditJob, AuditOutcome, run_audit_job
from lineage.thresholds import DEFAULT_DELTA
from lineage.vocabulary import SuiteKind

if TYPE_CHECKING:
    from audit.records import Suite

DEFAULT_SUITES = tuple(SuiteKind)  # the built-in suite of each kind


def audit_command(
    repo: Annotated[str, typer.Argument(help="Hub repo id, or a local model folder.")],
    suite: SuiteOption = None,
    judge: JudgeOption = "refusal",
    max_new_tokens: MaxNewTokensOption = 256,
    batch_size: BatchSizeOption = None,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    backend: BackendOption = "auto",
    system_prompt: SystemPromptOption = None,
    descendants: Annotated[
        bool, typer.Option("--descendants", help="Also audit every recorded descendant.")
    ] = False,
    delta: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Smallest increase that matters (0.02 = 2 pts).")
    ] = DEFAULT_DELTA,
    trust_remote_code: TrustRemoteCodeOption = False,
    allow_pickle: AllowPickleOption = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write audit.json and per-sample JSONL logs to this folder."),
    ] = None,
    brief: Annotated[
        Path | None,
        typer.Option("--brief", help="Write the compliance brief here (.html or .pdf)."),
    ] = None,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    workers: WorkersOption = None,
    json_output: JsonOption = False,
    local: LocalOption = None,
    db: DbOption = None,
) -> None:
    """Re-run safety and capability suites on REPO and its parents; decide regressions.

    The main job: crawls REPO if the registry has never seen it, verifies its declared
    lineage against weight fingerprints, evaluates it and its parents, records findings,
    and with --brief writes the compliance brief.

    Every model is prompted identically (a merge without a chat template borrows its
    parent's) and judged by the same judge; runs are cached in the registry, so parents
    shared by several merges are evaluated once.

    Examples:

      lineage audit org/merge

      lineage audit org/merge --suite harmful --suite ./advbench.csv --judge llama-guard-3-1b

      lineage audit org/merge --suite xstest_prompts.csv --suite contextual:harmbench.csv

      lineage audit org/merge --suite benign:prompt=question:./my_faq.csv

      lineage audit ./models/org/merge --max-new-tokens 64 --json

      lineage audit org/merge --brief brief.pdf

      lineage audit org/base --descendants --executor ray --workers 8
    """
    from audit.judges import JUDGES, get_judge

    # Names and suite files are checked before torch and transformers are imported (seconds).
    JUDGES.get(judge)  # an unknown judge: one line listing the known ones
    suites = _suites(suite or DEFAULT_SUITES)

    from audit.auditor import AuditOptions
    from audit.generation import GenerationSettings
    from audit.judge_models import hub_completer_factory

    settings = GenerationSettings(
        max_new_tokens=max_new_tokens,
        system_prompt=system_prompt,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        backend=chosen_backend(backend),
        trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle,
    )
    chosen_judge = get_judge(judge, completer_factory=hub_completer_factory(settings))
    chosen_executor = build_executor(executor, ray_address, workers)
    source, (repo_id,) = resolve_source([repo], local)
    registry = open_registry(db)
    chosen_executor.check_registry_reachable(registry.connection_url())  # before any work
    job = AuditJob(
        repo_id=repo_id,
        source=source,
        suites=suites,
        judge=chosen_judge,
        settings=settings,
        options=AuditOptions(delta=delta, descendants=descendants),
        out=out,
        briefs=[brief] if brief is not None else [],
        executor=chosen_executor,
    )
    quiet = json_output or not sys.stderr.isatty()
    outcome = run_audit_job(registry, job, progress=_silent if quiet else _show_progress)
    raise typer.Exit(_print_outcome(outcome, json_output=json_output))


def _suites(specs: Sequence[str]) -> list[Suite]:
    """The suites named, each loaded once; rows a suite left out are said, never dropped."""
    from audit.suites import distinct_suites, left_out_summary, load_suites

    loaded = [one for spec in specs for one in load_suites(spec)]
    suites = list(distinct_suites(loaded))
    for one in suites:
        if one.left_out:
            render.warning(
                f"suite {one.name} ({one.source}): left out {left_out_summary(one)}"
                + _left_out_hint(one.left_out)
            )
    return suites


def _silent(message: str) -> None:
    """Progress for --json or a non-terminal stderr: nothing."""


def _show_progress(message: str) -> None:
    render.stderr.print(f"[dim]{render.safe(message)}[/dim]", highlight=False)


def _print_outcome(outcome: AuditOutcome, *, json_output: bool) -> int:
    """Print what the job did, problems last; the exit code. A verdict that was not
    earned (a crawl problem, a model not evaluated, a brief not written) is never 0."""
    if outcome.crawl is not None:
        print_problems(outcome.crawl)
    report = outcome.audit
    data = report.to_json()
    if outcome.files and not json_output:
        audit_json, *logs = outcome.files
        render.say(
            f"wrote {audit_json} and {len(logs)} sample logs in {audit_json.parent / 'samples'}",
            console=render.stderr,
        )
    if json_output:
        render.print_json(data)
    else:
        render.print_audit(data)
    for line in report.plan.skipped:
        render.warning(line)
    for subject, lines in report.incomplete.items():
        render.problem(f"{subject}: {report.verdict(subject)}: " + "; ".join(lines))
    for path in outcome.briefs:
        render.say(f"wrote {path}", console=render.stderr)
    for path, reason in outcome.brief_errors:
        render.problem(f"{path}: {reason}")
    return outcome.exit_code


def _left_out_hint(left_out: tuple[tuple[str, int], ...]) -> str:
    reasons = {reason for reason, _ in left_out}
    if "contextual" in reasons:
        return " (--suite contextual:FILE adds HarmBench's contextual behaviors)"
    return ""
