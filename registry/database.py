"""Opening the registry: URL → engine, schema created, stamped, upgraded or refused.

>>> registry = Registry.open("sqlite:///lineage.db")   # or None: $LINEAGE_DB, else the user dir
>>> with registry.session() as session:                # one transaction: commit or roll back
...     record_snapshot(session, snapshot)
>>> registry.info().schema_version
1

The same code runs on SQLite (the default, one file per user) and PostgreSQL
(``postgresql+psycopg://user:pass@host/db``, for teams). The crawler writes from one thread
while others read, so engines are thread-safe and SQLite runs in WAL mode, where readers
never wait for the writer.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from platformdirs import user_data_dir
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateColumn
from sqlmodel import Session, SQLModel, select

from registry.errors import (
    MigrationError,
    NotARegistryError,
    RegistryBusyError,
    RegistryDamagedError,
    RegistryError,
    RegistryUnavailableError,
    SchemaTooNewError,
)
from registry.tables import TABLES, Crawl, Edge, Model, Revision, SchemaInfo

APPLICATION = "lineage-audit"
SCHEMA_VERSION = 5
DEFAULT_FILE_NAME = "registry.db"
ENV_VAR = "LINEAGE_DB"
SQLITE_BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10
# Any constant works; it only has to be the same for every lineage-audit process.
_PG_SCHEMA_LOCK_KEY = 0x6C696E65

CHECK_HINT = "run `lineage registry check` for details"
# SQLite's words for a file whose pages or format cannot be read.
_DAMAGE_MARKERS = (
    "malformed",
    "file is not a database",
    "not a database",
    "disk i/o error",
    "could not decode",
    "corrupt",
)
# Python errors that mean a stored value could not be decoded into its column's type.
_DECODE_ERRORS = (ValueError, TypeError, OverflowError)

# Writers on SQLite take the write lock when their transaction starts, so two writing
# processes queue on the busy timeout instead of failing on a stale read snapshot.
_SQLITE_BEGIN_OPTION = "lineage_sqlite_begin"


@dataclass(frozen=True)
class RegistryInfo:
    url: str  # password masked
    backend: str  # "sqlite" or "postgresql"
    path: Path | None  # the SQLite file; None for PostgreSQL and in-memory SQLite
    schema_version: int
    models: int
    revisions: int
    edges: int
    crawls: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path) if self.path is not None else None
        return data


def default_url() -> str:
    """``$LINEAGE_DB``, else a SQLite file in the per-user data directory."""
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env:
        return from_env
    return f"sqlite:///{Path(user_data_dir(APPLICATION)) / DEFAULT_FILE_NAME}"


def mask_url(url: str) -> str:
    """``url`` fit to print: the password (in the authority or the query) replaced by ***."""
    masked = re.sub(r"(://[^/:@\s]*:)[^/\s]*@", r"\1***@", url)
    masked = re.sub(r"(?i)([?&]password=)[^&\s]*", r"\1***", masked)
    return " ".join(masked.split())


class Registry:
    """A lineage registry behind one engine. Open with ``Registry.open``; close when done."""

    def __init__(self, engine: Engine, *, display_url: str, path: Path | None):
        self._engine = engine
        self.url = display_url
        self.path = path
        self.backend = engine.dialect.name
        write_options = {_SQLITE_BEGIN_OPTION: "IMMEDIATE"} if self.backend == "sqlite" else {}
        self._write_engine = engine.execution_options(**write_options)

    @classmethod
    def open(cls, url: str | None = None) -> Registry:
        """Connect, then create, upgrade or check the schema; raise a ``RegistryError`` if unfit.

        ``url`` is a SQLAlchemy URL or a plain file path (a SQLite file); ``None`` means
        ``$LINEAGE_DB``, else ``registry.db`` in the per-user data directory.
        """
        raw = url if url else default_url()
        display = mask_url(raw)
        parsed = _parse_url(raw, display)
        path = _prepare_sqlite_path(parsed, display)
        engine = _create_engine(parsed, display)
        registry = cls(engine, display_url=display, path=path)
        try:
            registry._ensure_schema()
        except BaseException:
            engine.dispose()
            raise
        return registry

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextlib.contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any exception.

        ``write=False`` is for readers: nothing is written (the transaction is rolled back,
        the rows read stay readable), and on SQLite it does not take the write lock. Rows
        read in either kind stay readable after the block (``expire_on_commit=False``).
        """
        bind = self._write_engine if write else self._engine
        with Session(bind, expire_on_commit=False) as session:
            try:
                yield session
                if write:
                    session.commit()
                else:
                    # Rows read stay usable after the block; rolling back would expire them.
                    session.expunge_all()
                    session.rollback()
            except BaseException as err:
                # A dead connection may refuse the rollback too; the first error is the news.
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    session.rollback()
                translated = self._translate(err)
                if translated is None and _decode_error(err):
                    translated = RegistryDamagedError(
                        f"a stored value could not be read ({type(err).__name__}:"
                        f" {_first_line(err)}); {CHECK_HINT}",
                        url=self.url,
                    )
                if translated is not None:
                    raise translated from err
                raise

    def info(self) -> RegistryInfo:
        with self.session(write=False) as session:

            def count(table: type[SQLModel]) -> int:
                return int(session.exec(select(sa.func.count()).select_from(table)).one())

            return RegistryInfo(
                url=self.url,
                backend=self.backend,
                path=self.path,
                schema_version=_read_schema_info(session.connection()).version,
                models=count(Model),
                revisions=count(Revision),
                edges=count(Edge),
                crawls=count(Crawl),
            )

    def connection_url(self) -> str:
        """The URL to open this registry again elsewhere (another process, a Ray worker),
        password included: never print it (``url`` is the masked one)."""
        return self._engine.url.render_as_string(hide_password=False)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self.url!r})"

    # -- schema ---------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        try:
            with self._write_engine.begin() as conn:
                if self.backend == "postgresql":
                    # Two processes opening one new database must not both create it.
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK_KEY)))
                self._create_or_upgrade(conn)
        except RegistryError:
            raise
        except sa.exc.DBAPIError as err:
            if isinstance(err, sa.exc.DatabaseError) and "file is not a database" in str(err.orig):
                raise NotARegistryError(
                    "is not a SQLite database; point LINEAGE_DB at a lineage registry or at a"
                    " new file",
                    url=self.url,
                ) from err
            translated = self._translate(err, opening=True)
            if translated is not None:
                raise translated from err
            raise

    def _create_or_upgrade(self, conn: Connection) -> None:
        if self.backend == "sqlite" and self.path is not None:
            damage = _integrity_problems(conn)
            if damage:
                raise RegistryDamagedError(
                    f"is damaged (PRAGMA quick_check: {'; '.join(damage[:3])}); {CHECK_HINT}",
                    url=self.url,
                )
        names = set(sa.inspect(conn).get_table_names())
        if not names:
            SQLModel.metadata.create_all(conn, tables=[table.__table__ for table in TABLES])
            _stamp(conn, SCHEMA_VERSION)
            return
        if SchemaInfo.__tablename__ not in names:
            raise NotARegistryError(
                f"is not a lineage registry (it holds other tables: {_few(names)}); point"
                " LINEAGE_DB at an empty database or at a lineage registry",
                url=self.url,
            )
        try:
            with conn.begin_nested():
                found = _read_schema_info(conn)
        except sa.exc.DBAPIError as err:
            raise NotARegistryError(
                "is not a lineage registry (its schema_info table is not ours:"
                f" {_first_line(err)}); point LINEAGE_DB at an empty database or at a"
                " lineage registry",
                url=self.url,
            ) from err
        if found.application != APPLICATION or found.version is None:
            raise NotARegistryError(
                f"is not a lineage registry (its schema_info names {found.application!r},"
                f" version {found.raw_version!r}); point LINEAGE_DB at an empty database or at"
                " a lineage registry",
                url=self.url,
            )
        if found.version > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"has schema version {found.version}, newer than this lineage-audit reads"
                f" ({SCHEMA_VERSION}); upgrade lineage-audit, or point LINEAGE_DB elsewhere",
                url=self.url,
            )
        for version in range(found.version, SCHEMA_VERSION):
            step = MIGRATIONS.get(version)
            if step is None:
                raise MigrationError(
                    f"has schema version {found.version} and no upgrade from version {version}"
                    " exists; re-create the registry with a new crawl",
                    url=self.url,
                )
            try:
                step(conn)
            except sa.exc.SQLAlchemyError as err:
                # The upgrade runs in the opening transaction: a failure leaves the old schema.
                raise MigrationError(
                    f"upgrading schema version {version} to {version + 1} failed"
                    f" ({_first_line(err)}); nothing was changed",
                    url=self.url,
                ) from err
            _stamp(conn, version + 1)
        problems = _schema_problems(conn)
        if problems:
            # Stamped current but missing what that version has: every write would fail later.
            raise RegistryDamagedError(
                f"its tables do not match schema version {SCHEMA_VERSION}"
                f" ({'; '.join(problems[:3])}); {CHECK_HINT}",
                url=self.url,
            )

    # -- errors ---------------------------------------------------------------------------

    def _translate(self, err: BaseException, *, opening: bool = False) -> RegistryError | None:
        """The one-line error for a lost connection or a held lock; None for anything else.

        While opening, any operational failure means the database cannot be reached; later,
        only a dropped connection does (SQLite reports plain SQL mistakes as operational).
        """
        if not isinstance(err, sa.exc.DBAPIError):
            return None
        message = _first_line(err)
        lowered = message.lower()
        if self.backend == "sqlite" and "readonly" in lowered:
            return RegistryUnavailableError(
                f"cannot be written ({message}); lineage records into its registry: make the"
                " file and its folder writable, or point --db at another registry",
                url=self.url,
            )
        if self.backend == "sqlite" and any(marker in lowered for marker in _DAMAGE_MARKERS):
            return RegistryDamagedError(f"is damaged ({message}); {CHECK_HINT}", url=self.url)
        if self.backend == "sqlite" and "database is locked" in message:
            return RegistryBusyError(
                f"another process held the write lock for over {SQLITE_BUSY_TIMEOUT_S:.0f} s;"
                " wait for it to finish and retry",
                url=self.url,
            )
        operational = isinstance(err, (sa.exc.OperationalError, sa.exc.InterfaceError))
        if err.connection_invalidated or (opening and operational):
            return RegistryUnavailableError(
                f"cannot use the database ({message}); check that the server runs and that"
                " the URL, user and database are right",
                url=self.url,
            )
        return None


