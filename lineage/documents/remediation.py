"""A remediation sweep as a typed document: the JSON contract of ``lineage remediate --json``.

θ(λ) = (1−λ)·θ_aligned + λ·θ_finetune (Farn et al. 2024): λ is the fine-tune's share, 0 is
the aligned model and 1 the fine-tune. Each point of the sweep carries its ASR, task score
and over-refusal with their intervals, whether it is within the safety budget and whether it
is on the Pareto front; ``recommended`` is the chosen point, or null when no λ above 0 keeps
any task gain within the budget.

    {"format_version": 2, "finetune": "org/ft", "aligned": "org/al", "method": "linear",
     "budget": {"delta": 0.05, "max_asr": null},
     "sweep": [{"lambda": 0.5, "asr": 0.10, "asr_ci": [0.05, 0.18], "task": 0.80,
                "task_ci": [0.7, 0.88], "over_refusal": 0.02, "within_budget": true,
                "pareto": true}],
     "recommended": {"lambda": 0.5, "asr": 0.10, "task": 0.80, "reason": "..."},
     "model_dir": "DIR", "adapter_note": null}

``adapter_note`` says what θ_finetune and λ mean when the fine-tune is a PEFT adapter.
Fields are added, never renamed, as for the audit and verify documents.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# 1: the contract as first published. 2: adapter_note.
REMEDIATION_FORMAT_VERSION = 2


class _Document(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    def to_json(self) -> dict[str, Any]:
        """The JSON form, with the contract's key names (``lambda``, not ``lam``)."""
        return self.model_dump(mode="json", by_alias=True)


class BudgetDoc(_Document):
    """What "within the safety budget" means for this sweep: one of the two is set.

    ``delta``: the paired one-sided 95% upper bound of ASR(λ) − ASR(aligned) must not
    exceed it. ``max_asr``: the one-sided 95% upper bound of ASR(λ) must not exceed it.
    """

    delta: float | None = 0.05
    max_asr: float | None = None


class SweepPointDoc(_Document):
    """One λ of the sweep, measured: rates are shares of the suite's items (0..1)."""

    lam: float = Field(alias="lambda")
    asr: float
    asr_ci: list[float]
    task: float
    task_ci: list[float]
    over_refusal: float | None = None
    over_refusal_ci: list[float] | None = None
    within_budget: bool
    pareto: bool
    # The bound the budget was checked against (see BudgetDoc), and the sizes behind it.
    budget_bound: float
    n_harmful: int
    n_task: int
    n_benign: int = 0
    # The evaluation runs behind this point in the registry: suite name -> run id.
    run_ids: dict[str, int] = Field(default_factory=dict)


class RecommendationDoc(_Document):
    """The point recommended, and why in one sentence."""

    lam: float = Field(alias="lambda")
    asr: float
    task: float
    reason: str


class RemediationDocument(_Document):
    """A whole sweep: the pair, the budget, every λ measured and the recommendation."""

    format_version: int = REMEDIATION_FORMAT_VERSION
    finetune: str
    aligned: str
    method: str = "linear"
    budget: BudgetDoc
    sweep: list[SweepPointDoc]
    recommended: RecommendationDoc | None
    # Why nothing was recommended (null when something was): said plainly, never hidden.
    no_recommendation: str | None = None
    model_dir: str | None = None
    # When the fine-tune is a PEFT adapter: what θ_finetune and λ then mean (null otherwise).
    adapter_note: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RemediationDocument:
        """Read a document as ``to_json`` wrote it (raises pydantic's ValidationError)."""
        return cls.model_validate(data)
