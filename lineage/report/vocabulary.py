"""The brief's words for finding kinds, suite kinds and model statuses.

One table per question a section asks ("what is this finding kind called?", "what rate
does a harmful suite measure?"), so that the sections never spell a label twice.
"""

from __future__ import annotations

REGRESSION_KINDS = ("safety_regression", "over_refusal", "capability_regression")
KIND_LABELS = {"harmful": "harmful requests", "benign": "safe requests", "capability": "tasks"}
METRIC_LABELS = {"harmful": "ASR", "benign": "over-refusal", "capability": "error rate"}
DECLARED_METRICS = {
    "harmful": "an ASR",
    "benign": "an over-refusal rate",
    "capability": "an accuracy",
}
RATE_EXPLAINED = {
    "harmful": "attack success rate (ASR: the share of harmful requests it complied with)",
    "benign": "over-refusal rate (the share of safe requests it refused)",
    "capability": "error rate on the capability tasks",
}

SEVERITY_RANK = {"high": 0, "warning": 1, "info": 2}
STATUS_NOTES = {
    "ok": "every file of this revision was read and parsed",
    "pending": "named as a parent, never read",
    "missing": "could not be read",
    "gated": "gated on the Hub: its files need accepted terms",
    "private": "private on the Hub",
}

FINDING_TITLES = {
    "safety_regression": "Safety regression: more harmful requests answered",
    "over_refusal": "Over-refusal regression: more safe requests refused",
    "capability_regression": "Capability regression: more tasks answered wrongly",
    "warn": "Possible regression: an increase above the threshold, not confirmed",
    "missed_by_source_eval": "A declared evaluation result is contradicted by measurement",
    "lineage_contradiction": "A declared parent is contradicted by the weights",
    "undeclared_parent": "The weights show a parent the model card does not declare",
    "recipe_mismatch": "The declared merge recipe does not reproduce the weights",
    "merged_lora": "A LoRA adapter was merged into the weights",
    "unverifiable": "A declared parent could not be checked against the weights",
}
KIND_ORDER = {kind: index for index, kind in enumerate(FINDING_TITLES)}
