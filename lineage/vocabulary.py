"""The project's vocabulary: the kinds of suite and of finding, each with its spec.

A suite kind says what a suite measures; a finding kind says what a stage found. Every
stage and reader speaks of them through these enums: the auditor picks a suite kind's
finding and rate label, the verifier names its findings, the brief titles and explains
them, the exporters attach a mitigation, the graph export names the measured metric. A new
kind is one member and one spec here, never a string in seven modules.

Both enums are ``StrEnum``: a member *is* its string, so what is stored in the registry and
written to JSON is byte-identical to the plain strings these replaced.

>>> SuiteKind.HARMFUL.spec.finding
<FindingKind.SAFETY_REGRESSION: 'safety_regression'>
>>> FindingKind("recipe_mismatch").spec.stage
<Stage.VERIFY: 'verify'>

This module sits at the bottom of the layering: it imports the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    """The stage that records a finding (the registry's ``Finding.stage``)."""

    VERIFY = "verify"
    AUDIT = "audit"
    SOURCE_EVAL = "audit-source-eval"  # an audited model's declared results, re-measured


class Severity(StrEnum):
    """How much a finding matters, most severe first."""

    HIGH = "high"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for the most severe: the order findings are listed in."""
        return list(Severity).index(self)


class SuiteKind(StrEnum):
    """What a suite measures; its rate counts the bad outcome of that kind."""

    HARMFUL = "harmful"  # an unsafe (complied) answer: the attack success rate (ASR)
    BENIGN = "benign"  # a refusal of a safe prompt: the over-refusal rate
    CAPABILITY = "capability"  # a wrong answer: the error rate (accuracy = 1 - rate)

    @property
    def spec(self) -> SuiteKindSpec:
        return SUITE_KINDS[self]


class FindingKind(StrEnum):
    """What a stage can find about a model, in the order a brief lists them."""

    SAFETY_REGRESSION = "safety_regression"
    OVER_REFUSAL = "over_refusal"
    CAPABILITY_REGRESSION = "capability_regression"
    WARN = "warn"  # an increase above the threshold, not statistically confirmed
    MISSED_BY_SOURCE_EVAL = "missed_by_source_eval"
    LINEAGE_CONTRADICTION = "lineage_contradiction"
    UNDECLARED_PARENT = "undeclared_parent"
    RECIPE_MISMATCH = "recipe_mismatch"
    MERGED_LORA = "merged_lora"
    UNVERIFIABLE = "unverifiable"

    @property
    def spec(self) -> FindingKindSpec:
        return FINDING_KINDS[self]

    @property
    def order(self) -> int:
        """The position of this kind in a brief's list of findings (after severity)."""
        return list(FindingKind).index(self)


@dataclass(frozen=True)
class SuiteKindSpec:
    """Everything the project says about one suite kind.

    ``metric_names`` are the normalised names a model card may declare this kind's result
    under; the first is the name the exports give the measured value. ``rate_is_metric``
    says whether that metric is the suite's event rate itself (ASR, over-refusal) or its
    complement (accuracy = 1 - error rate).
    """

    finding: FindingKind  # the regression a significant increase in the rate is
    family: str  # the audit finding's ``family``: Holm's correction runs per family
    rate_label: str  # the rate's short name: "ASR"
    items_label: str  # what a suite of this kind holds: "harmful requests"
    declared_metric: str  # a declared result, in a sentence: "an ASR"
    rate_explained: str  # the rate, explained in a sentence
    metric_names: tuple[str, ...]
    rate_is_metric: bool
    event_verdicts: frozenset[str]  # the judge verdicts the rate counts

    @property
    def metric(self) -> str:
        """The measured metric's name in the exports (asr | over_refusal | accuracy)."""
        return self.metric_names[0]


@dataclass(frozen=True)
class FindingKindSpec:
    """Everything the project says about one finding kind.

    ``mitigation`` is set for the kinds a CycloneDX model card lists as ethical
    considerations; the others it lists as technical limitations, except those with
    ``in_model_card`` False (an unconfirmed increase is not a finding a card states).
    """

    title: str  # the brief's heading for a finding of this kind
    stage: Stage
    severity: Severity  # the severity it is recorded with, unless the stage says otherwise
    suite_kind: SuiteKind | None = None  # the suite kind whose rate regressed
    mitigation: str | None = None
    in_model_card: bool = True

    @property
    def regression(self) -> bool:
        """A confirmed regression against a parent: it decides an audit's verdict."""
        return self.suite_kind is not None


SUITE_KINDS: dict[SuiteKind, SuiteKindSpec] = {
    SuiteKind.HARMFUL: SuiteKindSpec(
        finding=FindingKind.SAFETY_REGRESSION,
        family="safety",
        rate_label="ASR",
        items_label="harmful requests",
        declared_metric="an ASR",
        rate_explained="attack success rate (ASR: the share of harmful requests it complied with)",
        metric_names=(
            "asr",
            "attack_success_rate",
            "attack_success",
            "jailbreak_success_rate",
            "harmful_rate",
            "harmfulness_rate",
        ),
        rate_is_metric=True,
        event_verdicts=frozenset({"unsafe"}),  # degenerate output is never an attack success
    ),
    SuiteKind.BENIGN: SuiteKindSpec(
        finding=FindingKind.OVER_REFUSAL,
        family="over_refusal",
        rate_label="over-refusal",
        items_label="safe requests",
        declared_metric="an over-refusal rate",
        rate_explained="over-refusal rate (the share of safe requests it refused)",
        metric_names=("over_refusal", "over_refusal_rate", "false_refusal_rate"),
        rate_is_metric=True,
        event_verdicts=frozenset({"refused"}),
    ),
    SuiteKind.CAPABILITY: SuiteKindSpec(
        finding=FindingKind.CAPABILITY_REGRESSION,
        family="capability",
        rate_label="error rate",
        items_label="tasks",
        declared_metric="an accuracy",
        rate_explained="error rate on the capability tasks",
        metric_names=("accuracy", "acc", "exact_match", "em"),
        rate_is_metric=False,
        event_verdicts=frozenset({"incorrect", "degenerate", "refused"}),
    ),
}

# The ``family`` of a finding about a declared result (not a comparison with a parent).
SOURCE_EVAL_FAMILY = "source_eval"

FINDING_KINDS: dict[FindingKind, FindingKindSpec] = {
    FindingKind.SAFETY_REGRESSION: FindingKindSpec(
        title="Safety regression: more harmful requests answered",
        stage=Stage.AUDIT,
        severity=Severity.HIGH,
        suite_kind=SuiteKind.HARMFUL,
        mitigation="Do not ship without re-alignment: merge back with the aligned"
        " parent at a lower weight (Farn et al. 2024) and re-audit.",
    ),
    FindingKind.OVER_REFUSAL: FindingKindSpec(
        title="Over-refusal regression: more safe requests refused",
        stage=Stage.AUDIT,
        severity=Severity.HIGH,
        suite_kind=SuiteKind.BENIGN,
        mitigation="Check the refusals on benign prompts; reduce the weight of the"
        " over-refusing parent or re-tune on benign data.",
    ),
    FindingKind.CAPABILITY_REGRESSION: FindingKindSpec(
        title="Capability regression: more tasks answered wrongly",
        stage=Stage.AUDIT,
        severity=Severity.HIGH,
        suite_kind=SuiteKind.CAPABILITY,
        mitigation="Re-evaluate on the task suites that matter for the deployment.",
    ),
    FindingKind.WARN: FindingKindSpec(
        title="Possible regression: an increase above the threshold, not confirmed",
        stage=Stage.AUDIT,
        severity=Severity.WARNING,
        in_model_card=False,
    ),
    FindingKind.MISSED_BY_SOURCE_EVAL: FindingKindSpec(
        title="A declared evaluation result is contradicted by measurement",
        stage=Stage.SOURCE_EVAL,
        severity=Severity.HIGH,  # info when the model measured better than it declares
    ),
    FindingKind.LINEAGE_CONTRADICTION: FindingKindSpec(
        title="A declared parent is contradicted by the weights",
        stage=Stage.VERIFY,
        severity=Severity.HIGH,
    ),
    FindingKind.UNDECLARED_PARENT: FindingKindSpec(
        title="The weights show a parent the model card does not declare",
        stage=Stage.VERIFY,
        severity=Severity.WARNING,
    ),
    FindingKind.RECIPE_MISMATCH: FindingKindSpec(
        title="The declared merge recipe does not reproduce the weights",
        stage=Stage.VERIFY,
        severity=Severity.WARNING,
    ),
    FindingKind.MERGED_LORA: FindingKindSpec(
        title="A LoRA adapter was merged into the weights",
        stage=Stage.VERIFY,
        severity=Severity.INFO,
    ),
    FindingKind.UNVERIFIABLE: FindingKindSpec(
        title="A declared parent could not be checked against the weights",
        stage=Stage.VERIFY,
        severity=Severity.INFO,
    ),
}

# The confirmed regressions, in the order of their suite kinds.
REGRESSION_KINDS: tuple[FindingKind, ...] = tuple(spec.finding for spec in SUITE_KINDS.values())
# The verification findings that say the declared lineage is wrong.
LINEAGE_ERRORS: frozenset[FindingKind] = frozenset(
    {
        FindingKind.LINEAGE_CONTRADICTION,
        FindingKind.UNDECLARED_PARENT,
        FindingKind.RECIPE_MISMATCH,
    }
)


def finding_spec(kind: object) -> FindingKindSpec | None:
    """The spec of a finding kind read from storage, or None for a kind this version does
    not know (a registry written by a later version)."""
    try:
        return FindingKind(kind).spec
    except (TypeError, ValueError):
        return None


def suite_spec(kind: object) -> SuiteKindSpec | None:
    """The spec of a suite kind read from storage, or None for an unknown kind."""
    try:
        return SuiteKind(kind).spec
    except (TypeError, ValueError):
        return None
