"""``lineage remediate``: merge the aligned parent back into a fine-tune over a sweep of λ.

Kept apart from ``app.py``, like ``audit``: it loads models, and its heavy imports happen
only when it runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lineage.cli import render
from lineage.cli.common import (
    DbOption,
    JsonOption,
    LocalOption,
    OutputPathError,
    check_output_folder,
    open_registry,
    print_problems,
    resolve_source,
)
from lineage.cli.evaluation_options import (
    BackendOption,
    BatchSizeOption,
    DeviceOption,
    DtypeOption,
    ExecutorOption,
    JudgeOption,
    MaxNewTokensOption,
    RayAddressOption,
    SystemPromptOption,
    WorkersOption,
    build_executor,
    chosen_backend,
)
from lineage.crawler import CrawlOptions
from lineage.documents.remediation import BudgetDoc, RemediationDocument
from lineage.errors import EXIT_OK, EXIT_PROBLEMS, InvalidReferenceError
from lineage.pipeline import crawl_if_unknown
from lineage.references import validate_repo_id
from lineage.sources import Source
from registry import queries
from registry.database import Registry

if TYPE_CHECKING:
    from lineage.remediate.run import RemediationJob

MERGE_METHODS = ("linear",)  # θ(λ) = (1−λ)·θ_aligned + λ·θ_finetune
DEFAULT_CACHE = Path("~/.cache/lineage-audit/remediate")


AlignedOption = Annotated[
    str | None, typer.Option(help="The aligned model (default: the fine-tune's declared parent).")
]
HarmfulSuiteOption = Annotated[
    list[str] | None,
    typer.Option("--suite", metavar="SPEC", help="Harmful suite for ASR (default: harmful)."),
]
TaskSuiteOption = Annotated[
    list[str] | None,
    typer.Option(
        "--task-suite",
        metavar="SPEC",
        help="What the fine-tune was made for: exact answers (default: capability).",
    ),
]
BenignSuiteOption = Annotated[
    list[str] | None,
    typer.Option("--benign-suite", metavar="SPEC", help="Over-refusal (default: benign)."),
]
LambdasOption = Annotated[
    str, typer.Option(help="auto (grid, then bisection), or a list: 0.1,0.2,0.5.")
]
DeltaOption = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        help="Budget: the paired upper 95% bound of ASR(λ) − ASR(aligned) (default 0.05).",
    ),
]
MaxAsrOption = Annotated[
    float | None,
    typer.Option(min=0.0, max=1.0, help="Budget instead: an absolute cap on ASR(λ)."),
]
MethodOption = Annotated[str, typer.Option(help="Merge method: linear.")]
ModelOutOption = Annotated[
    Path | None, typer.Option("--out", help="Write the recommended model here.")
]
CacheOption = Annotated[
    Path, typer.Option(help="Where candidate merges live while they are evaluated.")
]
BriefOption = Annotated[
    Path | None,
    typer.Option(
        "--brief",
        help="Also write the fine-tune's compliance brief, with its Remediation section"
        " (.html or .pdf).",
    ),
]
KeepAllOption = Annotated[
    bool, typer.Option("--keep-all", help="Keep every candidate merge in --cache.")
]


def remediate_command(
    finetune: Annotated[
        str,
        typer.Argument(help="The fine-tune: a Hub repo id, a local folder or a PEFT adapter."),
    ],
    aligned: AlignedOption = None,
    suite: HarmfulSuiteOption = None,
    task_suite: TaskSuiteOption = None,
    benign_suite: BenignSuiteOption = None,
    lambdas: LambdasOption = "auto",
    delta: DeltaOption = None,
    max_asr: MaxAsrOption = None,
    method: MethodOption = "linear",
    judge: JudgeOption = "refusal",
    max_new_tokens: MaxNewTokensOption = 256,
    batch_size: BatchSizeOption = None,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    backend: BackendOption = "auto",
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    workers: WorkersOption = None,
    system_prompt: SystemPromptOption = None,
    out: ModelOutOption = None,
    cache: CacheOption = DEFAULT_CACHE,
    keep_all: KeepAllOption = False,
    brief: BriefOption = None,
    json_output: JsonOption = False,
    local: LocalOption = None,
    db: DbOption = None,
) -> None:
    """Merge the aligned model back into FINETUNE over λ; measure safety and the task; pick.

    θ(λ) = (1−λ)·aligned + λ·fine-tune (Farn et al. 2024): λ = 0 is the aligned model, 1 the
    fine-tune. Each λ answers the same prompts, judged alike; the recommendation is the
    largest λ whose ASR stays within the budget and still keeps a task gain.

    Examples:

      lineage remediate org/fine-tune --aligned org/chat --out ./org-fine-tune-safe

      lineage remediate ./models/org/ft --lambdas 0.25,0.5,0.75 --max-asr 0.1 --json

      lineage remediate org/fine-tune --out ./safe --brief remediation.pdf

      lineage remediate org/fine-tune --lambdas 0.2,0.4,0.6,0.8 --executor ray --workers 4
    """
    # The options are checked first: a mistake is reported before torch and transformers
    # are imported (seconds), and before anything is crawled or recorded.
    if method not in MERGE_METHODS:
        raise InvalidReferenceError(f"merge method {method!r} is not supported; use: linear")
    if delta is not None and max_asr is not None:
        raise InvalidReferenceError("give --delta or --max-asr, not both")
    budget = (
        BudgetDoc(delta=None, max_asr=max_asr)
        if max_asr is not None
        else BudgetDoc(delta=0.05 if delta is None else delta)
    )
    sweep_lambdas = _lambdas(lambdas)
    if out is not None:
        _check_model_output(out)
    if brief is not None:
        from lineage.report.brief import check_brief_path

        check_brief_path(brief)

    from audit.generation import GenerationSettings
    from audit.judge_models import hub_completer_factory
    from audit.judges import get_judge
    from audit.suites import load_suites
    from lineage.remediate.run import RemediationJob, run_remediation

    settings = GenerationSettings(
        max_new_tokens=max_new_tokens,
        system_prompt=system_prompt,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        backend=chosen_backend(backend),
    )

    def suites(specs: list[str] | None, default: str, kind: str) -> list:
        return [s for spec in (specs or [default]) for s in load_suites(spec, kind=kind)]  # type: ignore[arg-type]

    chosen_executor = build_executor(executor, ray_address, workers)
    source, (finetune_id,) = resolve_source([finetune], local)
    registry = open_registry(db)
    chosen_executor.check_registry_reachable(registry.connection_url())  # before any work
    exit_code = _crawled(registry, source, finetune_id)
    aligned_id = validate_repo_id(aligned) if aligned else _declared_parent(registry, finetune_id)
    exit_code = max(exit_code, _crawled(registry, source, aligned_id))
    job = RemediationJob(
        finetune=finetune_id,
        aligned=aligned_id,
        source=source,
        harmful=suites(suite, "harmful", "harmful"),
        task=suites(task_suite, "capability", "capability"),
        benign=suites(benign_suite, "benign", "benign"),
        judge=get_judge(judge, completer_factory=hub_completer_factory(settings)),
        settings=settings,
        cache=cache.expanduser(),
        lambdas=sweep_lambdas,
        budget=budget,
        keep_all=keep_all,
        out=out,
    )
    quiet = json_output or not sys.stderr.isatty()
    document = run_remediation(
        registry, job, progress=_silent if quiet else _show, executor=chosen_executor
    )
    if json_output:
        render.print_json(document.to_json())
    else:
        print_sweep(document)
    if brief is not None:
        exit_code = max(exit_code, _write_brief(registry, job, brief, quiet=quiet))
    raise typer.Exit(exit_code)


def _write_brief(registry: Registry, job: RemediationJob, brief: Path, *, quiet: bool) -> int:
    """The fine-tune's brief: its audit against its parents on the sweep's suites (their
    runs are cached, so nothing is generated twice), then the brief, which shows the sweep
    just recorded in its Remediation section. The exit code of that audit and brief."""
    from audit.auditor import AuditOptions
    from lineage.pipeline import AuditJob, run_audit_job

    audit_job = AuditJob(
        repo_id=job.finetune,
        source=job.source,
        suites=[*job.harmful, *job.task, *job.benign],
        judge=job.judge,
        settings=job.settings,
        options=AuditOptions(),
        briefs=[brief],
    )
    outcome = run_audit_job(registry, audit_job, progress=_silent if quiet else _show)
    for line in outcome.audit.plan.skipped:
        render.warning(line)
    for subject, lines in outcome.audit.incomplete.items():
        render.problem(f"{subject}: {outcome.audit.verdict(subject)}: " + "; ".join(lines))
    for path in outcome.briefs:
        render.say(f"wrote {path}", console=render.stderr)
    for path, reason in outcome.brief_errors:
        render.problem(f"{path}: {reason}")
    return outcome.exit_code


def _check_model_output(out: Path) -> None:
    """Refuse, before the sweep, an --out the recommended model could not be written to."""
    check_output_folder(out)
    if out.is_dir() and any(out.iterdir()):
        raise OutputPathError(
            "is not empty; name a new folder for the recommended model", file=str(out)
        )
    existing = next((p for p in [out, *out.parents] if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK):
        raise OutputPathError(f"cannot be written ({existing} is not writable)", file=str(out))


def _crawled(registry: Registry, source: Source, repo_id: str) -> int:
    report = crawl_if_unknown(registry, source, repo_id, CrawlOptions())
    if report is None:
        return EXIT_OK
    print_problems(report)
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _declared_parent(registry: Registry, finetune: str) -> str:
    """The fine-tune's one declared parent; with none or several, the user must say."""
    with registry.session(write=False) as session:
        details = queries.model_details(session, finetune) or {}
    parents = sorted({e["parent"] for e in details.get("parents", []) if e.get("declared")})
    if len(parents) != 1:
        found = ", ".join(parents) or "none"
        raise InvalidReferenceError(
            f"declares {len(parents)} parents ({found}); name the aligned one with --aligned",
            repo_id=finetune,
        )
    return parents[0]


