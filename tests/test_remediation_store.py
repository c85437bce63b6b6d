"""Each remediation run is recorded: written ``running``, then ``done`` with its document or
``failed`` with its reason; ``latest_remediation`` reads back exactly what the sweep decided.

The document is a real sweep's (``run_sweep`` over a family whose truth is known) and the
revisions are two tiny chat models crawled from a local tree, on SQLite and, where a server
is configured, PostgreSQL.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from audit.suites.builtin import load_builtin
from lineage.crawler import CrawlOptions, crawl
from lineage.documents.remediation import BudgetDoc, RemediationDocument
from lineage.example import write_card
from lineage.remediate.sweep import PointEvents, run_sweep
from lineage.sources.local import LocalSource
from registry.database import SCHEMA_VERSION, Registry, check_registry
from registry.errors import RegistryDamagedError
from registry.remediations import (
    fail_remediation,
    finish_remediation,
    latest_remediation,
    start_remediation,
    unfinished_remediations,
)
from registry.tables import Model, Remediation, Revision
from testkit.chat_models import save_chat_model
from tests.support.databases import BACKENDS, registry_database

ORG = "rem"
FINETUNE, ALIGNED = f"{ORG}/helpful", f"{ORG}/aligned"
N = 40
SUITES = [
    {"name": "harmful", "kind": "harmful", "hash": "a" * 64},
    {"name": "capability", "kind": "capability", "hash": "b" * 64},
    {"name": "benign", "kind": "benign", "hash": "c" * 64},
]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("remediation-store")
    write_card(save_chat_model(root / ORG / "aligned", seed=1), {"license": "mit"}, "# al\n")
    write_card(
        save_chat_model(root / ORG / "helpful", seed=2),
        {"base_model": ALIGNED, "base_model_relation": "finetune"},
        "# ft\n",
    )
    return root


@pytest.fixture(scope="module")
def document() -> RemediationDocument:
    """A real sweep: unsafe from λ = 0.6 on, task accuracy growing with λ; each point names
    the evaluation runs behind it."""

    def evaluate(lam: float) -> PointEvents:
        base = int(lam * 1000)
        return PointEvents(
            harmful=[lam >= 0.6 and i % 2 == 0 for i in range(N)],
            task=[i < int(N * (0.4 + 0.5 * lam)) for i in range(N)],
            benign=[lam < 0.1 and i < 4 for i in range(N)],
            run_ids={"harmful": base + 1, "capability": base + 2, "benign": base + 3},
        )

    return run_sweep(evaluate, finetune=FINETUNE, aligned=ALIGNED, lambdas=[0.25, 0.5, 0.75])


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Path, models: Path) -> Iterator[Registry]:
    with registry_database(request.param, tmp_path) as url, Registry.open(url) as opened:
        report = crawl(opened, LocalSource(models), [FINETUNE], CrawlOptions())
        assert report.ok, report.problems
        yield opened


def _head(session: Session, repo_id: str) -> Revision:
    model = session.exec(select(Model).where(Model.repo_id == repo_id)).one()
    revision = session.get(Revision, model.head_revision_id)
    assert revision is not None
    return revision


def _start(registry: Registry, **overrides) -> int:
    with registry.session() as session:
        fields = {"method": "linear", "suites": SUITES, "budget": BudgetDoc()}
        row = start_remediation(
            session, _head(session, FINETUNE), _head(session, ALIGNED), **{**fields, **overrides}
        )
        assert row.id is not None
        return row.id


def _stored_text(registry: Registry, row_id: int) -> dict[str, str]:
    """The JSON columns of ``row_id`` as the database holds them (text, not parsed)."""
    columns = ("suites", "budget", "document")
    casts = ", ".join(f"CAST({name} AS TEXT)" for name in columns)
    with registry.engine.connect() as conn:
        row = conn.execute(sa.text(f"SELECT {casts} FROM remediation WHERE id = {row_id}")).one()
    return dict(zip(columns, row, strict=True))


def _strict(text: str) -> object:
    def refuse(constant: str) -> object:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_finished_run_reads_back_exactly_what_the_sweep_decided(registry, document) -> None:
    assert document.recommended is not None and document.recommended.lam == 0.5
    row_id = _start(registry)
    with registry.session(write=False) as session:
        found = latest_remediation(session, FINETUNE)
        unfinished = unfinished_remediations(session, FINETUNE, ALIGNED)
    assert found is not None
    running, no_document = found
    assert (running.id, running.status, no_document) == (row_id, "running", None)
    assert running.finished_at is None and running.document is None
    assert [row.id for row in unfinished] == [row_id]

    with registry.session() as session:
        finish_remediation(session, row_id, document, model_dir="out/model", output_sha256="d" * 64)
    with registry.session(write=False) as session:
        found = latest_remediation(session, FINETUNE, ALIGNED)
        assert unfinished_remediations(session, FINETUNE, ALIGNED) == []
        finetune, aligned = _head(session, FINETUNE), _head(session, ALIGNED)
    assert found is not None
    row, stored = found
    assert isinstance(stored, RemediationDocument)
    assert stored.to_json() == document.to_json()
    assert [point.run_ids for point in stored.sweep] == [point.run_ids for point in document.sweep]
    assert (row.finetune_revision_id, row.aligned_revision_id) == (finetune.id, aligned.id)
    assert (row.finetune_repo_id, row.aligned_repo_id) == (FINETUNE, ALIGNED)
    assert (row.status, row.status_reason, row.method) == ("done", None, "linear")
    assert row.suites == SUITES and row.budget == {"delta": 0.05, "max_asr": None}
    assert row.format_version == document.format_version
    assert (row.model_dir, row.output_sha256) == ("out/model", "d" * 64)
    assert row.finished_at is not None and row.finished_at.tzinfo is not None
    assert row.finished_at >= row.created_at

    raw = _stored_text(registry, row_id)
    assert _strict(raw["document"]) == document.to_json()
    assert _strict(raw["suites"]) == SUITES
    # A second sweep of the pair is the latest; the first stays on record.
    second = _start(registry)
    with registry.session(write=False) as session:
        latest = latest_remediation(session, FINETUNE)
        done = latest_remediation(session, FINETUNE, status="done")
        other = latest_remediation(session, FINETUNE, "org/someone-else")
        nobody = latest_remediation(session, ALIGNED)
    assert latest is not None and latest[0].id == second and latest[1] is None
    assert done is not None and done[0].id == row_id and done[1] == stored
    assert other is None and nobody is None


def test_a_failed_run_keeps_its_reason_and_no_document(registry) -> None:
    row_id = _start(registry)
    with registry.session() as session:
        fail_remediation(session, row_id, "the disk filled\n while writing λ = 0.5")
    with registry.session(write=False) as session:
        found = latest_remediation(session, FINETUNE, ALIGNED)
        assert latest_remediation(session, FINETUNE, status="done") is None
        assert unfinished_remediations(session, FINETUNE, ALIGNED) == []
    assert found is not None
    row, stored = found
    assert stored is None and row.document is None
    assert (row.status, row.status_reason) == ("failed", "the disk filled while writing λ = 0.5")
    assert row.finished_at is not None
    with registry.session() as session, pytest.raises(ValueError, match="already failed"):
        fail_remediation(session, row_id, "again")


def test_an_interrupted_sweep_stays_running_beside_the_one_that_resumed_it(
    registry, document
) -> None:
    interrupted = _start(registry)  # killed before it finished: nothing ever closes it
    resumed = _start(registry)
    with registry.session() as session:
        finish_remediation(session, resumed, document)
    with registry.session(write=False) as session:
        left = unfinished_remediations(session, FINETUNE, ALIGNED)
        found = latest_remediation(session, FINETUNE)
    assert [(row.id, row.status) for row in left] == [(interrupted, "running")]
    assert found is not None and found[0].id == resumed
    assert found[1] is not None and found[1].to_json() == document.to_json()
    assert found[0].model_dir is None and found[0].output_sha256 is None


def test_a_document_of_another_pair_or_a_finished_row_is_refused(registry, document) -> None:
    row_id = _start(registry)
    other = document.model_copy(update={"aligned": "org/other"})
    with registry.session() as session, pytest.raises(ValueError, match="org/other"):
        finish_remediation(session, row_id, other)
    with registry.session() as session:
        finish_remediation(session, row_id, document)
    with registry.session() as session, pytest.raises(ValueError, match="already done"):
        finish_remediation(session, row_id, document)
    with registry.session() as session, pytest.raises(ValueError, match="no remediation"):
        fail_remediation(session, row_id + 100, "gone")


def test_suites_are_taken_from_objects_and_must_name_their_hash(registry) -> None:
    harmful = load_builtin("harmful")
    row_id = _start(registry, suites=[harmful], budget={"delta": None, "max_asr": 0.2})
    with registry.session(write=False) as session:
        row = session.get(Remediation, row_id)
    assert row is not None
    assert row.suites == [{"name": harmful.name, "kind": "harmful", "hash": harmful.content_hash}]
    assert row.budget == {"delta": None, "max_asr": 0.2}
    with pytest.raises(ValueError, match="hash"):
        _start(registry, suites=[{"name": "x", "kind": "harmful"}])


def test_a_stored_document_that_no_longer_reads_is_damage_named_by_repo(registry, document) -> None:
    row_id = _start(registry)
    with registry.session() as session:
        row = finish_remediation(session, row_id, document)
        row.document = {**row.document, "sweep": "not a list"}
        session.add(row)
    with registry.session(write=False) as session, pytest.raises(RegistryDamagedError) as raised:
        latest_remediation(session, FINETUNE)
    message = str(raised.value)
    assert FINETUNE in message and f"remediation {row_id}" in message
    assert "sweep" in message and "lineage registry check" in message and "\n" not in message


def test_a_non_finite_number_is_stored_as_json_and_reads_back(registry, document) -> None:
    point = document.sweep[1].model_copy(update={"budget_bound": math.inf, "asr": math.nan})
    odd = document.model_copy(update={"sweep": [document.sweep[0], point, *document.sweep[2:]]})
    row_id = _start(registry)
    with registry.session() as session:
        finish_remediation(session, row_id, odd)
    stored_json = _strict(_stored_text(registry, row_id)["document"])
    assert isinstance(stored_json, dict)
    assert stored_json["sweep"][1]["asr"] == "nan"
    with registry.session(write=False) as session:
        found = latest_remediation(session, FINETUNE)
    assert found is not None and found[1] is not None
    back = found[1].sweep[1]
    assert math.isnan(back.asr) and back.budget_bound == math.inf


def test_deleting_a_revision_deletes_its_remediations(registry, document) -> None:
    kept = _start(registry)
    with registry.session() as session:
        finish_remediation(session, kept, document)
        aligned = _head(session, ALIGNED).id
    with registry.engine.begin() as conn:
        conn.execute(
            sa.text(
                f"UPDATE model SET head_revision_id = NULL WHERE id IN"
                f" (SELECT model_id FROM revision WHERE id = {aligned})"
            )
        )
        conn.execute(sa.text(f"DELETE FROM revision WHERE id = {aligned}"))
    with registry.session(write=False) as session:
        assert session.exec(select(Remediation)).all() == []
        assert latest_remediation(session, FINETUNE) is None
        assert _head(session, FINETUNE) is not None  # the other end is untouched


def test_a_version_4_registry_gains_the_remediation_table_keeping_its_content(
    registry, document
) -> None:
    url = registry.engine.url.render_as_string(hide_password=False)
    with registry.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE remediation")
        conn.exec_driver_sql("UPDATE schema_info SET value = '4' WHERE key = 'schema_version'")
    registry.engine.dispose()
    with Registry.open(url) as upgraded:
        assert upgraded.info().schema_version == SCHEMA_VERSION == 5
        assert "remediation" in sa.inspect(upgraded.engine).get_table_names()
        with upgraded.session(write=False) as session:
            assert session.exec(select(Remediation)).all() == []
            assert latest_remediation(session, FINETUNE) is None
            assert _head(session, FINETUNE) is not None and _head(session, ALIGNED) is not None
        row_id = _start(upgraded)
        with upgraded.session() as session:
            finish_remediation(session, row_id, document)
        with upgraded.session(write=False) as session:
            found = latest_remediation(session, FINETUNE)
        assert found is not None and found[1] is not None
        assert found[1].to_json() == document.to_json()
    assert check_registry(url).ok


def test_registry_check_reads_the_remediation_table(registry, document) -> None:
    if registry.backend != "sqlite":
        pytest.skip("PostgreSQL checks types as it stores; only SQLite's values are read back")
    row_id = _start(registry)
    with registry.session() as session:
        finish_remediation(session, row_id, document)
    path = registry.path
    assert path is not None
    registry.engine.dispose()
    assert check_registry(str(path)).ok
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE remediation SET document = '{broken', finished_at = 'yesterday'")
    assert check_registry(str(path)).problems == [
        f"values: remediation.document: 1 value(s) cannot be read (first in row {row_id})",
        f"values: remediation.finished_at: 1 value(s) cannot be read (first in row {row_id})",
    ]
