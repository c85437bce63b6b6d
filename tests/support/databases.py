"""Throwaway registry databases for tests: a SQLite file, or a fresh PostgreSQL database.

PostgreSQL runs only when ``LINEAGE_TEST_POSTGRES_URL`` names a server the tests may create
and drop databases on (``postgresql+psycopg://postgres@127.0.0.1:5433/postgres``); each use
gets a database of its own, dropped afterwards.

>>> @pytest.fixture(params=BACKENDS)
... def registry_url(request, tmp_path):
...     with registry_database(request.param, tmp_path) as url:
...         yield url
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

POSTGRES_ENV = "LINEAGE_TEST_POSTGRES_URL"

BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
]


def postgres_base_url() -> str | None:
    return os.environ.get(POSTGRES_ENV, "").strip() or None


def skip_without_postgres() -> str:
    """The server URL, or skip the test saying how to enable it."""
    base = postgres_base_url()
    if base is None:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV}, e.g."
            " postgresql+psycopg://postgres@127.0.0.1:5433/postgres"
        )
    return base


@contextlib.contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
    """A new, empty database on the server of ``base_url``; yields its SQLAlchemy URL."""
    import psycopg
    from psycopg import sql

    base = make_url(base_url)
    name = f"lineage_test_{uuid.uuid4().hex[:16]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def registry_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty registry database on ``backend`` ("sqlite" or "postgresql")."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    with fresh_postgres_database(skip_without_postgres()) as url:
        yield url
