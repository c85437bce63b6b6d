"""verify stores its whole report; ``latest_verification`` reads back what verify returned.

Round trips use real reports of the weight zoo (confirmed parents, exact and estimated
merges, inferred parents, a merged LoRA, an adapter), on SQLite and, where a server is
configured, PostgreSQL.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from lineage.crawler import CrawlOptions, crawl
from lineage.documents.verify import MergeEstimate
from lineage.sources.local import LocalSource
from lineage.verify import FORMAT_VERSION, VerifyReport, latest_verification, verify
from registry.database import SCHEMA_VERSION, Registry
from registry.errors import RegistryDamagedError
from registry.findings import findings_for
from registry.tables import Revision, Verification
from registry.verifications import save_verification
from tests.support.databases import BACKENDS, registry_database
from tests.support.weight_zoo import WeightZoo

ROUND_TRIP_ROLES = [
    "merge_linear",
    "merge_slerp",
    "merge_ties",
    "merge_dare",
    "merge_recipe_lie",
    "hidden_merge",
    "wrong_parent",
    "orphan_ft",
    "lora_merged",
    "lora_adapter",
    "other_arch",
]
# The keys of `lineage verify --json` before the report was typed: never renamed or dropped.
CONTRACT_KEYS = {
    "repo",
    "revision",
    "declared",
    "inferred",
    "merge",
    "merged_lora",
    "declared_merge",
    "findings",
    "fingerprint",
}


@pytest.fixture(scope="module")
def family(weight_zoo: WeightZoo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    path = tmp_path_factory.mktemp("verification-store") / "registry.db"
    registry = Registry.open(f"sqlite:///{path}")
    roots = [weight_zoo.repo_id(role) for role in weight_zoo.roles]
    report = crawl(registry, LocalSource(weight_zoo.root), roots, CrawlOptions(descendants=True))
    assert report.ok, report.problems
    yield registry
    registry.close()


@pytest.mark.parametrize("role", ROUND_TRIP_ROLES)
def test_the_stored_report_is_the_one_verify_returned(family, weight_zoo, role) -> None:
    repo = weight_zoo.repo_id(role)
    report = verify(family, repo)
    with family.session(write=False) as session:
        stored = latest_verification(session, repo)
        rows = findings_for(session, repo, stage="verify")
    assert isinstance(stored, VerifyReport)
    assert stored.to_dict() == report.to_dict()
    assert stored.format_version == FORMAT_VERSION
    assert CONTRACT_KEYS | {"format_version"} <= set(stored.to_dict())
    # The findings carry the details the registry's finding rows hold (what the brief shows).
    assert [(f.kind, f.severity, f.related_repo_id, f.message, f.details) for f in rows] == [
        (f.kind, f.severity, f.related_repo_id, f.message, f.details) for f in stored.findings
    ]


def test_confirmed_parents_and_the_recovered_recipe_are_kept(family, weight_zoo) -> None:
    repo = weight_zoo.repo_id("merge_linear")
    verify(family, repo)
    with family.session(write=False) as session:
        stored = latest_verification(session, repo)
    assert stored is not None
    truth = weight_zoo.truth["merge_linear"]
    assert {v.parent: v.status for v in stored.declared} == {
        parent: "confirmed" for parent in truth.coefficients
    }
    assert isinstance(stored.merge, MergeEstimate) and stored.merge.exact
    assert stored.merge.coefficients == pytest.approx(dict(truth.coefficients), abs=0.02)
    assert stored.fingerprint is not None and stored.fingerprint.values > 0
    assert stored.findings == []


def test_a_merged_lora_keeps_its_parent(family, weight_zoo) -> None:
    repo = weight_zoo.repo_id("lora_merged")
    verify(family, repo)
    with family.session(write=False) as session:
        stored = latest_verification(session, repo)
    assert stored is not None and stored.merged_lora is not None
    assert stored.merged_lora_parent == weight_zoo.repo_id("base")
    assert stored.merged_lora.modules == ["q_proj", "v_proj"]


def test_a_re_run_replaces_the_report_and_a_dry_run_stores_none(family, weight_zoo) -> None:
    repo = weight_zoo.repo_id("ft_b")
    verify(family, repo, write=False)
    with family.session(write=False) as session:
        assert latest_verification(session, repo) is None
    first = verify(family, repo)
    second = verify(family, repo)
    with family.session(write=False) as session:
        rows = session.exec(select(Verification)).all()
        stored = latest_verification(session, repo, revision=second.revision)
        other = latest_verification(session, repo, revision="0" * 40)
    assert first.to_dict() == second.to_dict()
    assert stored is not None and stored.to_dict() == second.to_dict()
    assert other is None
    assert len({row.revision_id for row in rows}) == len(rows)  # one report per revision


def test_a_stored_report_that_no_longer_reads_is_damage_named_by_repo(family, weight_zoo) -> None:
    repo = weight_zoo.repo_id("ft_a")
    report = verify(family, repo)
    with family.session() as session:
        row = session.exec(select(Verification).order_by(col(Verification.id).desc())).first()
        assert row is not None
        row.report = {**row.report, "declared": "not a list"}
        session.add(row)
    try:
        with family.session(write=False) as session, pytest.raises(RegistryDamagedError) as raised:
            latest_verification(session, repo)
        message = str(raised.value)
        assert repo in message and "declared" in message and "\n" not in message
    finally:
        verify(family, repo)  # the module's registry is shared: store a good report again
    with family.session(write=False) as session:
        assert latest_verification(session, repo).to_dict() == report.to_dict()


def test_a_report_read_back_validates_its_own_dump() -> None:
    report = VerifyReport.model_validate(
        {
            "repo": "org/m",
            "revision": "a" * 40,
            "declared": [
                {
                    "parent": "org/p",
                    "status": "confirmed",
                    "score": 0.98765,
                    "reason": "r",
                    "relation": "finetune",
                    "z": 40.5,
                    "reference": None,
                }
            ],
            "merge": {
                "method": "ties",
                "coefficients": {"org/p": 0.5},
                "t": None,
                "residual": 0.0123456,
                "density": {"org/p": math.nan},
                "unchanged_fraction": 0.4,
            },
            "some_future_field": 1,
        }
    )
    assert report.declared[0].details == {"z": 40.5, "reference": None}
    dumped = report.to_dict()
    assert dumped["declared"][0]["score"] == 0.9877 and dumped["declared"][0]["z"] == 40.5
    assert "reference" in dumped["declared"][0]
    assert dumped["merge"]["residual"] == 0.0123 and dumped["merge"]["unchanged_fraction"] == 0.4
    assert not report.merge.exact  # type: ignore[union-attr]
    again = VerifyReport.model_validate(dumped).to_dict()
    assert math.isnan(again["merge"]["density"]["org/p"])
    again["merge"]["density"] = dumped["merge"]["density"]
    assert again == dumped


# -- both backends --------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with registry_database(request.param, tmp_path) as url:
        yield url


def test_round_trip_on_each_backend_with_nan_values(registry_url, weight_zoo) -> None:
    roles = ("base", "ft_a", "ft_b", "merge_linear")
    with Registry.open(registry_url) as registry:
        roots = [weight_zoo.repo_id(role) for role in roles]
        crawled = crawl(registry, LocalSource(weight_zoo.root), roots, CrawlOptions())
        assert crawled.ok, crawled.problems
        repo = weight_zoo.repo_id("merge_linear")
        report = verify(registry, repo)
        with registry.session(write=False) as session:
            stored = latest_verification(session, repo)
        assert stored is not None and stored.to_dict() == report.to_dict()

        # A fit can hold NaN (a density nothing measured) and inf (no residual scale).
        odd = report.model_copy(deep=True)
        assert odd.merge is not None
        odd.merge.density = {"org/p": math.nan}
        odd.merge.residual = math.inf
        with registry.session() as session:
            revision = session.exec(
                select(Verification.revision_id).order_by(col(Verification.id))
            ).first()
            save_verification(session, session.get(Revision, revision), odd)
        with registry.session(write=False) as session:
            back = latest_verification(session, repo)
        assert back is not None and back.merge is not None
        assert math.isnan(back.merge.density["org/p"]) and back.merge.residual == math.inf


def test_a_version_3_registry_gains_the_verification_table(registry_url) -> None:
    with Registry.open(registry_url) as registry, registry.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE verification")
        conn.exec_driver_sql("UPDATE schema_info SET value = '3' WHERE key = 'schema_version'")
    with Registry.open(registry_url) as upgraded:
        assert upgraded.info().schema_version == SCHEMA_VERSION == 5
        with upgraded.session(write=False) as session:
            assert session.exec(select(Verification)).all() == []
            assert latest_verification(session, "org/none") is None
