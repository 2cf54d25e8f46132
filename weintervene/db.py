"""Each service's own database: engine, per-worker session, and Alembic migrations.

A service declares ``db = Database("identity", Base)``; every worker gets its own
SQLAlchemy session, closed (and rolled back if left open) when the worker ends.
The service commits explicitly, so a row and the outbox event about it commit in
one transaction.

The URL comes from :func:`weintervene.config.settings`: SQLite under the data
folder by default, PostgreSQL (psycopg2, green under eventlet) by URL.

Example::

    class IdentityService:
        name = "identity"
        db = Database("identity", Base)

        @rpc
        def count_users(self):
            return self.db.scalar(select(func.count()).select_from(User))
"""
from __future__ import annotations

import functools
import logging
import threading
import uuid
import weakref
import zlib
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path

from nameko.extensions import DependencyProvider
from sqlalchemy import JSON, DateTime, Index, String, TypeDecorator, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from weintervene.config import settings

log = logging.getLogger(__name__)

SERVICES_ROOT = Path(__file__).resolve().parent.parent / "services"

# Alembic keeps its migration context in module globals: two services starting
# in one process (green threads) must migrate one after the other.
_MIGRATION_LOCK = threading.Lock()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; use weintervene.db.utcnow()")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


UUIDStr = String(36)
"""Ids are UUIDs stored as text: portable, and opaque to other services."""

JSONType = JSON


_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", None, ""})


def _green_psycopg2() -> None:
    """Make psycopg2 wait for PostgreSQL through eventlet's hub, never blocking it.

    psycopg2's documented coroutine support: with a wait callback set
    (``psycopg2.extensions.set_wait_callback``), libpq runs non-blocking and psycopg2 calls
    the callback whenever it must wait for the socket; eventlet's callback parks the
    greenthread on the hub (``trampoline``), so other greenthreads run meanwhile.
    ``eventlet.monkey_patch()`` sets that callback already when psycopg2 is installed (every
    WeIntervene process calls it first); this sets it only where nothing did, through the
    same documented switch (``monkey_patch(psycopg=True)`` patches psycopg alone).
    ``tests/integration/test_db_driver.py`` guards it: a ``pg_sleep(1)`` in one greenthread
    while another answers.
    """
    from psycopg2 import extensions

    if extensions.get_wait_callback() is None:
        import eventlet

        eventlet.monkey_patch(psycopg=True)


def execute_then_commit(session, statement, params=None):
    """Run ``statement`` as the last of the session's transaction and commit. Returns the
    statement's rows (all fetched; [] when it returns none) and its rowcount. On an error
    nothing is committed and the caller rolls back, as always.

    Example: rows, count = execute_then_commit(session, update(t).where(...).returning(t.c.id))
    """
    connection = session.connection()
    result = connection.execute(statement, params)
    rows = result.all() if result.returns_rows else []
    count = result.rowcount
    session.commit()
    return rows, count


