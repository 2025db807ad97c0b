"""Engine, transactions and migrations of the registry database.

SQLite (the default, `$ASTROBIO_HOME/registry.db`) runs in WAL mode with a busy timeout, and
write transactions start with `BEGIN IMMEDIATE`, so two processes allocating a version number
queue on the database lock instead of failing half-way. PostgreSQL (`ASTROBIO_REGISTRY_URL=
postgresql+psycopg://...`) locks the dataset row (`SELECT ... FOR UPDATE`) instead. Either way
the unique constraint on (dataset, number) is the last word. The schema is upgraded to the
newest alembic revision when the engine is opened; users need no alembic.ini.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session

from .._home import data_home
from .._redact import redact
from ..errors import ConfigError, first_line
from .models import VERSION_TABLE

__all__ = ["database_url", "open_engine", "read_session", "write_session", "MIGRATIONS"]

MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 30_000
_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()
# PostgreSQL advisory lock key that serializes schema upgrades of concurrent first opens
_MIGRATION_LOCK = 0x61737472  # "astr"


def database_url(url: str | None = None) -> str:
    """`url`, else $ASTROBIO_REGISTRY_URL, else SQLite at $ASTROBIO_HOME/registry.db."""
    url = url or os.environ.get("ASTROBIO_REGISTRY_URL")
    if url:
        return url
    home = data_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'registry.db'}"


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: object, _record: object) -> None:
        dbapi_conn.isolation_level = None  # type: ignore[attr-defined]  # we emit BEGIN ourselves (SQLAlchemy's sqlite recipe)
        cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("astrobio_write") else "BEGIN")


def open_engine(url: str | None = None) -> Engine:
    """The (cached, per process and URL) engine, schema upgraded to the newest revision."""
    url = database_url(url)
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is not None:
            return engine
        try:
            parsed = make_url(url)
        except ArgumentError as e:
            raise ConfigError(f"registry URL is not a database URL ({first_line(e)})") from None
        try:
            if parsed.get_backend_name() == "sqlite":
                engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
                _sqlite_setup(engine)
            else:
                engine = create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)
            _upgrade(engine)
        except OperationalError as e:
            raise ConfigError(f"cannot open the registry database {redact(parsed.render_as_string(hide_password=True))} "
                              f"({redact(first_line(e.orig or e))})") from None
        _ENGINES[url] = engine
        return engine


def _upgrade(engine: Engine) -> None:
    """Run `alembic upgrade head` on this engine when the database is behind (checked first
    without a lock, so opening an up-to-date registry costs one query)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        if MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision() == head:
            return
    with engine.connect() as conn:
        conn = conn.execution_options(astrobio_write=True)
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")


@contextlib.contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reads (and small writes that need no lock ordering); committed on exit."""
    with Session(engine, expire_on_commit=False) as s, s.begin():
        yield s


@contextlib.contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction holds the write lock from its first statement (SQLite
    BEGIN IMMEDIATE); on PostgreSQL, lock rows with `with_for_update()` inside it."""
    with engine.connect() as conn:
        conn = conn.execution_options(astrobio_write=True)
        with conn.begin():
            # rollback_only: the session's commit flushes without ending the connection's
            # transaction (committed by conn.begin()); an exception rolls both back.
            with Session(bind=conn, expire_on_commit=False, join_transaction_mode="rollback_only") as s:
                yield s
                s.commit()
