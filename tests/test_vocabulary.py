"""The vocabulary: every suite kind and finding kind the stages use has one spec, and the
enums read and write exactly the strings the registry and the JSON contracts hold."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from audit.errors import SuiteError
from audit.records import EVENT_VERDICTS
from audit.source_evals import METRICS
from audit.suites import load_suite
from lineage.vocabulary import (
    FINDING_KINDS,
    LINEAGE_ERRORS,
    REGRESSION_KINDS,
    FindingKind,
    Severity,
    Stage,
    SuiteKind,
    finding_spec,
    suite_spec,
)
from lineage.vocabulary import (
    SUITE_KINDS as SUITE_KIND_SPECS,
)
from registry.findings import FINDING_SEVERITIES

ROOT = Path(__file__).resolve().parent.parent
EMITTERS = {  # the modules that create findings, and the stages they record them under
    "audit/auditor.py": {Stage.AUDIT, Stage.SOURCE_EVAL},
    "lineage/verify/verifier.py": {Stage.VERIFY},
}


def test_the_suite_kinds_are_the_kinds_the_suites_loader_accepts(tmp_path: Path) -> None:
    assert {
        kind: SuiteKind(kind).spec.event_verdicts for kind in SUITE_KIND_SPECS
    } == EVENT_VERDICTS
    for kind in SuiteKind:
        assert load_suite(kind.value).kind == kind  # each kind has its built-in suite
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt,answer\nWhat is 2+2?,4\n", encoding="utf-8")
    for kind in SuiteKind:  # a plain file takes any kind, spelled as the enum's value
        assert load_suite(f"{kind.value}:{prompts}").kind is kind
    with pytest.raises(SuiteError, match="unknown suite kind 'harmless'"):
        load_suite(str(prompts), kind="harmless")  # type: ignore[arg-type]


def test_every_kind_has_a_spec() -> None:
    assert set(SUITE_KIND_SPECS) == set(SuiteKind)
    assert set(FINDING_KINDS) == set(FindingKind)
    for kind in FindingKind:
        assert kind.spec.title and kind.spec.title[0].isupper()
        assert kind.spec.severity in Severity


def test_each_suite_kind_regresses_into_its_own_finding_kind() -> None:
    for kind in SuiteKind:
        finding = kind.spec.finding
        assert finding.spec.regression and finding.spec.suite_kind == kind
        assert finding.spec.stage == Stage.AUDIT and finding.spec.severity == Severity.HIGH
        assert finding.spec.mitigation, f"{finding} needs a mitigation for the model card"
    assert tuple(k for k in FindingKind if k.spec.regression) == REGRESSION_KINDS
    assert len({kind.spec.family for kind in SuiteKind}) == len(SuiteKind)  # Holm per family


def _is_kind(node: ast.expr) -> bool:
    """``x.kind`` or ``x["kind"]``."""
    if isinstance(node, ast.Attribute):
        return node.attr == "kind"
    return isinstance(node, ast.Subscript) and getattr(node.slice, "value", None) == "kind"


def _finding_kinds_named(path: str) -> tuple[set[str], set[str]]:
    """The ``FindingKind`` members a module names, and the string literals it gives or
    compares a ``kind`` with (which should be none: kinds are named through the enum)."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    named = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "FindingKind"
    }
    spelled: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "kind":
            values = [node.value]
        elif isinstance(node, ast.Compare) and any(map(_is_kind, [node.left, *node.comparators])):
            values = [node.left, *node.comparators]
        else:
            continue
        spelled |= {v.value for v in values if isinstance(v, ast.Constant)}
    return named, spelled


def _emitted(path: str) -> set[FindingKind]:
    """The finding kinds a module can record; the auditor's regressions are named through
    the suite kinds' specs."""
    named, spelled = _finding_kinds_named(path)
    assert not spelled, f"{path} spells finding kinds as strings: {sorted(spelled)}"
    kinds = {FindingKind[name] for name in named}
    return kinds | set(REGRESSION_KINDS) if path == "audit/auditor.py" else kinds


@pytest.mark.parametrize("path", sorted(EMITTERS))
def test_the_kinds_a_stage_emits_are_specified_for_that_stage(path: str) -> None:
    emitted = _emitted(path)
    assert emitted
    for kind in emitted:
        assert kind.spec.stage in EMITTERS[path], f"{kind} is recorded by {kind.spec.stage}"


def test_every_specified_kind_is_emitted_by_some_stage() -> None:
    assert set().union(*(_emitted(path) for path in EMITTERS)) == set(FindingKind)


def test_only_an_unconfirmed_increase_stays_off_the_model_card() -> None:
    assert [k for k in FindingKind if not k.spec.in_model_card] == [FindingKind.WARN]
    assert {k for k in FindingKind if k.spec.mitigation} == set(REGRESSION_KINDS)
    assert all(kind.spec.stage == Stage.VERIFY for kind in LINEAGE_ERRORS)


def test_a_declared_metric_name_reads_as_its_suite_kind() -> None:
    """The card's metric names, and the name the exports give a measured rate."""
    assert METRICS["asr"] == ("harmful", True)
    assert METRICS["false_refusal_rate"] == ("benign", True)
    assert METRICS["accuracy"] == ("capability", False)  # accuracy = 1 - error rate
    assert [kind.spec.metric for kind in SuiteKind] == ["asr", "over_refusal", "accuracy"]
    for name, (kind, direct) in METRICS.items():
        assert name in SuiteKind(kind).spec.metric_names
        assert direct == SuiteKind(kind).spec.rate_is_metric


def test_members_are_their_strings_in_storage_and_json() -> None:
    data = {FindingKind.SAFETY_REGRESSION: [SuiteKind.HARMFUL, Stage.SOURCE_EVAL, Severity.HIGH]}
    assert json.dumps(data) == '{"safety_regression": ["harmful", "audit-source-eval", "high"]}'
    assert f"{FindingKind.RECIPE_MISMATCH}" == "recipe_mismatch"
    assert {"warn": 1}[FindingKind.WARN] == 1 and FindingKind("warn") is FindingKind.WARN


def test_a_kind_this_version_does_not_know_has_no_spec() -> None:
    assert finding_spec("a_later_kind") is None and finding_spec(None) is None
    assert suite_spec("multilingual") is None and suite_spec(["harmful"]) is None
    assert finding_spec("unverifiable") is FindingKind.UNVERIFIABLE.spec
    assert suite_spec("benign") is SuiteKind.BENIGN.spec


def test_severities_rank_most_severe_first() -> None:
    assert sorted(Severity, key=lambda s: s.rank) == [
        Severity.HIGH,
        Severity.WARNING,
        Severity.INFO,
    ]
    assert FINDING_SEVERITIES == ("info", "warning", "high")
    assert all(type(s) is str for s in FINDING_SEVERITIES)
