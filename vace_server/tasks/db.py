"""Database engine creation and schema migrations (Alembic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url, text

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# PostgreSQL advisory lock held while migrating, so replicas starting together take turns.
MIGRATION_LOCK_KEY = 0x7661_6365  # "vace"
CONNECT_TIMEOUT_SECONDS = 10
POOL_RECYCLE_SECONDS = 1800  # below the idle cut-off of typical proxies / load balancers
# SQLite connections kept open: anyio's default thread pool (40 threads) runs the API's blocking
# reads, so each of them keeps its connection; past that (worker threads, maintenance) a few more
# are opened per use.
SQLITE_POOL_SIZE = 40
SQLITE_POOL_OVERFLOW = 10


def normalise_url(url: str) -> str:
    """`postgres://` and `postgresql://` (no driver named) mean psycopg 3, the driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    """Returns an engine for `url`.

    SQLite gets WAL, a busy timeout, its folder created and, for a file, a pool that keeps
    up to SQLITE_POOL_SIZE connections open. PostgreSQL gets a pool that tests
    each connection before use (`pool_pre_ping`: a restarted server costs no failed request),
    recycles connections after 30 min, and bounds connection attempts to 10 s.

    Side effects: creates the SQLite file's parent folder."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        pool: dict[str, Any] = {}
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # A file's pool as wide as the API's thread pool: with SQLAlchemy's default (5
            # kept, 10 more opened and closed per use) every request beyond the fifth
            # concurrent one paid for a new connection, its pragmas and a fresh parse of the
            # schema. Connections open lazily: a process holds only the ones it used. (An
            # in-memory database has its own one-connection pool.)
            pool = {"pool_size": SQLITE_POOL_SIZE, "max_overflow": SQLITE_POOL_OVERFLOW}
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **pool
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql") and "connect_timeout=" not in url:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_recycle=POOL_RECYCLE_SECONDS,
        connect_args=connect_args,
    )


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Brings the schema to `revision`. Safe to call on every start, and from several
    processes at once on PostgreSQL: they take turns on an advisory lock, so the later ones
    find the schema already current. (All of it is one transaction there: DDL included.)

    Side effects: DDL on the database."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