# -- migrations -----------------------------------------------------------------------------


def add_missing_tables_and_columns(conn: Connection) -> None:
    """Create the tables and add the columns of the current schema that ``conn`` lacks.

    Enough for any step that only adds: every added column must be nullable or carry a
    server default (foreign keys of added columns are not enforced on old databases).
    """
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names())
    tables = [table.__table__ for table in TABLES]
    missing = [table for table in tables if table.name not in existing]
    if missing:
        SQLModel.metadata.create_all(conn, tables=missing)
    preparer = conn.dialect.identifier_preparer
    for table in tables:
        if table.name not in existing:
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable and column.server_default is None:
                raise sa.exc.ArgumentError(
                    f"column {table.name}.{column.name} is NOT NULL without a server default"
                )
            ddl = CreateColumn(column).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {ddl}")


# version → the function that upgrades a registry at that version to version + 1, in place,
# inside the opening transaction.
# 0 → 1: a registry stamped 0 holds a subset of version 1's tables and columns (the layouts
# written before the schema was frozen); upgrading it only adds what is missing.
# 1 → 2: adds the fingerprint and finding tables (weight verification, issue 3).
# 2 → 3: adds the evaluation_run, evaluation_sample and audit_record tables (issue 4).
# 3 → 4: adds the verification table: verify's whole report, not only its findings (issue 12).
# 4 → 5: adds the remediation table: each merge-back sweep, its suites and its document (issue 13).
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    0: add_missing_tables_and_columns,
    1: add_missing_tables_and_columns,
    2: add_missing_tables_and_columns,
    3: add_missing_tables_and_columns,
    4: add_missing_tables_and_columns,
}


