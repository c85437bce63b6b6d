"""What ``lineage verify`` concludes about one model: a typed document and its JSON contract.

``VerifyReport.to_dict()`` is what ``lineage verify --json`` prints and what the registry
stores whole (``registry.verifications``); ``VerifyReport.model_validate`` reads it back.
Fields are added, never renamed; ``format_version`` says which fields a stored report has.

    {"format_version": 1, "repo": "org/name", "revision": "<sha>",
     "declared": [{"parent": "org/p", "status": "confirmed|contradicted|unverifiable",
                   "score": 0.97, "reason": "…", "relation": "merge", …details}],
     "inferred": [{"parent": "org/q", "relation": "finetune|merge|adapter|quantized",
                   "confidence": 0.99, "reason": "…", "evidence": "weights", …details}],
     "merge": {"method": "linear|slerp|task_arithmetic|ties|dare_ties|…",
               "coefficients": {"org/p": 0.6, "org/q": 0.4}, "t": null, "residual": 1e-6,
               "density": null, …details},
     "merged_lora": {"parent": "org/p", "rank": 8, "modules": ["q_proj"], "tensors": 4},
     "declared_merge": {"method": "ties", "base": "org/b", "weights": {…}, "density": {…},
                        "t": null},
     "findings": [{"kind": "…", "severity": "info|warning|high", "related": "org/p",
                   "message": "…", "details": {…}}],
     "fingerprint": {"method": "…", "signature": "…", "values": 0, "bytes_read": 0,
                     "weight_bytes": 0}}

``merge`` is null when the model is not explained as a merge. A record's method-specific
``details`` (z, reference, distance, a fit's sum or t spread, ...) sit flat beside its
fields, as they always have; reading a report back gathers them into ``details`` again.
Numbers are rounded when dumped (the values in memory are the fits' own).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, field_serializer, model_serializer, model_validator

from lineage.thresholds import EXACT_RESIDUAL

FORMAT_VERSION = 1
DeclaredStatus = Literal["confirmed", "contradicted", "unverifiable"]
VERDICTS: tuple[str, ...] = get_args(DeclaredStatus)
Severity = Literal["info", "warning", "high"]


class _Document(BaseModel):
    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of this record (plain Python values; NaN stays a float)."""
        return self.model_dump()


class _WithDetails(_Document):
    """A record whose open-ended ``details`` are dumped flat beside its fields."""

    details: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gather_details(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = set(cls.model_fields)
        extra = {key: value for key, value in data.items() if key not in fields}
        if not extra:
            return data
        known = {key: value for key, value in data.items() if key in fields}
        return {**known, "details": {**(known.get("details") or {}), **extra}}

    @model_serializer(mode="wrap")
    def _flatten_details(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        details = data.pop("details", None) or {}
        return {**data, **details}


class DeclaredVerdict(_WithDetails):
    """What the weights say about one parent the card declares."""

    parent: str
    status: DeclaredStatus
    score: float | None
    reason: str
    relation: str | None = None

    @field_serializer("score")
    def _round_score(self, score: float | None) -> float | None:
        return None if score is None else round(score, 4)


class InferredParent(_WithDetails):
    """A parent the card does not name, found in the weights."""

    parent: str
    relation: str
    confidence: float
    reason: str
    evidence: Literal["weights"] = "weights"

    @field_serializer("confidence")
    def _round_confidence(self, confidence: float) -> float:
        return round(confidence, 4)


class MergeEstimate(_WithDetails):
    """A merge recipe recovered from weights: method, coefficients and how well they fit."""

    method: str
    coefficients: dict[str, float]
    t: float | None = None
    residual: float  # ‖C − fit‖ / ‖C − reference‖
    density: dict[str, float] | None = None

    @property
    def exact(self) -> bool:
        return self.residual < EXACT_RESIDUAL

    @field_serializer("coefficients")
    def _round_coefficients(self, coefficients: dict[str, float]) -> dict[str, float]:
        return {name: round(value, 4) for name, value in coefficients.items()}

    @field_serializer("t")
    def _round_t(self, t: float | None) -> float | None:
        return None if t is None else round(t, 4)

    @field_serializer("residual")
    def _round_residual(self, residual: float) -> float:
        return float(f"{residual:.3g}")

    @field_serializer("density")
    def _round_density(self, density: dict[str, float] | None) -> dict[str, float] | None:
        return None if density is None else {k: round(v, 3) for k, v in density.items()}


class MergedLora(_Document):
    """A single parent plus a low-rank Δ: a LoRA merged into the weights."""

    parent: str | None = None  # set once the parent it was measured against is known
    rank: int
    modules: list[str]  # projection names changed (q_proj, v_proj, ...)
    tensors: int  # tensors whose Δ was measured


class DeclaredMerge(_Document):
    """The merge recipe the card or mergekit config declares, as verify compared it."""

    method: str | None
    base: str | None
    weights: dict[str, float | None] = Field(default_factory=dict)
    density: dict[str, float | None] = Field(default_factory=dict)
    t: float | None = None


class VerifyFinding(_Document):
    """Something verify found wrong; stored as a registry finding of stage ``verify``."""

    kind: str
    severity: Severity
    related: str | None = None
    message: str
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def related_repo_id(self) -> str | None:  # the registry finding's name for ``related``
        return self.related


class FingerprintSummary(_Document):
    """Which fingerprint the verdicts rest on, and how much of the weights it read."""

    method: str
    signature: str
    values: int
    bytes_read: int
    weight_bytes: int


class VerifyReport(_Document):
    """Everything ``lineage verify`` concluded about one revision of one model."""

    format_version: int = FORMAT_VERSION
    repo: str
    revision: str
    declared: list[DeclaredVerdict] = Field(default_factory=list)
    inferred: list[InferredParent] = Field(default_factory=list)
    merge: MergeEstimate | None = None
    merged_lora: MergedLora | None = None
    declared_merge: DeclaredMerge | None = None
    findings: list[VerifyFinding] = Field(default_factory=list)
    fingerprint: FingerprintSummary | None = None

    @property
    def merged_lora_parent(self) -> str | None:
        return None if self.merged_lora is None else self.merged_lora.parent
