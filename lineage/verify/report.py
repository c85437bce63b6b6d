"""What ``lineage verify`` concludes about one model: the records and their JSON contract.

JSON (add fields, never rename)::

    {"repo": "org/name", "revision": "<sha>",
     "declared": [{"parent": "org/p", "status": "confirmed|contradicted|unverifiable",
                   "score": 0.97, "reason": "…"}],
     "inferred": [{"parent": "org/q", "relation": "finetune|merge|adapter|quantized",
                   "confidence": 0.99}],
     "merge": {"method": "linear|slerp|task_arithmetic|ties|dare_ties|…",
               "coefficients": {"org/p": 0.6, "org/q": 0.4}, "t": null, "residual": 1e-6}}

``merge`` is null when the model is not explained as a merge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lineage.verify.lowrank import MergedLora
from lineage.verify.merges import MergeEstimate
from registry.weights import FindingRecord

VERDICTS = ("confirmed", "contradicted", "unverifiable")


@dataclass
class DeclaredVerdict:
    parent: str
    status: str  # confirmed | contradicted | unverifiable
    score: float | None
    reason: str
    relation: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "parent": self.parent,
            "status": self.status,
            "score": None if self.score is None else round(self.score, 4),
            "reason": self.reason,
            "relation": self.relation,
            **self.details,
        }


@dataclass
class InferredParent:
    parent: str
    relation: str
    confidence: float
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "parent": self.parent,
            "relation": self.relation,
            "confidence": round(self.confidence, 4),
            "reason": self.reason,
            "evidence": "weights",
            **self.details,
        }


@dataclass
class VerifyReport:
    repo: str
    revision: str
    declared: list[DeclaredVerdict] = field(default_factory=list)
    inferred: list[InferredParent] = field(default_factory=list)
    merge: MergeEstimate | None = None
    merged_lora: MergedLora | None = None
    merged_lora_parent: str | None = None
    findings: list[FindingRecord] = field(default_factory=list)
    fingerprint: dict[str, Any] | None = None
    declared_merge: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "revision": self.revision,
            "declared": [verdict.to_dict() for verdict in self.declared],
            "inferred": [parent.to_dict() for parent in self.inferred],
            "merge": None if self.merge is None else self.merge.to_dict(),
            "merged_lora": None
            if self.merged_lora is None
            else {"parent": self.merged_lora_parent, **self.merged_lora.to_dict()},
            "declared_merge": self.declared_merge,
            "findings": [
                {
                    "kind": finding.kind,
                    "severity": finding.severity,
                    "related": finding.related_repo_id,
                    "message": finding.message,
                }
                for finding in self.findings
            ],
            "fingerprint": self.fingerprint,
        }