@dataclass(frozen=True)
class _SchemaFacts:
    application: str | None
    raw_version: str | None

    @property
    def version(self) -> int | None:
        try:
            return int(self.raw_version) if self.raw_version is not None else None
        except ValueError:
            return None


def _read_schema_info(conn: Connection) -> _SchemaFacts:
    rows = {key: value for key, value in conn.execute(sa.select(SchemaInfo.key, SchemaInfo.value))}
    return _SchemaFacts(application=rows.get("application"), raw_version=rows.get("schema_version"))


def _stamp(conn: Connection, version: int) -> None:
    table = SchemaInfo.__table__
    conn.execute(table.delete().where(table.c.key.in_(["application", "schema_version"])))
    conn.execute(
        table.insert(),
        [
            {"key": "application", "value": APPLICATION},
            {"key": "schema_version", "value": str(version)},
        ],
    )


# -- engines --------------------------------------------------------------------------------


def _parse_url(raw: str, display: str) -> URL:
    if "://" not in raw:
        # A bare path is a SQLite file: friendlier than making users spell sqlite:///.
        return URL.create("sqlite", database=str(Path(raw).expanduser()))
    try:
        url = make_url(raw)
    except (sa.exc.ArgumentError, ValueError) as err:
        raise RegistryUnavailableError(
            "is not a database URL; use sqlite:///path/to/registry.db or"
            " postgresql+psycopg://user:password@host/database",
            url=display,
        ) from err
    backend = url.get_backend_name()
    if backend == "postgresql" and url.get_driver_name() in ("psycopg2", "postgresql"):
        # SQLAlchemy's default PostgreSQL driver is psycopg2; this project ships psycopg 3.
        url = url.set(drivername="postgresql+psycopg")
    if backend not in ("sqlite", "postgresql"):
        raise RegistryUnavailableError(
            f"backend {backend!r} is not supported; use sqlite:/// or postgresql+psycopg://",
            url=display,
        )
    return url


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _prepare_sqlite_path(url: URL, display: str) -> Path | None:
    if url.get_backend_name() != "sqlite" or _is_memory(url):
        return None
    path = Path(str(url.database)).expanduser()
    if path.is_dir():
        raise RegistryUnavailableError(
            "is a directory; name a file, e.g. sqlite:///path/to/registry.db", url=display
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RegistryUnavailableError(
            f"cannot create the directory {path.parent} ({err.strerror}); choose another path",
            url=display,
        ) from err
    return path


def _create_engine(url: URL, display: str) -> Engine:
    try:
        if url.get_backend_name() == "sqlite":
            return _sqlite_engine(url)
        return sa.create_engine(
            url,
            pool_pre_ping=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        )
    except (ImportError, sa.exc.NoSuchModuleError) as err:
        raise RegistryUnavailableError(
            f"the database driver is not installed ({_first_line(err)}); pip install"
            " 'lineage-audit[postgres]'",
            url=display,
        ) from err
    except sa.exc.ArgumentError as err:
        raise RegistryUnavailableError(
            f"is not a usable database URL ({_first_line(err)})", url=display
        ) from err


def _sqlite_engine(url: URL) -> Engine:
    options: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
    }
    if _is_memory(url):
        options["poolclass"] = StaticPool  # one shared connection, or each would be empty
    engine = sa.create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling commits before DDL and never BEGINs before a
        # SELECT; turning it off and emitting BEGIN ourselves makes every block atomic.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            if not _is_memory(url):
                cursor.execute("PRAGMA journal_mode = WAL")
                # In WAL mode NORMAL stays consistent on a crash and only risks the last
                # commits on power loss; it spares an fsync per commit (one per crawl batch).
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_SQLITE_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _first_line(err: BaseException) -> str:
    orig = getattr(err, "orig", None)
    text = str(orig if orig is not None else err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return mask_url(line)[:300]


def _few(names: set[str], limit: int = 5) -> str:
    shown = sorted(names)[:limit]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(shown) + more


# -- checks ---------------------------------------------------------------------------------


def _integrity_problems(conn: Connection) -> list[str]:
    """What SQLite's ``PRAGMA quick_check`` finds wrong (empty when the file is sound)."""
    lines = [str(row[0]) for row in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
    return [] if lines == ["ok"] else [mask_url(" ".join(line.split()))[:300] for line in lines]


def _schema_problems(conn: Connection) -> list[str]:
    """The tables and columns of the current schema that the database lacks."""
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names())
    problems: list[str] = []
    for table in (model.__table__ for model in TABLES):
        if table.name not in existing:
            problems.append(f"table {table.name} is missing")
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [column.name for column in table.columns if column.name not in present]
        if missing:
            problems.append(f"table {table.name} lacks column(s) {', '.join(missing)}")
    return problems


def _value_problems(conn: Connection) -> list[str]:
    """The stored values of a SQLite registry that its columns' types cannot read back.

    SQLite stores what it is given whatever the column's type, so a file edited by hand or
    damaged on disk can hold text that is not UTF-8, or JSON, dates and numbers that do not
    parse; the first read of such a row fails. Every value is read here as raw bytes and
    decoded as the ORM would, one column at a time, so each bad column is named with its
    count and the first row. (PostgreSQL checks types as it stores, so only SQLite needs it.)
    """
    existing = set(sa.inspect(conn).get_table_names())
    problems: list[str] = []
    for table in (model.__table__ for model in TABLES):
        if table.name not in existing:
            continue  # already a schema problem
        for column in table.columns:
            bad, first = _unreadable_values(conn, table.name, column)
            if bad:
                problems.append(
                    f"values: {table.name}.{column.name}: {bad} value(s) cannot be read"
                    f" (first in row {first})"
                )
    return problems


def _unreadable_values(conn: Connection, table: str, column: sa.Column) -> tuple[int, int | None]:
    """How many values of ``table.column`` fail to decode, and the rowid of the first."""
    read = column.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)
    quoted = conn.dialect.identifier_preparer.quote
    rows = conn.exec_driver_sql(
        f"SELECT rowid, typeof({quoted(column.name)}), CAST({quoted(column.name)} AS BLOB)"
        f" FROM {quoted(table)}"
    )
    bad, first = 0, None
    for rowid, kind, raw in rows:
        if raw is None:
            continue
        try:
            value: Any = bytes(raw)
            if kind == "text":
                value = value.decode("utf-8")
            elif kind in ("integer", "real"):
                value = int(value) if kind == "integer" else float(value)
            if read is not None:
                read(value)
        except (UnicodeDecodeError, *_DECODE_ERRORS):
            bad += 1
            first = rowid if first is None else first
    return bad, first


