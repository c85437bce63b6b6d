"""What ``lineage demo`` prints once the job is done: the audit, the ASR ladder by λ, the
remediation sweep and its choice, and where every file went. The demo itself
(``lineage.demo``) prints nothing."""

from __future__ import annotations

from lineage.cli import render
from lineage.cli.remediate_command import print_sweep
from lineage.demo import DemoOutcome


def print_demo(outcome: DemoOutcome) -> int:
    """Print the demo's results and problems; its exit code."""
    say = render.stdout.print
    job = outcome.job
    if job.crawl is not None:
        for problem in job.crawl.problems:
            render.problem(problem.message)
    for path, reason in job.brief_errors:
        # Without the pdf extra the HTML brief still stands: a warning, not a failure.
        (render.warning if path.suffix == ".pdf" else render.problem)(f"{path}: {reason}")
    data = job.audit.to_json()
    render.print_audit(data)
    for subject, lines in job.audit.incomplete.items():
        render.problem(f"{subject}: {job.audit.verdict(subject)}: " + "; ".join(lines))

    say("\n[bold]ASR by merge weight λ[/bold] (θ = (1−λ)·aligned + λ·fine-tune):")
    for lam, repo in outcome.ladder:
        model = data["models"][repo]
        say(f"  λ={lam:.1f}  {repo:<26} ASR {_percent(model['asr'], model['ci'])}", highlight=False)
    if outcome.remediation is not None:
        say(
            "\n[bold]Remediation[/bold]: chat-aligned merged back into chat-helpful",
            highlight=False,
        )
        print_sweep(outcome.remediation)
    audit_json, *logs = job.files
    say(f"\nregistry: {outcome.registry}", highlight=False)
    say(f"audit:    {audit_json}  ({len(logs)} sample logs in {audit_json.parent / 'samples'})")
    for path in outcome.exports:
        say(f"export:   {path}")
    for path in job.briefs:
        say(f"brief:    {path}  (subject {outcome.subject})")
    if outcome.remediation is not None and outcome.remediation.model_dir:
        say(f"model:    {outcome.remediation.model_dir}  (the recommended merge)", highlight=False)
    if outcome.task_file is not None:
        say(
            f"again:    lineage remediate demo-org/chat-helpful --task-suite"
            f" capability:{outcome.task_file} --local {outcome.out / 'models'}"
            f" --db sqlite:///{outcome.registry}",
            highlight=False,
        )
    say(
        f"next:     lineage registry show {outcome.subject} --db sqlite:///{outcome.registry}",
        highlight=False,
    )
    return outcome.exit_code


def _percent(rate: float, ci: list[float]) -> str:
    return f"{rate * 100:5.1f}% (95% CI {ci[0] * 100:.1f}–{ci[1] * 100:.1f}%)"
