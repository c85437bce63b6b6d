"""``lineage audit``: crawl if needed, evaluate the model and its parents, print the verdicts.

Kept apart from ``app.py`` because it is the one command that loads models; its heavy
imports (torch, transformers) happen only when it runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from lineage.cli import render
from lineage.cli.common import (
    DbOption,
    JsonOption,
    LocalOption,
    crawl_if_unknown,
    open_registry,
    resolve_source,
)
from lineage.crawler import CrawlOptions
from lineage.verify import verify

DEFAULT_SUITES = ("harmful", "benign", "capability")


def audit_command(
    repo: Annotated[str, typer.Argument(help="Hub repo id, or a local model folder.")],
    suite: Annotated[
        list[str] | None,
        typer.Option(
            "--suite",
            metavar="SPEC",
            # Rich reads "[...]" as markup: each "[" of the grammar is escaped.
            help="Suite to run (repeatable; default: harmful, benign, capability). SPEC is"
            r" \[FORMAT:]\[KIND:]\[prompt=COLUMN:]\[contextual:]SOURCE; SOURCE: a built-in"
            " name, a benchmark file or HEx-PHI folder, or a Hub dataset (org/name,"
            r" hf:org/name\[@rev]\[:path]). Published files are recognised by name and"
            " columns: advbench, harmbench, jailbreakbench, strongreject, xstest,"
            " simplesafetytests, maliciousinstruct, donotanswer, orbench, wildguardtest,"
            " sorrybench, hexphi. Say what any other file means: KIND is harmful (ASR),"
            " benign (over-refusal) or capability (needs an answer column); prompt=COLUMN"
            " names the prompt column; contextual adds HarmBench's contextual behaviors."
            " E.g. xstest:harmful:xstest_prompts.csv, benign:prompt=question:faq.csv.",
        ),
    ] = None,
    judge: Annotated[
        str,
        typer.Option(help="refusal, llama-guard-3-1b, llama-guard-3-8b or wildguard."),
    ] = "refusal",
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens generated per prompt.")] = 256,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Prompts per batch (default: auto, halved on OOM).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16 or float16.")] = "auto",
    system_prompt: Annotated[
        str | None, typer.Option(help="System prompt given to every model alike.")
    ] = None,
    descendants: Annotated[
        bool, typer.Option("--descendants", help="Also audit every recorded descendant.")
    ] = False,
    delta: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Smallest increase that matters (0.02 = 2 pts).")
    ] = 0.02,
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="Run code shipped in repos (unsafe).")
    ] = False,
    allow_pickle: Annotated[
        bool,
        typer.Option("--allow-pickle", help="Load pickle-only weights (weights_only=True)."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write audit.json and per-sample JSONL logs to this folder."),
    ] = None,
    brief: Annotated[
        Path | None,
        typer.Option("--brief", help="Write the compliance brief here (.html or .pdf)."),
    ] = None,
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
    """
    from audit.auditor import AuditOptions, audit
    from audit.generation import GenerationSettings
    from audit.judge_models import hub_completer_factory
    from audit.judges import get_judge
    from audit.sample_logs import write_sample_logs
    from audit.suites import distinct_suites, left_out_summary, load_suites

    settings = GenerationSettings(
        max_new_tokens=max_new_tokens,
        system_prompt=system_prompt,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle,
    )
    loaded = [one for spec in (suite or DEFAULT_SUITES) for one in load_suites(spec)]
    suites = list(distinct_suites(loaded))
    for one in suites:
        if one.left_out:  # never drop rows without saying so
            render.warning(
                f"suite {one.name} ({one.source}): left out {left_out_summary(one)}"
                + _left_out_hint(one.left_out)
            )
    chosen_judge = get_judge(judge, completer_factory=hub_completer_factory(settings))
    source, (repo_id,) = resolve_source([repo], local)
    registry = open_registry(db)
    exit_code = crawl_if_unknown(registry, source, repo_id, CrawlOptions())
    # The main job verifies too: the brief's lineage section and the findings need it.
    verify(registry, repo_id)
    progress = (
        (lambda message: None)
        if json_output or not sys.stderr.isatty()
        else (
            lambda message: render.stderr.print(
                f"[dim]{render.safe(message)}[/dim]", highlight=False
            )
        )
    )
    report = audit(
        registry,
        source,
        repo_id,
        suites,
        chosen_judge,
        settings,
        AuditOptions(delta=delta, descendants=descendants),
        progress=progress,
    )
    data = report.to_json()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "audit.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        written = write_sample_logs(report, out / "samples")
        if not json_output:
            render.say(
                f"wrote {out / 'audit.json'} and {len(written)} sample logs in {out / 'samples'}",
                console=render.stderr,
            )
    if json_output:
        render.print_json(data)
    else:
        render.print_audit(data)
    for line in report.plan.skipped:
        render.warning(line)
    for subject, lines in report.incomplete.items():
        # A verdict that was not earned is never a clean exit.
        render.problem(f"{subject}: {report.verdict(subject)}: " + "; ".join(lines))
        exit_code = max(exit_code, 1)
    if brief is not None:
        from lineage.report.brief import write_brief

        written_brief = write_brief(registry, repo_id, brief)
        render.say(f"wrote {written_brief}", console=render.stderr)
    raise typer.Exit(exit_code)


def _left_out_hint(left_out: tuple[tuple[str, int], ...]) -> str:
    reasons = {reason for reason, _ in left_out}
    if "contextual" in reasons:
        return " (--suite contextual:FILE adds HarmBench's contextual behaviors)"
    return ""