def _lambdas(text: str) -> str | list[float]:
    """``auto``, or the λ listed, checked before anything is crawled or recorded."""
    from lineage.remediate.sweep import checked_lambdas

    if text.strip().lower() == "auto":
        return "auto"
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise InvalidReferenceError(
            f"--lambdas {text!r} is neither auto nor a comma-separated list of numbers"
        ) from error
    return checked_lambdas(values)


def _silent(message: str) -> None:
    """Progress for --json or a non-terminal stderr: nothing."""


def _show(message: str) -> None:
    render.stderr.print(f"[dim]{render.safe(message)}[/dim]", highlight=False)


def print_sweep(document: RemediationDocument) -> None:
    """The sweep as a table with intervals (• on the Pareto front, ★ the choice; "in": within
    the budget, "bound": the one-sided 95% bound the budget checks), a small
    ASR / task plot against λ, and the recommendation or why there is none."""
    chosen = document.recommended.lam if document.recommended else None
    rows = []
    for p in document.sweep:
        mark = ("★ " if p.lam == chosen else "") + ("•" if p.pareto else "")
        rows.append(
            [
                f"{p.lam:.2f}",
                _with_interval(p.asr, p.asr_ci),
                _with_interval(p.task, p.task_ci),
                "—" if p.over_refusal is None else f"{p.over_refusal:.1%}",
                f"{p.budget_bound:+.3f}",
                "yes" if p.within_budget else "no",
                mark,
            ]
        )
    budget = document.budget
    bound = f"δ ≤ {budget.delta:g}" if budget.max_asr is None else f"ASR ≤ {budget.max_asr:g}"
    render.stdout.print(
        render.rows_table(
            f"{document.finetune} merged back with {document.aligned} ({bound})",
            ["λ", "ASR (95% CI)", "task (95% CI)", "over-ref.", "bound", "in", ""],
            rows,
        )
    )
    for line in sweep_plot(document):
        render.say(line)
    if document.adapter_note:
        render.say(f"note: {document.adapter_note}")
    if document.recommended is not None:
        render.say(f"recommended: λ = {document.recommended.lam:g}: {document.recommended.reason}")
        if document.model_dir:
            render.say(f"written to {document.model_dir}")
    else:
        render.say(f"nothing recommended: {document.no_recommendation}")


def _with_interval(rate: float, interval: list[float]) -> str:
    """``12.5% [7.1–20.9]``: a rate and its 95% interval, in percent, narrow enough for a
    table of seven columns in 80 characters."""
    return f"{rate:.1%} [{interval[0] * 100:.1f}–{interval[1] * 100:.1f}]"


def sweep_plot(document: RemediationDocument, width: int = 30) -> list[str]:
    """One line per λ: ASR and task score as bars of ``width`` characters."""
    lines = [f"{'λ':>5}  {'ASR':<{width}}  task"]
    for p in document.sweep:
        asr = "█" * round(p.asr * width)
        task = "█" * round(p.task * width)
        lines.append(f"{p.lam:5.2f}  {asr:<{width}}  {task}")
    return lines