def _decode_error(err: BaseException) -> bool:
    """Whether ``err`` was raised inside SQLAlchemy while turning a stored value into Python
    (a JSON, date or number column holding what its type cannot hold)."""
    if not isinstance(err, _DECODE_ERRORS):
        return False
    tb = err.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if "/sqlalchemy/" in name or "/sqlmodel/" in name:
            return True
        tb = tb.tb_next
    return False


@dataclass(frozen=True)
class CheckResult:
    """What ``check_registry`` found: ``problems`` is empty for a sound registry."""

    url: str
    backend: str
    schema_version: int | None
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_registry(url: str | None = None) -> CheckResult:
    """Run the integrity (SQLite ``PRAGMA quick_check``) and schema checks, writing nothing.

    Unlike ``Registry.open`` this neither creates, upgrades nor repairs: it says what is
    wrong. A database that cannot be reached at all raises a ``RegistryError``."""
    raw = url if url else default_url()
    display = mask_url(raw)
    parsed = _parse_url(raw, display)
    backend = parsed.get_backend_name()
    problems: list[str] = []
    if backend == "sqlite":
        if _is_memory(parsed):
            return CheckResult(display, backend, None, ["an in-memory database holds nothing"])
        path = Path(str(parsed.database)).expanduser()
        if not path.is_file():
            return CheckResult(display, backend, None, [f"{path} does not exist or is no file"])
        uri = path.resolve().as_uri() + "?mode=ro"
        engine = sa.create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
            poolclass=StaticPool,
        )
    else:
        engine = _create_engine(parsed, display)
    version: int | None = None
    try:
        with engine.connect() as conn:
            if backend == "sqlite":
                problems += [f"integrity: {line}" for line in _integrity_problems(conn)]
            names = set(sa.inspect(conn).get_table_names())
            if SchemaInfo.__tablename__ not in names:
                problems.append("not a lineage registry: no schema_info table")
            else:
                found = _read_schema_info(conn)
                version = found.version
                if found.application != APPLICATION or version is None:
                    problems.append(
                        f"schema_info names {found.application!r}, version {found.raw_version!r}"
                    )
                elif version > SCHEMA_VERSION:
                    problems.append(
                        f"schema version {version} is newer than this lineage-audit reads"
                        f" ({SCHEMA_VERSION})"
                    )
                elif version < SCHEMA_VERSION:
                    problems.append(
                        f"schema version {version}: opening it for writing upgrades it to"
                        f" {SCHEMA_VERSION}"
                    )
                else:
                    problems += [f"schema: {line}" for line in _schema_problems(conn)]
                    if backend == "sqlite" and not problems:
                        problems += _value_problems(conn)
    except sa.exc.DBAPIError as err:
        if backend != "sqlite" and (
            err.connection_invalidated
            or isinstance(err, (sa.exc.OperationalError, sa.exc.InterfaceError))
        ):
            raise RegistryUnavailableError(
                f"cannot use the database ({_first_line(err)}); check that the server runs and"
                " that the URL, user and database are right",
                url=display,
            ) from err
        problems.append(f"unreadable: {_first_line(err)}")
    finally:
        engine.dispose()
    return CheckResult(display, backend, version, problems)
