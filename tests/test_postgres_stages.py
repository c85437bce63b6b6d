"""The verify and audit stages on a real PostgreSQL server give what they give on SQLite.

Fingerprint blobs, findings, inferred edges, evaluation runs, samples and audit records
are written and read through both backends from the same inputs; the reports must be
equal field by field. Skipped without ``LINEAGE_TEST_POSTGRES_URL`` (``.ci/run`` sets it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import func, select

from audit.auditor import AuditOptions, audit
from audit.judges import get_judge
from lineage.crawler import CrawlOptions, crawl
from lineage.sources.local import LocalSource
from lineage.verify import verify
from registry.database import Registry
from registry.evaluations import latest_audit
from registry.tables import EvaluationRun, EvaluationSample, Finding, Fingerprint
from registry.weights import load_fingerprint
from tests.support.audit_family import ORG, SETTINGS, SUITES, build_family
from tests.support.databases import fresh_postgres_database, skip_without_postgres
from tests.support.weight_zoo import WeightZoo

pytestmark = pytest.mark.postgres

VERIFIED_ROLES = ("merge_linear", "merge_slerp", "hidden_merge", "wrong_parent", "impostor")


def _verify_reports(registry: Registry, zoo: WeightZoo) -> dict[str, dict]:
    roots = [zoo.repo_id(role) for role in zoo.roles]
    report = crawl(registry, LocalSource(zoo.root), roots, CrawlOptions(workers=2))
    assert report.ok or all("truncated" in p.message for p in report.problems)
    return {role: verify(registry, zoo.repo_id(role)).to_dict() for role in VERIFIED_ROLES}


def test_verify_on_postgres_equals_sqlite(weight_zoo: WeightZoo, tmp_path: Path) -> None:
    base = skip_without_postgres()
    with Registry.open(f"sqlite:///{tmp_path / 'registry.db'}") as lite:
        expected = _verify_reports(lite, weight_zoo)
        with lite.session() as session:
            lite_counts = (
                session.exec(select(func.count()).select_from(Fingerprint)).one(),
                session.exec(select(func.count()).select_from(Finding)).one(),
            )
    with fresh_postgres_database(base) as url, Registry.open(url) as pg:
        assert _verify_reports(pg, weight_zoo) == expected
        with pg.session() as session:
            counts = (
                session.exec(select(func.count()).select_from(Fingerprint)).one(),
                session.exec(select(func.count()).select_from(Finding)).one(),
            )
            assert counts == lite_counts
            row = session.exec(select(Fingerprint)).first()
            fingerprint = load_fingerprint(session, row.revision_id, row.method)
            assert fingerprint is not None and fingerprint.blob() == bytes(row.values)


def _audit_json(registry: Registry, root: Path) -> dict:
    report = audit(
        registry,
        LocalSource(root),
        f"{ORG}/merge",
        SUITES,
        get_judge("refusal"),
        SETTINGS,
        AuditOptions(bootstrap_resamples=300),
    )
    data = report.to_json()
    for model in data["models"].values():  # run ids differ between databases; nothing else
        for suite in model["suites"].values():
            suite.pop("run_id")
    return data


def test_audit_on_postgres_equals_sqlite(tmp_path: Path) -> None:
    base = skip_without_postgres()
    lite_family = build_family(tmp_path / "models", tmp_path / "registry.db")
    expected = _audit_json(lite_family.registry, lite_family.root)
    with fresh_postgres_database(base) as url, Registry.open(url) as pg:
        crawl(
            pg,
            LocalSource(lite_family.root),
            [f"{ORG}/base"],
            CrawlOptions(descendants=True, fingerprint=False),
        )
        assert _audit_json(pg, lite_family.root) == expected
        again = _audit_json(pg, lite_family.root)  # cached: same result, no new runs
        assert {s["reused"] for m in again["models"].values() for s in m["suites"].values()} == {
            "run"
        }
        with pg.session() as session:
            assert session.exec(select(func.count()).select_from(EvaluationRun)).one() == 12
            samples = session.exec(select(func.count()).select_from(EvaluationSample)).one()
            assert samples == 4 * sum(len(s) for s in SUITES)
            record = latest_audit(session, f"{ORG}/merge")
            assert record is not None
            assert json.loads(json.dumps(record.report["findings"])) == json.loads(
                json.dumps(again["findings"])
            )
