"""The registry on SQLite and (with LINEAGE_TEST_POSTGRES_URL) PostgreSQL: schema lifecycle,
transactions, snapshots in and out, edges, heads, and recursive walks."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

import registry.queries
import registry.store
from lineage.records import (
    AdapterConfig,
    CardMetadata,
    DeclaredEvaluation,
    Evidence,
    MergeModelEntry,
    MergeRecipe,
    ModelConfigSummary,
    ModelSnapshot,
    ParentLink,
    SafetensorsSummary,
    TensorInfo,
)
from registry import (
    SCHEMA_VERSION,
    Edge,
    MigrationError,
    NotARegistryError,
    Registry,
    RegistryError,
    RegistryUnavailableError,
    SchemaTooNewError,
    ancestors,
    crawl_log,
    descendants,
    finish_crawl,
    get_model,
    known_revisions,
    lineage_subgraph,
    list_crawls,
    list_models,
    log_event,
    mask_url,
    model_details,
    record_failure,
    record_inferred_edge,
    record_snapshot,
    recorded_revision,
    revision_history,
    snapshot_from_revision,
    start_crawl,
)
from registry.crawls import (
    SILENT_CRAWL_IS_STALE_AFTER,
    mark_stale_crawls,
    this_process,
)
from registry.database import MIGRATIONS
from registry.tables import Crawl
from tests.support.databases import BACKENDS, registry_database

UTC = timezone.utc


@pytest.fixture(params=BACKENDS)
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with registry_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def reg(registry_url: str) -> Iterator[Registry]:
    opened = Registry.open(registry_url)
    yield opened
    opened.close()


def sha(n: int) -> str:
    return f"{n:040x}"


def link(parent: str, relation: str = "finetune", **kwargs: object) -> ParentLink:
    evidence = [
        Evidence(source="card.base_model", file="README.md", field="base_model", value=parent)
    ]
    return ParentLink(parent=parent, relation=relation, evidence=evidence, **kwargs)  # type: ignore[arg-type]


def snap(
    repo_id: str, n: int = 1, parents: list[ParentLink] | None = None, **kwargs: object
) -> ModelSnapshot:
    return ModelSnapshot(
        repo_id=repo_id,
        source="hub",
        revision=sha(n),
        parents=parents or [],
        **kwargs,  # type: ignore[arg-type]
    )


def record_graph(reg: Registry, graph: dict[str, list[str]]) -> None:
    """Record one ok revision per child, declaring the listed parents."""
    with reg.session() as session:
        for child, parents in graph.items():
            record_snapshot(session, snap(child, parents=[link(p) for p in parents]))


def assert_one_line(err: BaseException, *must_contain: str) -> None:
    text = str(err)
    assert "\n" not in text
    for part in must_contain:
        assert part in text, f"{part!r} not in {text!r}"


# -- schema lifecycle -------------------------------------------------------------------------


def test_new_database_is_created_stamped_and_reopened(registry_url: str) -> None:
    with Registry.open(registry_url) as reg:
        info = reg.info()
        assert info.schema_version == SCHEMA_VERSION
        assert (info.models, info.revisions, info.edges, info.crawls) == (0, 0, 0, 0)
        assert info.backend == registry_url.split(":")[0].split("+")[0]
        record_graph(reg, {"org/child": ["org/base"]})
    with Registry.open(registry_url) as again:
        info = again.info()
        assert (info.models, info.revisions, info.edges) == (2, 1, 1)
        assert info.path == (
            Path(registry_url.removeprefix("sqlite:///")) if info.backend == "sqlite" else None
        )


def test_default_location_is_env_then_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINEAGE_DB", str(tmp_path / "from-env" / "lineage.db"))
    with Registry.open() as reg:
        assert reg.info().path == tmp_path / "from-env" / "lineage.db"
    monkeypatch.delenv("LINEAGE_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with Registry.open() as reg:
        assert reg.info().path == tmp_path / "data" / "lineage-audit" / "registry.db"
    assert (tmp_path / "data" / "lineage-audit" / "registry.db").is_file()


def _make_version_0(reg: Registry) -> None:
    """Turn a fresh registry into a version-0 layout: no crawl log table, no edge.parent_kind."""
    with reg.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE crawl_event")
        conn.exec_driver_sql("ALTER TABLE edge DROP COLUMN parent_kind")
        conn.exec_driver_sql("UPDATE schema_info SET value = '0' WHERE key = 'schema_version'")


def test_older_schema_is_upgraded_in_place_keeping_its_content(registry_url: str) -> None:
    with Registry.open(registry_url) as reg:
        record_graph(reg, {"org/child": ["org/base"]})
        _make_version_0(reg)
        columns = {c["name"] for c in sa.inspect(reg.engine).get_columns("edge")}
        assert "parent_kind" not in columns
        assert "crawl_event" not in sa.inspect(reg.engine).get_table_names()

    with Registry.open(registry_url) as upgraded:
        assert upgraded.info().schema_version == SCHEMA_VERSION == 5
        inspector = sa.inspect(upgraded.engine)
        assert "crawl_event" in inspector.get_table_names()
        assert "parent_kind" in {c["name"] for c in inspector.get_columns("edge")}
        with upgraded.session() as session:
            revision = recorded_revision(session, "org/child", sha(1))
            assert revision is not None
            parents = snapshot_from_revision(session, revision).parents
            assert [(p.parent, p.parent_kind) for p in parents] == [("org/base", "repo")]
            crawl_id = start_crawl(session, ["org/child"], {})
            log_event(session, crawl_id, repo_id="org/child", level="info", event="e", message="m")
        with upgraded.session(write=False) as session:
            assert [e.message for e in crawl_log(session, crawl_id)] == ["m"]


def test_version_1_gains_the_fingerprint_and_finding_tables(registry_url: str) -> None:
    with Registry.open(registry_url) as reg:
        record_graph(reg, {"org/child": ["org/base"]})
        with reg.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE finding")
            conn.exec_driver_sql("DROP TABLE fingerprint")
            conn.exec_driver_sql("UPDATE schema_info SET value = '1' WHERE key = 'schema_version'")

    with Registry.open(registry_url) as upgraded:
        assert upgraded.info().schema_version == SCHEMA_VERSION
        tables = set(sa.inspect(upgraded.engine).get_table_names())
        assert {"fingerprint", "finding"} <= tables
        with upgraded.session(write=False) as session:
            assert recorded_revision(session, "org/child", sha(1)) is not None


def test_version_2_gains_the_evaluation_tables(registry_url: str) -> None:
    with Registry.open(registry_url) as reg:
        record_graph(reg, {"org/child": ["org/base"]})
        with reg.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE audit_record")
            conn.exec_driver_sql("DROP TABLE evaluation_sample")
            conn.exec_driver_sql("DROP TABLE evaluation_run")
            conn.exec_driver_sql("UPDATE schema_info SET value = '2' WHERE key = 'schema_version'")

    with Registry.open(registry_url) as upgraded:
        assert upgraded.info().schema_version == SCHEMA_VERSION == 5
        tables = set(sa.inspect(upgraded.engine).get_table_names())
        assert {"evaluation_run", "evaluation_sample", "audit_record"} <= tables
        with upgraded.session(write=False) as session:
            assert recorded_revision(session, "org/child", sha(1)) is not None


def test_failed_upgrade_changes_nothing(registry_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with Registry.open(registry_url) as reg:
        _make_version_0(reg)

    def broken_step(conn: sa.Connection) -> None:
        conn.exec_driver_sql("CREATE TABLE half_done (id INTEGER)")
        conn.exec_driver_sql("SELECT * FROM no_such_table")

    monkeypatch.setitem(MIGRATIONS, 0, broken_step)
    with pytest.raises(MigrationError) as caught:
        Registry.open(registry_url)
    assert_one_line(caught.value, "schema version 0 to 1", "nothing was changed")
    monkeypatch.undo()
    engine = sa.create_engine(registry_url)
    try:
        with engine.connect() as conn:
            assert "half_done" not in sa.inspect(conn).get_table_names()
            version = conn.exec_driver_sql(
                "SELECT value FROM schema_info WHERE key = 'schema_version'"
            ).scalar_one()
            assert version == "0"
    finally:
        engine.dispose()
    with Registry.open(registry_url) as reg:  # the real step still works afterwards
        assert reg.info().schema_version == SCHEMA_VERSION


def test_newer_schema_is_refused_untouched(registry_url: str) -> None:
    with Registry.open(registry_url) as reg, reg.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE schema_info SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(SchemaTooNewError) as caught:
        Registry.open(registry_url)
    assert_one_line(
        caught.value, "schema version 99", "upgrade lineage-audit", mask_url(registry_url)
    )


def test_foreign_database_is_refused(registry_url: str) -> None:
    engine = sa.create_engine(registry_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    finally:
        engine.dispose()
    with pytest.raises(NotARegistryError) as caught:
        Registry.open(registry_url)
    assert_one_line(caught.value, "not a lineage registry", "customers", "LINEAGE_DB")


def test_schema_info_of_another_application_is_refused(registry_url: str) -> None:
    with Registry.open(registry_url) as reg, reg.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE schema_info SET value = 'someone-else' WHERE key = 'application'"
        )
    with pytest.raises(NotARegistryError) as caught:
        Registry.open(registry_url)
    assert_one_line(caught.value, "someone-else")


def test_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    with pytest.raises(NotARegistryError) as caught:
        Registry.open(f"sqlite:///{path}")
    assert_one_line(caught.value, "not a SQLite database", str(path))
    assert path.read_bytes().startswith(b"these are my notes")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://auditor:s3cret@127.0.0.1:1/lineage", "cannot use the database"),
        ("postgresql://auditor:s3cret@127.0.0.1:1/lineage", "cannot use the database"),
        ("mysql://auditor:s3cret@127.0.0.1/lineage", "not supported"),
        ("postgresql+psycopg://auditor:s3cret@host:port/lineage", "not a database URL"),
    ],
)
def test_unreachable_database_is_one_line_without_password(url: str, expected: str) -> None:
    with pytest.raises(RegistryUnavailableError) as caught:
        Registry.open(url)
    assert_one_line(caught.value, expected, "auditor:***@")
    assert "s3cret" not in str(caught.value)


def test_directory_as_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(RegistryUnavailableError) as caught:
        Registry.open(f"sqlite:///{tmp_path}")
    assert_one_line(caught.value, "is a directory")


def test_mask_url() -> None:
    assert (
        mask_url("postgresql+psycopg://u:p%40ss@h:5432/db")
        == "postgresql+psycopg://u:***@h:5432/db"
    )
    assert mask_url("postgresql://h/db?user=u&password=x&sslmode=require") == (
        "postgresql://h/db?user=u&password=***&sslmode=require"
    )
    assert mask_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


# -- transactions -----------------------------------------------------------------------------


def test_failed_write_leaves_prior_content_intact(reg: Registry) -> None:
    record_graph(reg, {"org/child": ["org/base"]})
    with pytest.raises(RuntimeError, match="crawler crashed"), reg.session() as session:
        record_snapshot(session, snap("org/child", 2, parents=[link("org/other")]))
        record_failure(session, "org/base", source="hub", status="gated", reason="gated")
        raise RuntimeError("crawler crashed")
    with pytest.raises(sa.exc.IntegrityError), reg.session() as session:
        record_snapshot(session, snap("org/child", 3, parents=[link("org/third")]))
        session.add(Edge(child_revision_id=10_000, parent_model_id=10_000))  # no such rows
        session.flush()

    with reg.session(write=False) as session:
        assert [r.sha for r in revision_history(session, "org/child")] == [sha(1)]
        assert ancestors(session, "org/child") == [("org/base", 1)]
        assert [m.repo_id for m in list_models(session)] == ["org/base", "org/child"]
        base = get_model(session, "org/base")
        assert base is not None and base.status == "pending"
    assert reg.info().edges == 1


def test_readers_in_other_threads_see_committed_state_while_a_write_is_open(reg: Registry) -> None:
    record_graph(reg, {"org/child": ["org/base"]})
    seen: list[list[tuple[str, int]]] = []

    def read() -> None:
        with reg.session(write=False) as session:
            seen.append(ancestors(session, "org/child"))

    with reg.session() as session:
        record_snapshot(session, snap("org/child", 2, parents=[link("org/new-base")]))
        reader = threading.Thread(target=read)
        reader.start()
        reader.join(timeout=20)
        assert not reader.is_alive()
    read()
    assert seen == [[("org/base", 1)], [("org/new-base", 1)]]


def test_a_rolled_back_savepoint_forgets_the_model_ids_it_looked_up(reg: Registry) -> None:
    # The writer keeps the model ids it looked up in the session; rows inserted inside a
    # savepoint that is rolled back must not be taken for recorded afterwards.
    with reg.session() as session:
        savepoint = session.begin_nested()
        record_snapshot(session, snap("org/child", parents=[link("org/base")]))
        savepoint.rollback()
        record_snapshot(session, snap("org/child", parents=[link("org/base")]))
    with reg.session(write=False) as session:
        assert [m.repo_id for m in list_models(session)] == ["org/base", "org/child"]
        assert ancestors(session, "org/child") == [("org/base", 1)]


def test_only_the_writers_sessions_get_the_rollback_listener(reg: Registry) -> None:
    # The listener is attached to the sessions that keep model ids, never to every Session
    # of the process (that would reach other libraries' sessions too).
    forget = registry.store._forget_model_ids
    assert not sa.event.contains(Session, "after_soft_rollback", forget)
    with Session(reg.engine) as plain:
        plain.exec(select(Crawl)).all()
        assert not sa.event.contains(plain, "after_soft_rollback", forget)
    with reg.session() as session:
        record_snapshot(session, snap("org/child"))
        assert sa.event.contains(session, "after_soft_rollback", forget)
    assert not sa.event.contains(Session, "after_soft_rollback", forget)


# -- snapshots --------------------------------------------------------------------------------


def rich_snapshot() -> ModelSnapshot:
    card = CardMetadata(
        base_models=["org/base", "org/other"],
        base_model_relation="merge",
        tags=["merge", "mergekit"],
        license="apache-2.0",
        library_name="transformers",
        datasets=["org/data"],
        pipeline_tag="text-generation",
        evaluations=[
            DeclaredEvaluation(
                task_type="text-generation",
                task_name="Text Generation",
                dataset_type="cais/mmlu",
                dataset_name="MMLU",
                dataset_config="all",
                dataset_split="test",
                metric_type="acc",
                metric_name="accuracy",
                metric_value=61.5,
                verified=False,
                source_name="Open LLM Leaderboard",
                source_url="https://example.org/lb",
            )
        ],
        mergekit_yaml="merge_method: slerp\n",
        front_matter={
            "license": "apache-2.0",
            "model-index": [{"name": "m"}],
            "nested": {"a": [1, 2.5, None]},
        },
    )
    recipe = MergeRecipe(
        merge_method="slerp",
        base_model="org/base",
        models=[
            MergeModelEntry(reference="org/base", parameters={}),
            MergeModelEntry(reference="org/other+org/lora", parameters={"t": [0.0, 0.5, 1.0]}),
        ],
        slices=None,
        dtype="bfloat16",
        parameters={"t": 0.5},
        tokenizer_source="base",
        source_file="mergekit_config.yml",
        raw={"merge_method": "slerp", "parameters": {"t": 0.5}},
    )
    tensors = {
        "model.embed_tokens.weight": TensorInfo("BF16", (128, 64), "model.safetensors", (0, 16384)),
        "model.norm.weight": TensorInfo("F32", (64,), "model.safetensors", (16384, 16640)),
    }
    return ModelSnapshot(
        repo_id="org/merged",
        source="hub",
        revision=sha(7),
        requested_revision="main",
        card=card,
        config=ModelConfigSummary(
            name_or_path="org/base",
            architectures=["LlamaForCausalLM"],
            model_type="llama",
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=128,
            vocab_size=128,
            max_position_embeddings=256,
            torch_dtype="bfloat16",
            quantization_config={"quant_method": "bitsandbytes", "load_in_4bit": True},
        ),
        mergekit=recipe,
        adapter=AdapterConfig(
            base_model_name_or_path="org/base",
            peft_type="LORA",
            task_type="CAUSAL_LM",
            r=8,
            lora_alpha=16.0,
            target_modules=["q_proj", "v_proj"],
        ),
        safetensors=SafetensorsSummary(
            files=["model.safetensors"], tensors=tensors, metadata={"format": "pt"}
        ),
        relation="merge",
        parents=[
            ParentLink(
                parent="org/base",
                relation="merge",
                revision="abc123",
                evidence=[
                    Evidence(
                        source="mergekit_config",
                        file="mergekit_config.yml",
                        field="base_model",
                        value="org/base",
                    ),
                    Evidence(
                        source="card.base_model",
                        file="README.md",
                        field="base_model",
                        value="org/base",
                    ),
                ],
                merge_method="slerp",
                role="base",
                t=[0.0, 0.5, 1.0],
                parameters={"t": [0.0, 0.5, 1.0]},
            ),
            ParentLink(
                parent="org/other",
                relation="merge",
                lora="org/lora",
                evidence=[
                    Evidence(
                        source="mergekit_config",
                        file="mergekit_config.yml",
                        field="models[1].model",
                        value="org/other+org/lora",
                        detail="with LoRA",
                    )
                ],
                merge_method="slerp",
                weight=0.3,
                density=[0.5, 0.7],
                parameters={"weight": 0.3, "density": [0.5, 0.7]},
            ),
            ParentLink(
                parent="./checkpoints/sft",
                parent_kind="local_path",
                relation="unknown",
                evidence=[
                    Evidence(
                        source="config._name_or_path",
                        file="config.json",
                        field="_name_or_path",
                        value="./checkpoints/sft",
                    )
                ],
            ),
            ParentLink(parent="not a repo!", parent_kind="invalid", relation="unknown"),
        ],
        tags=["merge", "base_model:org/base"],
        files=["README.md", "config.json", "mergekit_config.yml", "model.safetensors"],
        has_gguf=True,
        pickle_only=False,
        created_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        last_modified=datetime(2024, 6, 2, 8, 0, tzinfo=timezone(timedelta(hours=2))),
        hub_parameter_count=8256,
        warnings=["README.md: two base_model keys"],
    )


def test_snapshot_round_trip(reg: Registry) -> None:
    original = rich_snapshot()
    with reg.session() as session:
        crawl_id = start_crawl(session, [original.repo_id], {})
        record_snapshot(session, original, crawl_id=crawl_id)
    with reg.session(write=False) as session:
        revision = recorded_revision(session, "org/merged", sha(7))
        assert revision is not None
        assert revision.parameter_count == 128 * 64 + 64
        assert revision.crawl_id == crawl_id
        rebuilt = snapshot_from_revision(session, revision)
        local = get_model(session, "./checkpoints/sft")
        invalid = get_model(session, "not a repo!")
    assert rebuilt == dataclasses.replace(original, unchanged=True)
    assert rebuilt.last_modified is not None and rebuilt.last_modified.tzinfo == UTC
    assert local is not None and (local.source, local.status) == ("reference", "missing")
    assert invalid is not None and invalid.status == "missing"


def test_unchanged_snapshot_is_not_rewritten(reg: Registry) -> None:
    with reg.session() as session:
        record_snapshot(session, rich_snapshot())
    with reg.session() as session:
        revision = recorded_revision(session, "org/merged", sha(7))
        assert revision is not None
        again = snapshot_from_revision(session, revision)
        assert record_snapshot(session, again) is revision
    with reg.session(write=False) as session:
        assert snapshot_from_revision(session, revision) == again


def test_hostile_strings_and_values_are_storable(reg: Registry) -> None:
    card = CardMetadata(
        license="mit\x00",
        front_matter={
            "date": datetime(2024, 1, 1).date(),
            "score": math.nan,
            "big": math.inf,
            "nul": "a\x00b",
            "surrogate": "x\udcffy",
            1: {"set": {"b", "a"}},
        },
    )
    hostile = snap(
        "org/hostile", card=card, status_reason=None, warnings=["line one\nline two\x00"]
    )
    with reg.session() as session:
        record_snapshot(session, hostile)
    with reg.session(write=False) as session:
        revision = recorded_revision(session, "org/hostile", sha(1))
        assert revision is not None
        front = revision.card["front_matter"] if revision.card else {}
    assert revision.license == "mit"
    assert revision.warnings == ["line one line two"]
    assert front["date"] == "2024-01-01"
    assert (front["score"], front["big"], front["nul"]) == ("nan", "inf", "ab")
    assert front["surrogate"] == "x?y"
    assert front["1"] == {"set": ["a", "b"]}


def test_huge_parent_name_is_bounded_and_stable(reg: Registry) -> None:
    huge = "x" * 100_000
    with reg.session() as session:
        record_snapshot(session, snap("org/a", parents=[link(huge, parent_kind="invalid")]))
        record_snapshot(session, snap("org/b", parents=[link(huge, parent_kind="invalid")]))
    with reg.session(write=False) as session:
        [(parent, depth)] = ancestors(session, "org/a")
        assert depth == 1 and len(parent) <= 512
        assert ancestors(session, "org/b") == [(parent, 1)]


# -- edges and heads --------------------------------------------------------------------------


def test_re_recording_replaces_declared_edges_and_keeps_inferred_ones(reg: Registry) -> None:
    with reg.session() as session:
        child = record_snapshot(session, snap("org/child", parents=[link("org/a"), link("org/b")]))
        assert child is not None
        weights = Evidence(source="weights", declared=False, detail="residual 0.01")
        record_inferred_edge(
            session,
            child,
            ParentLink(parent="org/c", relation="merge", evidence=[weights], confidence=0.9),
        )
        record_inferred_edge(
            session,
            child,
            ParentLink(parent="org/a", relation="finetune", evidence=[weights], confidence=0.8),
        )
        b_edge = session.exec(
            select(Edge).where(Edge.child_revision_id == child.id, col(Edge.declared).is_(True))
        ).all()
        b_edge_id = next(e.id for e in b_edge if e.position == 1)

    with reg.session() as session:
        record_snapshot(session, snap("org/child", parents=[link("org/b", "merge"), link("org/d")]))

    with reg.session(write=False) as session:
        nodes, edges = lineage_subgraph(session, ["org/child", "org/a", "org/b", "org/c", "org/d"])
        kept_b = session.exec(select(Edge).where(Edge.id == b_edge_id)).one()
        revision = recorded_revision(session, "org/child", sha(1))
        assert revision is not None
        declared = snapshot_from_revision(session, revision).parents
    summary = sorted((e.parent, e.declared, e.relation, e.confidence) for e in edges)
    assert summary == [
        ("org/a", False, "finetune", 0.8),
        ("org/b", True, "merge", None),
        ("org/c", False, "merge", 0.9),
        ("org/d", True, "finetune", None),
    ]
    assert kept_b.relation == "merge"  # the same row, updated in place
    assert [p.parent for p in declared] == ["org/b", "org/d"]
    inferred_c = next(e for e in edges if e.parent == "org/c")
    assert inferred_c.evidence == [weights.to_dict()]
    assert {n.repo_id for n in nodes} == {"org/child", "org/a", "org/b", "org/c", "org/d"}


def test_two_links_to_one_parent_become_one_edge_with_all_evidence(reg: Registry) -> None:
    first = link("org/base", "merge", lora="org/lora-a")
    second = ParentLink(
        parent="org/base",
        relation="merge",
        lora="org/lora-b",
        evidence=[Evidence(source="mergekit_config", value="org/base+org/lora-b")],
    )
    with reg.session() as session:
        record_snapshot(session, snap("org/merged", parents=[first, second]))
    with reg.session(write=False) as session:
        _, [edge] = lineage_subgraph(session, ["org/merged", "org/base"])
    assert edge.lora == "org/lora-a"
    assert [e["source"] for e in edge.evidence] == ["card.base_model", "mergekit_config"]


def test_failed_fetch_after_a_good_revision_keeps_the_head(reg: Registry) -> None:
    with reg.session() as session:
        record_snapshot(session, snap("org/m", 1, parents=[link("org/base")]))
    with reg.session() as session:
        failed = snap("org/m", 2, status="error", status_reason="config.json: not JSON")
        record_snapshot(session, failed)
    with reg.session(write=False) as session:
        model = get_model(session, "org/m")
        assert model is not None
        assert (model.status, model.status_reason) == ("error", "config.json: not JSON")
        assert model.revision == sha(1)
        assert [(r.sha, r.status) for r in revision_history(session, "org/m")] == [
            (sha(1), "ok"),
            (sha(2), "error"),
        ]
        assert recorded_revision(session, "org/m", sha(2)) is None
        assert ancestors(session, "org/m") == [("org/base", 1)]

    with reg.session() as session:  # re-reading the good sha fails: its content stays
        record_snapshot(session, snap("org/m", 1, status="error", status_reason="timeout"))
        record_snapshot(
            session,
            ModelSnapshot(repo_id="org/m", source="hub", status="missing", status_reason="404"),
        )
        record_failure(session, "org/m", source="hub", status="gated", reason="accept the terms")
        record_failure(session, "org/never-seen", source="hub", status="private", reason="401")
    with reg.session(write=False) as session:
        good = recorded_revision(session, "org/m", sha(1))
        assert good is not None and good.status == "ok"
        model = get_model(session, "org/m")
        assert model is not None and (model.status, model.revision) == ("gated", sha(1))
        unseen = get_model(session, "org/never-seen")
        assert unseen is not None and (unseen.status, unseen.revision) == ("private", None)
        assert ancestors(session, "org/m") == [("org/base", 1)]


def test_first_revision_becomes_head_even_when_failed(reg: Registry) -> None:
    with reg.session() as session:
        record_snapshot(session, snap("org/m", 1, status="error", status_reason="bad card"))
    with reg.session() as session:
        record_snapshot(session, snap("org/m", 2))
    with reg.session(write=False) as session:
        model = get_model(session, "org/m")
        assert model is not None and model.revision == sha(2)


def test_naming_a_crawled_model_as_parent_does_not_downgrade_it(reg: Registry) -> None:
    with reg.session() as session:
        record_snapshot(session, snap("org/base", card=CardMetadata(license="mit")))
        record_snapshot(session, snap("org/child", parents=[link("org/base")]))
    with reg.session(write=False) as session:
        base = get_model(session, "org/base")
    assert base is not None
    assert (base.source, base.status, base.revision, base.license) == (
        "hub",
        "ok",
        sha(1),
        "mit",
    )


def test_unknown_status_is_a_bug(reg: Registry) -> None:
    with pytest.raises(ValueError, match="pending"), reg.session() as session:
        record_snapshot(session, snap("org/m", status="pending"))


# -- walks ------------------------------------------------------------------------------------

DIAMOND = {
    "org/a": ["org/root"],
    "org/b": ["org/root"],
    "org/merge": ["org/a", "org/b"],
    "org/leaf": ["org/merge"],
    "org/shortcut": ["org/root", "org/merge"],  # reachable from root at depths 1 and 3
}


def test_ancestors_and_descendants_of_a_diamond(reg: Registry) -> None:
    record_graph(reg, DIAMOND)
    with reg.session(write=False) as session:
        assert ancestors(session, "org/leaf") == [
            ("org/merge", 1),
            ("org/a", 2),
            ("org/b", 2),
            ("org/root", 3),
        ]
        assert descendants(session, "org/root") == [
            ("org/a", 1),
            ("org/b", 1),
            ("org/shortcut", 1),
            ("org/merge", 2),
            ("org/leaf", 3),
        ]
        assert ancestors(session, "org/leaf", max_depth=2) == [
            ("org/merge", 1),
            ("org/a", 2),
            ("org/b", 2),
        ]
        assert descendants(session, "org/root", max_depth=0) == []
        assert ancestors(session, "org/root") == []
        assert ancestors(session, "org/not-recorded") == []


def test_walks_end_on_cycles_and_self_loops(reg: Registry) -> None:
    record_graph(
        reg,
        {
            "org/x": ["org/z"],
            "org/y": ["org/x"],
            "org/z": ["org/y"],
            "org/tail": ["org/z"],
            "org/self": ["org/self", "org/x"],
        },
    )
    with reg.session(write=False) as session:
        assert ancestors(session, "org/x") == [("org/z", 1), ("org/y", 2)]
        assert descendants(session, "org/x") == [
            ("org/self", 1),
            ("org/y", 1),
            ("org/z", 2),
            ("org/tail", 3),
        ]
        assert ancestors(session, "org/tail") == [("org/z", 1), ("org/y", 2), ("org/x", 3)]
        assert ancestors(session, "org/self") == [("org/x", 1), ("org/z", 2), ("org/y", 3)]
        assert descendants(session, "org/self") == []


def test_walk_depth_is_bounded_internally(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    chain = {f"org/m{i}": [f"org/m{i - 1}"] for i in range(1, 9)}
    record_graph(reg, chain)
    monkeypatch.setattr(registry.queries, "MAX_DEPTH", 5)
    with reg.session(write=False) as session:
        assert [d for _, d in ancestors(session, "org/m8")] == [1, 2, 3, 4, 5]
        assert [d for _, d in ancestors(session, "org/m8", max_depth=100)] == [1, 2, 3, 4, 5]
        assert descendants(session, "org/m0", max_depth=3) == [
            ("org/m1", 1),
            ("org/m2", 2),
            ("org/m3", 3),
        ]


def test_walks_follow_head_revisions_only(reg: Registry) -> None:
    with reg.session() as session:
        record_snapshot(session, snap("org/m", 1, parents=[link("org/old-base")]))
        record_snapshot(session, snap("org/m", 2, parents=[link("org/new-base")]))
    with reg.session(write=False) as session:
        assert ancestors(session, "org/m") == [("org/new-base", 1)]
        assert descendants(session, "org/old-base") == []
        assert descendants(session, "org/new-base") == [("org/m", 1)]
        assert [r.sha for r in revision_history(session, "org/m")] == [sha(1), sha(2)]
        _, edges = lineage_subgraph(session, ["org/m", "org/old-base", "org/new-base"])
        assert [(e.parent, e.child_revision) for e in edges] == [("org/new-base", sha(2))]


def test_revision_history_is_in_crawl_order(reg: Registry) -> None:
    with reg.session() as session:
        for n in (5, 3, 9):
            record_snapshot(session, snap("org/m", n))
        record_snapshot(session, snap("org/m", 3))  # re-recorded: keeps its place
    with reg.session(write=False) as session:
        assert [r.sha for r in revision_history(session, "org/m")] == [sha(5), sha(3), sha(9)]
        assert revision_history(session, "org/unknown") == []
        model = get_model(session, "org/m")
        assert model is not None and (model.revisions, model.revision) == (3, sha(3))


def test_subgraph_nodes_and_edges_carry_what_a_graph_needs(reg: Registry) -> None:
    original = rich_snapshot()
    with reg.session() as session:
        record_snapshot(session, original)
        record_snapshot(session, snap("org/base", 4, parents=[link("org/root")]))
    with reg.session(write=False) as session:
        nodes, edges = lineage_subgraph(
            session, ["org/merged", "org/base", "org/other", "org/absent"]
        )
    assert [n.repo_id for n in nodes] == ["org/base", "org/merged", "org/other"]
    merged = nodes[1]
    assert (merged.revision, merged.architecture, merged.model_type) == (
        sha(7),
        "LlamaForCausalLM",
        "llama",
    )
    assert (merged.license, merged.relation, merged.parameter_count) == (
        "apache-2.0",
        "merge",
        8256,
    )
    assert merged.declared_evaluations[0]["metric_value"] == 61.5
    assert merged.created_at == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert nodes[2].status == "pending" and nodes[2].revision is None
    # org/root is outside the set; the local-path and invalid parents too.
    assert [(e.parent, e.child) for e in edges] == [
        ("org/base", "org/merged"),
        ("org/other", "org/merged"),
    ]
    base_edge, other_edge = edges
    assert (base_edge.role, base_edge.t, base_edge.parent_revision) == (
        "base",
        [0.0, 0.5, 1.0],
        "abc123",
    )
    assert (other_edge.weight, other_edge.density, other_edge.lora) == (0.3, [0.5, 0.7], "org/lora")
    assert [e["source"] for e in base_edge.evidence] == ["mergekit_config", "card.base_model"]
    assert other_edge.parameters == {"weight": 0.3, "density": [0.5, 0.7]}


def test_model_list_details_and_known_revisions(reg: Registry) -> None:
    with reg.session() as session:
        record_snapshot(session, snap("org/m", 1, parents=[link("org/a")]))
        record_snapshot(session, snap("org/m", 2, parents=[link("org/b"), link("org/a")]))
        record_snapshot(session, snap("org/m", 3, status="error", status_reason="bad card"))
        child = record_snapshot(session, snap("org/kid", parents=[link("org/m", "merge")]))
        assert child is not None
        record_inferred_edge(session, child, ParentLink(parent="org/b", confidence=0.5))
    with reg.session(write=False) as session:
        known = known_revisions(session)
        rows = {row.repo_id: row for row in list_models(session)}
        details = model_details(session, "org/m")
        assert model_details(session, "org/absent") is None
    assert known == {"org/m": frozenset({sha(1), sha(2)}), "org/kid": frozenset({sha(1)})}
    assert rows["org/m"].parents == ["org/b", "org/a"]
    assert rows["org/kid"].parents == ["org/m"]  # the inferred edge is not a declared parent
    assert (rows["org/m"].revision, rows["org/m"].revisions) == (sha(2), 3)
    assert rows["org/b"].to_dict()["first_seen"] == rows["org/b"].first_seen.isoformat()
    assert details is not None
    assert (details["status"], details["revision"]) == ("error", sha(2))
    assert [(p["parent"], p["declared"]) for p in details["parents"]] == [
        ("org/b", True),
        ("org/a", True),
    ]
    assert details["parents"][0]["evidence"][0]["source"] == "card.base_model"
    assert [(c["child"], c["relation"]) for c in details["children"]] == [("org/kid", "merge")]
    assert [(r["sha"], r["status"]) for r in details["revisions"]] == [
        (sha(1), "ok"),
        (sha(2), "ok"),
        (sha(3), "error"),
    ]
    assert isinstance(details["revisions"][0]["crawled_at"], str)
    info = reg.info().to_dict()
    assert (info["models"], info["revisions"], info["edges"]) == (4, 4, 5)


# -- the crawl log ----------------------------------------------------------------------------


def test_crawl_log_records_runs_without_secrets(reg: Registry) -> None:
    with reg.session() as session:
        crawl_id = start_crawl(
            session,
            ["org/a"],
            {
                "depth": 3,
                "hf_token": "hf_abcdefghijklmnop",
                "headers": {"Authorization": "Bearer x"},
            },
        )
        log_event(
            session,
            crawl_id,
            repo_id="org/a",
            level="warning",
            event="retry",
            message="429 from hub\nretrying with hf_abcdefghijklmnop",
            revision=sha(1),
        )
        log_event(session, crawl_id, repo_id=None, level="info", event="done", message="1 node")
        finish_crawl(session, crawl_id, "ok", nodes_ok=1, problems=1)
    with reg.session(write=False) as session:
        [crawl] = list_crawls(session)
        events = crawl_log(session, crawl_id)
    assert crawl.status == "ok" and (crawl.nodes_ok, crawl.problems) == (1, 1)
    assert crawl.finished_at is not None and crawl.finished_at >= crawl.started_at
    options = dict(crawl.options)
    assert options.pop("process") == this_process()  # who runs it: see the stale-crawl tests
    assert options == {"depth": 3, "hf_token": "***", "headers": {"Authorization": "***"}}
    assert [(e.level, e.event, e.revision) for e in events] == [
        ("warning", "retry", sha(1)),
        ("info", "done", None),
    ]
    assert events[0].message == "429 from hub retrying with hf_***"
    with pytest.raises(ValueError), reg.session() as session:
        log_event(session, crawl_id, repo_id=None, level="debug", event="x", message="y")


_OPEN_A_CRAWL_AND_HANG = """
import sys, time
from registry.database import Registry
from registry.crawls import start_crawl
with Registry.open(sys.argv[1]) as reg:
    with reg.session() as session:
        crawl_id = start_crawl(session, ["org/a"], {"depth": 1})
    print(crawl_id, flush=True)
    time.sleep(120)
