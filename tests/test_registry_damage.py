"""A damaged registry (issue 11): truncated, overwritten pages, a lost column, undecodable
values, a read-only file. Each is a one-line ``RegistryError`` naming the registry, never a
traceback or a silent success; ``check_registry`` says what is wrong and writes nothing."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from lineage.records import CardMetadata, ModelSnapshot
from registry import Registry, list_models, model_details, record_snapshot
from registry.database import SCHEMA_VERSION, check_registry
from registry.errors import RegistryDamagedError, RegistryError
from tests.support.databases import BACKENDS, registry_database

pytestmark = pytest.mark.timeout(60)


def _snapshot(repo_id: str) -> ModelSnapshot:
    return ModelSnapshot(
        repo_id=repo_id, source="local", revision="a" * 40, card=CardMetadata(license="mit")
    )


def _filled(path: Path, models: int = 40) -> Path:
    """A registry file with some rows, checkpointed so the whole content is in the file."""
    with Registry.open(f"sqlite:///{path}") as reg, reg.session() as session:
        for n in range(models):
            record_snapshot(session, _snapshot(f"org/model-{n}"))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")
    return path


def _one_line(err: BaseException, *needles: str) -> None:
    text = str(err)
    assert "\n" not in text
    for needle in needles:
        assert needle in text, text


def test_sound_registry_checks_clean(tmp_path: Path) -> None:
    path = _filled(tmp_path / "good.db")
    result = check_registry(str(path))
    assert result.ok and result.problems == [] and result.schema_version == SCHEMA_VERSION


def test_truncated_file_is_refused_on_open_and_check(tmp_path: Path) -> None:
    path = _filled(tmp_path / "truncated.db")
    with open(path, "r+b") as handle:
        handle.truncate(8192)
    with pytest.raises(RegistryDamagedError) as caught:
        Registry.open(str(path))
    _one_line(caught.value, "truncated.db", "lineage registry check")
    result = check_registry(str(path))
    assert not result.ok and any("malformed" in line for line in result.problems)


def test_overwritten_pages_are_found_by_quick_check(tmp_path: Path) -> None:
    path = _filled(tmp_path / "pages.db", models=200)
    size = path.stat().st_size
    page = 4096
    with open(path, "r+b") as handle:
        for number in range(2, size // page):
            handle.seek(number * page + 100)
            handle.write(b"\xa5" * 700)
    with pytest.raises(RegistryDamagedError) as caught:
        Registry.open(str(path))
    _one_line(caught.value, "pages.db", "lineage registry check")
    before = path.read_bytes()
    result = check_registry(str(path))
    assert not result.ok
    assert path.read_bytes() == before  # the check writes nothing


def test_undecodable_values_name_the_registry_and_the_check(tmp_path: Path) -> None:
    path = _filled(tmp_path / "values.db", models=2)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE revision SET license = CAST(x'ff41' AS TEXT)")
    reg = Registry.open(str(path))
    try:
        with pytest.raises(RegistryDamagedError) as caught, reg.session(write=False) as session:
            list_models(session)
        _one_line(caught.value, "values.db", "lineage registry check")
    finally:
        reg.close()

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE revision SET license = 'mit', card = '{broken'")
    reg = Registry.open(str(path))
    try:
        with pytest.raises(RegistryDamagedError) as caught, reg.session(write=False) as session:
            model_details(session, "org/model-0")
        _one_line(caught.value, "values.db", "could not be read", "lineage registry check")
    finally:
        reg.close()


def test_a_value_error_of_the_caller_is_not_called_damage(tmp_path: Path) -> None:
    reg = Registry.open(str(tmp_path / "fine.db"))
    try:
        with pytest.raises(ValueError, match="mine"), reg.session() as session:
            list_models(session)
            raise ValueError("mine")
    finally:
        reg.close()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anyway")
def test_read_only_file_is_one_line(tmp_path: Path) -> None:
    path = _filled(tmp_path / "ro.db", models=1)
    path.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(RegistryError) as caught:
            Registry.open(str(path))
        _one_line(caught.value, "ro.db")
    finally:
        tmp_path.chmod(0o755)
        path.chmod(0o644)


def test_read_only_connection_refuses_writes_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs as root too: SQLite's own read-only mode stands in for file permissions."""
    path = _filled(tmp_path / "ro.db", models=1)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    # Refused while opening (switching to WAL mode writes) or at the first write.
    with pytest.raises(RegistryError) as caught, Registry.open(url) as reg, reg.session() as s:
        record_snapshot(s, _snapshot("org/another"))
    _one_line(caught.value, "ro.db", "cannot be written", "readonly")


@pytest.fixture(params=BACKENDS)
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with registry_database(request.param, tmp_path) as url:
        yield url


def test_lost_column_stamped_current_is_refused_on_both_backends(registry_url: str) -> None:
    with Registry.open(registry_url) as reg:
        with reg.session() as session:
            record_snapshot(session, _snapshot("org/model"))
        with reg.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE revision DROP COLUMN license"))
    with pytest.raises(RegistryDamagedError) as caught:
        Registry.open(registry_url)
    _one_line(caught.value, "revision lacks column(s) license", "lineage registry check")
    result = check_registry(registry_url)
    assert result.problems == ["schema: table revision lacks column(s) license"]


def test_missing_table_is_reported_by_the_check(registry_url: str) -> None:
    with Registry.open(registry_url) as reg, reg.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE crawl_event"))
    result = check_registry(registry_url)
    assert "schema: table crawl_event is missing" in result.problems
