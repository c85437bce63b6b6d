"""The audit report as a typed document: what the auditor writes is what the registry loads.

Built from a real audit (tiny chat models, the refusal judge, the registry on disk), not from
a hand-written dict: the document must read every key the auditor emits, keep their order,
and say so plainly when a stored report no longer reads.
"""

from __future__ import annotations

import json

import pytest

from lineage.documents import AUDIT_FORMAT_VERSION, AuditDocument
from registry.errors import RegistryDamagedError
from registry.evaluations import audit_document, latest_audit
from registry.tables import AuditRecord
from tests.support.audit_family import ORG, audit_merge, build_family


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("documents")
    family = build_family(root / "models", root / "registry.db")
    return family, audit_merge(family)


def test_the_document_round_trips_the_auditors_json_byte_for_byte(audited) -> None:
    _, report = audited
    written = report.to_json()
    document = report.to_document()
    assert next(iter(written)) == "format_version"
    assert document.format_version == written["format_version"] == AUDIT_FORMAT_VERSION
    # Same keys, same values, same order: the JSON dump is the public contract.
    assert json.dumps(document.to_json()) == json.dumps(written)
    assert set(document.models) == set(written["models"]) and f"{ORG}/merge" in document.models


def test_the_registry_loads_the_stored_report_typed(audited) -> None:
    family, report = audited
    with family.registry.session(write=False) as session:
        record = latest_audit(session, f"{ORG}/merge")
        assert record is not None
        loaded = audit_document(record)
    assert isinstance(loaded, AuditDocument)
    assert loaded == report.to_document()
    assert [f.kind for f in loaded.findings] == [f["kind"] for f in report.to_json()["findings"]]


def test_a_field_added_later_is_kept_not_dropped(audited) -> None:
    _, report = audited
    newer = {**report.to_json(), "format_version": AUDIT_FORMAT_VERSION + 1, "added": {"x": 1}}
    document = AuditDocument.from_json(newer)
    assert document.to_json()["added"] == {"x": 1}


def test_a_stored_report_that_no_longer_reads_is_damage_named_by_record(audited) -> None:
    family, _ = audited
    with family.registry.session(write=False) as session:
        record = latest_audit(session, f"{ORG}/merge")
        assert record is not None
        broken = AuditRecord(
            id=record.id, repo_id=record.repo_id, report={**record.report, "findings": "nope"}
        )
    with pytest.raises(RegistryDamagedError) as raised:
        audit_document(broken)
    message = str(raised.value)
    assert f"audit record {record.id} of {ORG}/merge" in message and "findings" in message
    assert "\n" not in message