def make_engine(url: str, reads_only: bool = False) -> Engine:
    """An engine tuned for the service's database kind.

    ``reads_only`` (PostgreSQL only; ignored otherwise): an engine for read-only work
    outside transactions, see :func:`reads_without_transactions`.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            # WAL lets several processes (scaled-out analytics) share one file.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Freed cells and pages are overwritten with zeros, so a deleted row's bytes
            # do not stay in the file's free space (weintervene.remnants: after a deletion
            # the WAL is checkpointed and truncated too). A per-connection setting.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    connect_args = {}
    if url.startswith("postgresql"):
        from sqlalchemy.engine import make_url

        target = make_url(url)
        if target.get_driver_name() != "psycopg2":  # the one driver made green and tested
            raise ValueError(f"PostgreSQL is reached through psycopg2 (postgresql+psycopg2://...), "
                             f"not {target.drivername}")
        _green_psycopg2()
        # libpq's default (sslmode=prefer) negotiates TLS with any server offering it; on
        # the same host TLS adds nothing but CPU per message. Remote databases keep the
        # default, and a URL's own ?sslmode= wins.
        if target.host in _LOCAL_HOSTS and "sslmode" not in target.query:
            connect_args["sslmode"] = "disable"
        if reads_only:
            return reads_without_transactions(url, connect_args)
    engine = create_engine(url, pool_size=10, max_overflow=20, connect_args=connect_args)
    ping_connections_idle_for(engine, IDLE_BEFORE_PING_SECONDS)
    return engine


IDLE_BEFORE_PING_SECONDS = 1.0


def ping_connections_idle_for(engine: Engine, seconds: float) -> None:
    """Before lending a pooled connection that sat idle ``seconds`` or more, check it
    still works (``SELECT 1``); a dead one is replaced (SQLAlchemy's pessimistic
    disconnect handling, with a ``checkout`` event).

    ``pool_pre_ping`` pinged on every checkout: a statement and an exchange more for
    every session, which under load found live connections a few milliseconds after
    their last use (about a tenth of a share's database work). A database restarted
    under load still fails the statements in flight, as it would with pre-ping (503
    ``database_unavailable``); SQLAlchemy then drops the whole pool, so the requests
    after them get new connections.

    Example: ping_connections_idle_for(engine, 1.0)
    """
    import time

    from sqlalchemy import exc

    @event.listens_for(engine, "checkin")
    def _note_idle(_dbapi_connection, record):
        record.info["weintervene_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):
        since = record.info.pop("weintervene_idle_since", None)
        if since is None or time.monotonic() - since < seconds:  # new, or just used
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as dead:  # noqa: BLE001 - any failure: the pool retries with a new one
            raise exc.DisconnectionError(f"a pooled connection no longer works: {dead}") from dead


def reads_without_transactions(url: str, connect_args: dict) -> Engine:
    """A PostgreSQL engine whose sessions read without BEGIN or ROLLBACK, and cannot write.

    psycopg2 sends BEGIN before a transaction's first statement (an exchange of its own)
    and the session's end sends ROLLBACK: two round trips around a read-only RPC that has
    one statement to run. This engine's connections are in psycopg2's autocommit mode
    (SQLAlchemy's ``isolation_level="AUTOCOMMIT"``, set once per connection), so each
    statement runs on its own, and PostgreSQL makes every statement outside a transaction
    read-only (``default_transaction_read_only``, set when the connection opens): a write
    among them is refused (25006), so nothing can be committed half way. (At READ COMMITTED
    every statement takes its own snapshot inside a transaction too: reads see the same.)

    A pool of its own, never shared with the service's read-write sessions: switching one
    pooled connection between the two modes through SQLAlchemy costs psycopg2 two ``SET``
    round trips each time the connection goes back to the pool.

    Example::

        reader = Session(make_engine(url, reads_only=True))
    """
    options = dict(connect_args, options="-c default_transaction_read_only=on")
    engine = create_engine(url, pool_size=10, max_overflow=20, connect_args=options,
                           isolation_level="AUTOCOMMIT")
    ping_connections_idle_for(engine, IDLE_BEFORE_PING_SECONDS)
    return engine


def bulk_insert(session, model, rows: list[dict], chunk: int = 2000) -> None:
    """Insert many rows fast, in the session's transaction: :func:`insert_together`
    per chunk (PostgreSQL: one statement per chunk, where a plain executemany would
    send one per row; SQLite: a plain executemany, which its driver does in-process)."""
    for start in range(0, len(rows), chunk):
        insert_together(session, [(model, rows[start:start + chunk])])


def insert_together(session, batches: list[tuple[type, list[dict]]], commit: bool = False) -> None:
    """Insert rows of several tables in the session's transaction, parents first.

    PostgreSQL: ONE statement, each table's rows in a data-modifying ``WITH`` clause fed
    by ``json_populate_recordset``. A share's seven small INSERTs cost seven round trips
    and seven passes through SQLAlchemy and the driver, most of referrals' CPU per share;
    one statement costs one. Foreign keys still hold: PostgreSQL checks them when the
    statement ends, with every row in place. SQLite: one executemany per table, in order
    (its driver runs in-process, so there are no round trips to save). Rows may name
    different columns; the model's Python-side defaults fill what they leave out.

    ``commit=True`` commits the session too (:func:`execute_then_commit`). On an
    error nothing is committed and the caller rolls back, as always.

    Example::

        insert_together(db, [(Share, [share]), (Referral, referrals), (StatusChange, history)], commit=True)
    """
    import json

    from sqlalchemy import insert

    batches = [(model.__table__, _uniform(model.__table__, rows)) for model, rows in batches if rows]
    connection = session.connection() if batches else None  # nothing to insert: no connection taken
    if not batches or connection.dialect.name != "postgresql":
        for table, (_keys, part) in batches:
            connection.execute(insert(table), part)
        if commit:
            session.commit()
        return
    clauses, params = [], {}
    for n, (table, (keys, part)) in enumerate(batches):
        columns = ", ".join(f'"{k}"' for k in keys)
        clauses.append(f'i{n} AS (INSERT INTO "{table.name}" ({columns}) SELECT {columns} '
                       f'FROM json_populate_recordset(NULL::"{table.name}", :rows{n}))')
        params[f"rows{n}"] = json.dumps(part, default=_json_default)
    statement = text("WITH " + ", ".join(clauses) + " SELECT 1")
    if commit:
        execute_then_commit(session, statement, params)
    else:
        connection.execute(statement, params)


def _uniform(table, rows: list[dict]) -> tuple[list[str], list[dict]]:
    """The columns named by any row, and every row with all of them (defaults filled in)."""
    defaults = _python_defaults(table)
    part = [_with_defaults(row, defaults) for row in rows]
    keys = sorted({k for row in part for k in row})
    return keys, [{k: row.get(k) for k in keys} for row in part]


@functools.lru_cache(maxsize=None)
def _python_defaults(table) -> dict:
    """The table's columns with a Python-side default (raw SQL skips them), worked out once."""
    return {c.key: c.default for c in table.columns if c.default is not None}


def _with_defaults(row: dict, defaults: dict) -> dict:
    """The row with the model's Python-side defaults filled in (raw SQL skips them)."""
    missing = {k: d for k, d in defaults.items() if k not in row}
    if not missing:
        return row
    row = dict(row)
    for key, default in missing.items():
        row[key] = default.arg(None) if default.is_callable else default.arg
    return row


def _json_default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def partial_index(name: str, *columns: str, where: str) -> Index:
    """An index holding only the rows matching ``where``, on PostgreSQL and SQLite alike.

    Example: partial_index("ix_delivery_due", "next_attempt_at", where="state = 'queued'")
    """
    return Index(name, *columns, postgresql_where=text(where), sqlite_where=text(where))


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` if it does not exist.

    Replicas starting together (two referrals pods on a new cluster) may both find it
    missing; the one whose CREATE loses finds it there and goes on, rather than exiting.
    """
    if not url.startswith("postgresql"):
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    exists = text("SELECT 1 FROM pg_database WHERE datname = :n")
    try:
        with admin.connect() as conn:
            if not conn.scalar(exists, {"n": target.database}):
                try:
                    conn.execute(text(f'CREATE DATABASE "{target.database}"'))
                except DBAPIError:
                    if not conn.scalar(exists, {"n": target.database}):  # not a lost race
                        raise
    finally:
        admin.dispose()


def alembic_config(service: str, connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_ROOT / service / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(service: str, engine: Engine) -> None:
    """Bring the service's database to the newest migration.

    On PostgreSQL an advisory lock makes concurrent starts (three analytics
    instances at once) take turns instead of racing.
    """
    from alembic import command

    with _MIGRATION_LOCK, engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(service.encode())})
        command.upgrade(alembic_config(service, conn), "head")


class Database(DependencyProvider):
    """A session per worker on the service's own database.

    ``read_only_entrypoints`` names entrypoints that never write. On PostgreSQL their
    session runs each statement outside a transaction, which PostgreSQL makes
    read-only (no BEGIN, no ROLLBACK round trips; a write fails, see
    :func:`reads_without_transactions`). Elsewhere they get the usual session.
    """

    def __init__(self, service: str, base: type[DeclarativeBase], read_only_entrypoints=()):
        self.service = service
        self.base = base
        self.read_only_entrypoints = frozenset(read_only_entrypoints)
        self.engine: Engine | None = None
        self.reader_engine: Engine | None = None
        self.sessionmaker: sessionmaker | None = None
        self.reader_sessionmaker: sessionmaker | None = None
        self.sessions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def setup(self):
        self.open(settings().database_url(self.service), migrate_schema=settings().auto_migrate)

    def open(self, url: str, migrate_schema: bool = True) -> None:
        """Engine and session factories on ``url`` (created, and migrated unless told not to)."""
        ensure_database(url)
        self.engine = make_engine(url)
        if migrate_schema:
            migrate(self.service, self.engine)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        if self.read_only_entrypoints and self.engine.dialect.name == "postgresql":
            self.reader_engine = make_engine(url, reads_only=True)
            self.reader_sessionmaker = sessionmaker(self.reader_engine, expire_on_commit=False)

    def stop(self):
        for engine in (self.engine, self.reader_engine):
            if engine is not None:
                engine.dispose()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx) -> Session:
        reads_only = self.reader_sessionmaker is not None and \
            worker_ctx.entrypoint.method_name in self.read_only_entrypoints
        session = (self.reader_sessionmaker if reads_only else self.sessionmaker)()
        self.sessions[worker_ctx] = session
        return session

    def worker_teardown(self, worker_ctx):
        session = self.sessions.pop(worker_ctx, None)
        if session is not None:
            session.close()

    @contextmanager
    def session(self):
        """A session outside any worker (timers' helpers, CLI, tests)."""
        session = self.sessionmaker()
        try:
            yield session
        finally:
            session.close()


def run_migrations_env(target_metadata) -> None:
    """The body of every service's ``migrations/env.py``.

    Migrations run on the connection handed over by :func:`migrate`, or, from
    the ``alembic`` command line, on the URL of ``-x url=...``.
    """
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:
        url = context.get_x_argument(as_dictionary=True).get("url")
        engine = make_engine(url)
        with engine.begin() as connection:
            _configure_and_run(context, connection, target_metadata)
        return
    _configure_and_run(context, connection, target_metadata)


def _configure_and_run(context, connection, target_metadata):
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()


def make_migration(service: str, message: str) -> None:
    """Autogenerate a migration for ``service`` against a scratch SQLite database."""
    import tempfile

    from alembic import command

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/scratch.db")
        with engine.begin() as conn:
            command.upgrade(alembic_config(service, conn), "head")
            command.revision(alembic_config(service, conn), message=message, autogenerate=True)
        engine.dispose()


# SQLSTATE classes that say "the database cannot take this now", not "this request is
# wrong": connection exceptions (08), insufficient resources (53: too many connections,
# disk full, out of memory), operator intervention (57P: shutting down, starting up),
# and a serialization failure or deadlock (40001, 40P01), which succeed when retried.
_RETRYABLE_SQLSTATES = ("08", "53", "57P", "40001", "40P01")


def database_refusal(exc: BaseException):
    """An ``Unavailable`` (503 at the gateway) for a database that refused or dropped the
    work for now, else None: the caller may retry, and an operator sees it for what it is
    (a full connection table was a 500 "internal error" before).

    Example: database_refusal(OperationalError(..., orig=psycopg2.errors.TooManyConnections(...)))
    -> Unavailable("The database is busy; try again in a moment.")
    """
    import psycopg2
    from sqlalchemy.exc import DBAPIError

    from weintervene.errors import Unavailable

    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    sqlstate = str(getattr(orig, "pgcode", None) or "")
    # psycopg2 reports a server it cannot reach, or one refusing the connection (too many
    # clients, starting up), as an OperationalError with no SQLSTATE (libpq has no result).
    cannot_connect = isinstance(orig, psycopg2.OperationalError) and not sqlstate
    if not (exc.connection_invalidated or cannot_connect or sqlstate.startswith(_RETRYABLE_SQLSTATES)):
        return None
    message = (getattr(getattr(orig, "diag", None), "message_primary", None) or str(orig)).strip()
    log.error("the database refused the work for now (%s): %s", sqlstate or type(orig).__name__, message)
    return Unavailable("The database is busy; try again in a moment.", code="database_unavailable")
