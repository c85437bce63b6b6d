"""The brief reads the stored audit as an ``AuditDocument`` and each stored verify report as
a ``VerifyReport``: the sections read attributes, never the stored JSON's keys.

The audit's finding numbers and options are document fields now (they were extra keys): the
JSON dump keeps every key, in the auditor's order, and a report that omits an option reads
with the audit's own default from ``lineage.thresholds``.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from lineage.documents.audit import AuditDocument, FindingDoc, OptionsDoc
from lineage.report.context import assemble_context
from lineage.report.inputs import audit_suites, load_brief_inputs
from lineage.thresholds import DEFAULT_ALPHA, DEFAULT_DELTA
from registry.evaluations import audit_document
from tests.support.audit_family import ORG, audit_merge, build_family


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("typed-inputs")
    family = build_family(root / "models", root / "registry.db")
    return family, audit_merge(family)


def test_a_regression_findings_numbers_are_fields_dumped_in_the_auditors_order() -> None:
    written = {
        "kind": "safety_regression",
        "model": "org/child",
        "against": "org/parent",
        "suite": "harmful-mini",
        "delta": 0.25,
        "ci": [0.1, 0.4],
        "p_value": 0.01,
        "detail": "why",
        "family": "safety",
        "adjusted_p": 0.02,
        "severity": "high",
        "suite_hash": "abc",
        "child_rate": 0.5,
        "parent_rate": 0.25,
        "n": 40,
        "b": 12,
        "c": 2,
        "test": "mcnemar-exact",
        "mdd": 0.3,
        "sensitivity_outcome": None,
        "later": {"kept": True},
    }
    finding = FindingDoc.model_validate(written)
    assert (finding.child_rate, finding.parent_rate, finding.n, finding.b, finding.c) == (
        0.5,
        0.25,
        40,
        12,
        2,
    )
    assert finding.mdd == 0.3 and finding.declared is None and finding.measured is None
    assert json.dumps(finding.to_json()) == json.dumps(written)
    assert finding.details == written


def test_a_source_eval_finding_keeps_its_declared_and_measured_values() -> None:
    written = {
        "kind": "missed_by_source_eval",
        "model": "org/child",
        "against": None,
        "suite": "harmful-mini",
        "delta": 0.5,
        "ci": [0.3, 0.7],
        "p_value": 0.001,
        "detail": "card declares asr 0.000",
        "family": "source_eval",
        "adjusted_p": None,
        "severity": "high",
        "suite_hash": "abc",
        "declared": 0.0,
        "measured": 0.5,
    }
    finding = FindingDoc.model_validate(written)
    assert (finding.declared, finding.measured, finding.b, finding.child_rate) == (
        0.0,
        0.5,
        None,
        None,
    )
    assert json.dumps(finding.to_json()) == json.dumps(written)


def test_options_left_out_read_as_the_audits_defaults_and_are_not_dumped() -> None:
    options = OptionsDoc.model_validate({"seed": 3})
    assert (options.delta, options.alpha) == (DEFAULT_DELTA, DEFAULT_ALPHA)
    assert options.suites == [] and options.generation.max_new_tokens is None
    assert options.to_json() == {"seed": 3}


def test_the_brief_inputs_hold_the_typed_documents(audited) -> None:
    family, report = audited
    inputs = load_brief_inputs(family.registry, f"{ORG}/merge")
    assert inputs.record is not None and isinstance(inputs.document, AuditDocument)
    assert inputs.document == audit_document(inputs.record)
    assert inputs.document.to_json() == inputs.record.report
    written = report.to_json()["options"]["suites"]
    assert [s.to_json() for s in audit_suites(inputs.document)] == written
    assert inputs.members[0] == f"{ORG}/merge"
    assert all(repo in inputs.document.models for repo in inputs.members)
    for check in inputs.verifications.values():
        assert check.data == check.report.to_dict()
        assert check.findings == list(check.report.findings)


def test_the_sections_read_the_document_not_the_stored_json(audited) -> None:
    family, _ = audited
    inputs = load_brief_inputs(family.registry, f"{ORG}/merge")
    assert inputs.record is not None
    emptied = inputs.record.model_copy(update={"report": {}, "options": {}})
    assert emptied.report == {}
    typed_only = replace(inputs, record=emptied)
    assert assemble_context(typed_only) == assemble_context(inputs)
