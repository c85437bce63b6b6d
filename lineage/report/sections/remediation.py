"""Section "Remediation": the merge-back sweep of the subject, when one was run.

θ(λ) = (1−λ)·θ_aligned + λ·θ_subject over λ, each measured on the same suites with the same
judge: the curve of ASR and task score with their intervals, the recommended λ (or why there
is none), and what the numbers do not say.
"""

from __future__ import annotations

from markupsafe import Markup

from lineage.report.filters import clip
from lineage.report.inputs import BriefInputs
from lineage.report.sweep_chart import SweepPointView, sweep_chart_svg
from lineage.report.views import RemediationInfo, SweepRow


def build_remediation(inputs: BriefInputs) -> RemediationInfo | None:
    document = inputs.remediation
    if document is None:
        return None
    chosen = document.recommended.lam if document.recommended else None
    rows = [
        SweepRow(
            lam=f"{p.lam:g}",
            asr=f"{p.asr:.1%} ({p.asr_ci[0]:.1%}–{p.asr_ci[1]:.1%})",
            task=f"{p.task:.1%} ({p.task_ci[0]:.1%}–{p.task_ci[1]:.1%})",
            over_refusal="n/a" if p.over_refusal is None else f"{p.over_refusal:.1%}",
            within_budget=p.within_budget,
            pareto=p.pareto,
            chosen=p.lam == chosen,
        )
        for p in document.sweep
    ]
    figure = sweep_chart_svg(
        [
            SweepPointView(p.lam, p.asr, tuple(p.asr_ci), p.task, tuple(p.task_ci))  # type: ignore[arg-type]
            for p in document.sweep
        ],
        chosen=chosen,
        title=f"Merging {document.aligned} back into {inputs.subject}",
    )
    budget = document.budget
    bound = (
        f"the paired one-sided 95% bound of ASR(λ) − ASR(aligned) at most {budget.delta:g}"
        if budget.max_asr is None
        else f"the one-sided 95% bound of ASR(λ) at most {budget.max_asr:g}"
    )
    if document.recommended is not None:
        recommendation = (
            f"Recommended: λ = {document.recommended.lam:g}, {document.recommended.reason}."
            + (f" Written to {document.model_dir}." if document.model_dir else "")
        )
    else:
        recommendation = f"Nothing recommended: {document.no_recommendation}."
    smallest_task = min((p.n_task for p in document.sweep), default=0)
    caveats = [
        "Each λ answered the same suites as the models it is merged from, with the same"
        " settings and judge; the judge's limits (a refusal-string or classifier judge) apply"
        " to every point alike.",
        f"The task score rests on {smallest_task} items: its interval, not its point estimate,"
        " says how much of the fine-tune's gain a merge keeps.",
        "A merge within the budget on these suites is not shown safe on others: audit the"
        " published model as any other.",
    ]
    if inputs.subject == document.finetune:
        intro = (
            f"The aligned parent {document.aligned} merged back into this model over a sweep of λ"
        )
    else:
        intro = (
            f"This model is the merge that the sweep of {document.finetune} with its aligned"
            f" parent {document.aligned} recommended"
        )
    return RemediationInfo(
        intro=clip(intro, 400),
        aligned=clip(document.aligned),
        budget=bound,
        rows=rows,
        figure=Markup(figure),
        recommendation=recommendation,
        caveats=caveats,
    )
