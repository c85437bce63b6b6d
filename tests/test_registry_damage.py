"""A damaged registry (issue 11): truncated, overwritten pages, a lost column, undecodable
values, a read-only file. Each is a one-line ``RegistryError`` naming the registry, never a
traceback or a silent success; ``check_registry`` says what is wrong and writes nothing."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
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


def test_check_names_every_column_with_undecodable_values(tmp_path: Path) -> None:
    path = _filled(tmp_path / "values.db", models=3)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE revision SET license = CAST(x'ff41' AS TEXT) WHERE rowid = 2")
        conn.execute("UPDATE revision SET card = '{broken'")
        conn.execute("UPDATE revision SET crawled_at = 'yesterday' WHERE rowid = 3")
    before = path.read_bytes()
    result = check_registry(str(path))
    assert result.problems == [
        "values: revision.license: 1 value(s) cannot be read (first in row 2)",
        "values: revision.card: 3 value(s) cannot be read (first in row 1)",
        "values: revision.crawled_at: 1 value(s) cannot be read (first in row 3)",
    ]
    assert path.read_bytes() == before


def test_a_value_error_of_the_caller_is_not_called_damage(tmp_path: Path) -> None:
    reg = Registry.open(str(tmp_path / "fine.db"))
    try:
        with pytest.raises(ValueError, match="mine"), reg.session() as session:
            list_models(session)
            raise ValueError("mine")
    finally:
        reg.close()


def _without_root_powers() -> list[str]:
    """A command prefix under which file permissions bind: none for an ordinary user; for
    root, ``setpriv`` dropping the capabilities that let root write anyway."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("runs as root and setpriv (util-linux) is missing to drop root's powers")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


def test_read_only_file_is_one_line(tmp_path: Path) -> None:
    path = _filled(tmp_path / "ro.db", models=1)
    path.chmod(0o444)
    tmp_path.chmod(0o555)
    opening = (
        "import sys\n"
        "from registry import Registry\n"
        "from registry.errors import RegistryError\n"
        "try:\n"
        f"    Registry.open({str(path)!r})\n"
        "except RegistryError as error:\n"
        "    sys.exit(str(error))\n"
    )
    try:
        result = subprocess.run(
            [*_without_root_powers(), sys.executable, "-c", opening],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parent.parent,
        )
    finally:
        tmp_path.chmod(0o755)
        path.chmod(0o644)
    assert result.returncode == 1, result.stderr
    message = result.stderr.strip()
    assert "Traceback" not in message and "\n" not in message
    assert "ro.db" in message and "cannot be written" in message, message


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
