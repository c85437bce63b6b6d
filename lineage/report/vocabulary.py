"""The brief's words for finding kinds, suite kinds and model statuses.

One table per question a section asks ("what is this finding kind called?", "what rate
does a harmful suite measure?"), so that the sections never spell a label twice. The
tables about suite and finding kinds are read from the specs of ``lineage.vocabulary``;
only the report's own prose (model statuses) is written here.
"""

from __future__ import annotations

from lineage.vocabulary import (
    FINDING_KINDS,
    REGRESSION_KINDS,
    SUITE_KINDS,
    FindingKind,
    Severity,
    SuiteKind,
)

__all__ = [
    "DECLARED_METRICS",
    "FINDING_TITLES",
    "KIND_LABELS",
    "KIND_ORDER",
    "METRIC_LABELS",
    "RATE_EXPLAINED",
    "REGRESSION_KINDS",
    "SEVERITY_RANK",
    "STATUS_NOTES",
    "FindingKind",
    "SuiteKind",
]

KIND_LABELS = {kind: spec.items_label for kind, spec in SUITE_KINDS.items()}
METRIC_LABELS = {kind: spec.rate_label for kind, spec in SUITE_KINDS.items()}
DECLARED_METRICS = {kind: spec.declared_metric for kind, spec in SUITE_KINDS.items()}
RATE_EXPLAINED = {kind: spec.rate_explained for kind, spec in SUITE_KINDS.items()}

SEVERITY_RANK = {severity: severity.rank for severity in Severity}
STATUS_NOTES = {
    "ok": "every file of this revision was read and parsed",
    "pending": "named as a parent, never read",
    "missing": "could not be read",
    "gated": "gated on the Hub: its files need accepted terms",
    "private": "private on the Hub",
}

FINDING_TITLES = {kind: spec.title for kind, spec in FINDING_KINDS.items()}
KIND_ORDER = {kind: kind.order for kind in FindingKind}