"""


def test_a_crawl_killed_mid_run_is_marked_interrupted_on_the_next_start(
    registry_url: str, reg: Registry
) -> None:
    # issue 11: a crawl killed mid-run stayed "running" for ever
    root = Path(__file__).resolve().parent.parent
    child = subprocess.Popen(
        [sys.executable, "-c", _OPEN_A_CRAWL_AND_HANG, registry_url],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        killed_id = int(child.stdout.readline())
        with reg.session() as session:
            assert mark_stale_crawls(session) == []  # its process still runs: left alone
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    with reg.session() as session:
        next_id = start_crawl(session, ["org/b"], {})
    with reg.session(write=False) as session:
        status = {crawl.id: crawl.status for crawl in list_crawls(session)}
        events = crawl_log(session, killed_id)
    assert status == {killed_id: "interrupted", next_id: "running"}
    assert [(e.level, e.event) for e in events] == [("warning", "interrupted")]
    assert f"process {child.pid} on " in events[0].message


def test_only_crawls_whose_process_is_certainly_gone_are_marked(reg: Registry) -> None:
    me = this_process()
    recorded = {
        "alive": me,
        "other_host": me | {"host": me["host"] + "-elsewhere", "pid": 2**22 + 1},
        "pid_reused": me | {"started": "another-boot:1"},  # same pid, another process
        "legacy": None,  # opened before processes were recorded: nothing to go by
    }
    ids = {}
    with reg.session() as session:
        for name in recorded:
            ids[name] = start_crawl(session, [f"org/{name}"], {})
        for crawl in session.exec(select(Crawl)).all():
            name = next(n for n, i in ids.items() if i == crawl.id)
            options = dict(crawl.options)
            if recorded[name] is None:
                options.pop("process")
            else:
                options["process"] = recorded[name]
            crawl.options = options
        session.flush()
        assert mark_stale_crawls(session) == [ids["pid_reused"]]
        assert mark_stale_crawls(session) == []  # once only
    with reg.session(write=False) as session:
        status = {crawl.id: crawl.status for crawl in list_crawls(session)}
    assert status[ids["pid_reused"]] == "interrupted"
    assert {status[ids[n]] for n in ("alive", "other_host", "legacy")} == {"running"}

    # A process that cannot be asked (another host, none recorded) is taken to have stopped
    # once its crawl has logged nothing for SILENT_CRAWL_IS_STALE_AFTER; one of this host
    # that still runs never is.
    with reg.session() as session:
        elsewhere = session.get(Crawl, ids["other_host"])
        elsewhere.started_at -= SILENT_CRAWL_IS_STALE_AFTER + timedelta(minutes=1)
        log_event(session, ids["legacy"], repo_id="org/x", level="info", event="ok", message="")
        session.flush()
        assert mark_stale_crawls(session) == [ids["other_host"]]
        last_line = max(e.at for e in crawl_log(session, ids["legacy"]))
        almost = last_line + SILENT_CRAWL_IS_STALE_AFTER - timedelta(minutes=1)
        assert mark_stale_crawls(session, now=almost) == []
        later = almost + timedelta(minutes=2)
        assert mark_stale_crawls(session, now=later) == [ids["legacy"]]
        assert mark_stale_crawls(session, now=later + timedelta(days=30)) == []
    with reg.session(write=False) as session:
        status = {crawl.id: crawl.status for crawl in list_crawls(session)}
        why = [e.message for e in crawl_log(session, ids["other_host"]) if e.level == "warning"]
    assert status[ids["alive"]] == "running"
    assert status[ids["other_host"]] == status[ids["legacy"]] == "interrupted"
    assert "-elsewhere logged nothing since" in why[0] and "over 6 h" in why[0]


def test_registry_errors_share_one_base() -> None:
    for error in (RegistryUnavailableError, NotARegistryError, SchemaTooNewError, MigrationError):
        assert issubclass(error, RegistryError)
    assert str(RegistryUnavailableError("down\nnow", url="sqlite:///x")) == "sqlite:///x: down now"
