"""Each service's own database: engine, per-worker session, and Alembic migrations.

A service declares ``db = Database("identity", Base)``; every worker gets its own
SQLAlchemy session, closed (and rolled back if left open) when the worker ends.
The service commits explicitly, so a row and the outbox event about it commit in
one transaction.

The URL comes from :func:`weintervene.config.settings`: SQLite under the data
folder by default, PostgreSQL (pg8000, green under eventlet) by URL.

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


def _cache_pg8000_statements() -> None:
    """Convert each SQL text's placeholders once, not on every execute.

    pg8000 rescans every statement character by character in Python
    (``convert_paramstyle``) before each execute; profiling the referrals
    benchmark showed it as the largest single cost per share. For the
    positional styles SQLAlchemy uses, the converted text depends on the SQL
    text only and the parameters pass through unchanged, so it can be cached.
    """
    import pg8000.legacy as legacy

    original = legacy.convert_paramstyle
    if getattr(original, "weintervene_cached", False):
        return
    cache: dict = {}

    def convert_paramstyle(style, query, args):
        if style not in ("format", "qmark", "numeric"):
            return original(style, query, args)
        statement = cache.get((style, query))
        if statement is None:
            statement, _ = original(style, query, args)
            if len(cache) < 10_000:
                cache[(style, query)] = statement
        return statement, args

    convert_paramstyle.weintervene_cached = True
    legacy.convert_paramstyle = convert_paramstyle


def _execute_pg8000_statements_in_one_exchange() -> None:
    """Send each statement's Parse, Describe, Bind, Execute and Sync in one write and read
    the answers once: one network round trip per statement, not pg8000's three.

    pg8000 (up to 1.31, the newest) ends the Parse with a Sync and waits, then the
    Describe, then the Execute, and asks the server to Flush after every message. Each
    Sync is a ReadyForQuery the server writes and a wake-up on both sides; outside a
    transaction each is also a transaction of its own. Every statement, COMMIT and
    ROLLBACK paid three (the PostgreSQL protocol needs one: Bind does not depend on
    Describe's answer, since pg8000 sends its parameters' types in the Parse). Answers
    and errors are unchanged: the server answers the messages in order, and after an
    error skips to the Sync, so the error is raised at the same ReadyForQuery.
    COPY (a ``stream``) keeps pg8000's own path.

    The BEGIN pg8000 sends before a transaction's first statement (an exchange of its
    own) goes out with that statement: a BEGIN executed before the Sync makes the
    exchange's implicit transaction the explicit one, exactly as if it had been sent
    alone. A session's first statement, SQLAlchemy's pre-ping included, then costs one
    exchange instead of four.

    A statement may also carry the transaction's COMMIT (:func:`execute_then_commit`):
    Parse, Bind and Execute of COMMIT follow its Execute, before the Sync. Should the
    statement fail, the server skips the COMMIT and the error is raised as before; should
    the COMMIT fail, its error is raised. Once it succeeded, the COMMIT (or ROLLBACK) the
    caller then asks for has nothing left to end and sends nothing.

    Example: ``connection.execute_unnamed("SELECT 1")`` -> one exchange on the socket.
    """
    import pg8000.core as core
    from pg8000.converters import make_params

    original = core.CoreConnection.execute_unnamed
    original_simple = core.CoreConnection.execute_simple
    if getattr(original, "weintervene_one_exchange", False):
        return
    begin = "begin transaction"
    begin_messages = b"".join([  # Parse, Bind and Execute of BEGIN, without a Sync
        core._create_message(core.PARSE, core.NULL_BYTE + begin.encode() + core.NULL_BYTE + core.H_pack(0)),
        core._create_message(core.BIND, core.NULL_BYTE + core.NULL_BYTE + core.H_pack(0) + core.H_pack(0)
                             + core.H_pack(0)),
        core.EXECUTE_MSG,
    ])

    commit = "commit"
    commit_messages = b"".join([  # Parse, Bind and Execute of COMMIT, without a Sync
        core._create_message(core.PARSE, core.NULL_BYTE + commit.encode() + core.NULL_BYTE + core.H_pack(0)),
        core._create_message(core.BIND, core.NULL_BYTE + core.NULL_BYTE + core.H_pack(0) + core.H_pack(0)
                             + core.H_pack(0)),
        core.EXECUTE_MSG,
    ])

    def begin_due(self) -> bool:
        """A BEGIN pg8000 asked for and that has not gone out yet (never in autocommit)."""
        return self.__dict__.pop("weintervene_begin_due", False) and not self.autocommit

    def execute_simple(self, statement):
        self.__dict__.pop(COMMITTED_AHEAD, None)  # any statement after it: transactions as usual
        if statement == begin and not self.autocommit:
            self.weintervene_begin_due = True  # it goes out with the statement that follows
            return core.Context(statement)
        if not begin_due(self):
            return original_simple(self, statement)
        encoding = self._client_encoding  # both queries in one write; an answer (ReadyForQuery) each
        core._write(self._sock, b"".join(core._create_message(core.QUERY, sql.encode(encoding) + core.NULL_BYTE)
                                         for sql in (begin, statement)))
        core._flush(self._sock)
        self.handle_messages(core.Context(begin))
        context = core.Context(statement)
        self.handle_messages(context)
        return context

    def execute_unnamed(self, statement, vals=(), oids=(), stream=None):
        if self.__dict__.pop(COMMITTED_AHEAD, False) and statement in ("commit", "rollback"):
            return core.Context(statement)  # ended already, with the statement that carried the COMMIT
        commit_after = self.__dict__.pop(COMMIT_WITH_NEXT_STATEMENT, False)
        if stream is not None:
            if begin_due(self):
                original_simple(self, begin)
            return original(self, statement, vals, oids, stream)
        params = make_params(self.py_types, vals)  # before anything is sent: it may raise
        encoding = self._client_encoding
        parse = bytearray(core.NULL_BYTE)
        parse.extend(statement.encode(encoding) + core.NULL_BYTE)
        parse.extend(core.H_pack(len(oids)))
        for oid in oids:
            parse.extend(core.i_pack(0 if oid == -1 else oid))
        # Bind as pg8000's send_BIND writes it: unnamed portal and statement, text
        # parameters, text results.
        bind = bytearray(core.NULL_BYTE + core.NULL_BYTE + core.H_pack(0) + core.H_pack(len(params)))
        for value in params:
            if value is None:
                bind.extend(core.i_pack(-1))
            else:
                encoded = value.encode(encoding)
                bind.extend(core.i_pack(len(encoded)))
                bind.extend(encoded)
        bind.extend(core.H_pack(0))
        # One buffer, one write: written message by message, a statement longer than the
        # socket file's 8 KB buffer (a batch of shares is) left in two sends, and the server
        # sat in ClientRead, holding the statement open, whenever this process lost its core
        # between them.
        messages = bytearray(begin_messages if begin_due(self) else b"")
        messages += core._create_message(core.PARSE, parse)
        messages += core._create_message(core.DESCRIBE, core.STATEMENT + core.NULL_BYTE)
        messages += core._create_message(core.BIND, bind)
        messages += core.EXECUTE_MSG
        if commit_after:
            messages += commit_messages
        messages += core.SYNC_MSG
        context = core.Context(statement, stream=stream)
        if self._sock is None:
            raise core.InterfaceError("connection is closed")
        core._write(self._sock, bytes(messages))
        core._flush(self._sock)
        self.handle_messages(context)  # raises the statement's error, or the COMMIT's
        if commit_after:
            self.__dict__[COMMITTED_AHEAD] = True
        return context

    execute_unnamed.weintervene_one_exchange = True
    core.CoreConnection.execute_unnamed = execute_unnamed
    core.CoreConnection.execute_simple = execute_simple


COMMIT_WITH_NEXT_STATEMENT = "weintervene_commit_with_next_statement"
COMMITTED_AHEAD = "weintervene_committed_ahead"


def _carry_commit(connection) -> bool:
    """Mark ``connection``'s next statement to carry its transaction's COMMIT; False where
    that cannot be done (not pg8000). Only :func:`execute_then_commit` calls it, since the
    mark must be cleared if the statement never goes out, and the session committed after."""
    if connection.dialect.driver != "pg8000":
        return False
    connection.connection.dbapi_connection.__dict__[COMMIT_WITH_NEXT_STATEMENT] = True
    return True


def execute_then_commit(session, statement, params=None):
    """Run ``statement`` as the last of the session's transaction and commit, the COMMIT in
    the statement's exchange on PostgreSQL with pg8000: one round trip less per transaction,
    and one wake-up less of the service and of its backend. Returns
    the statement's rows (all fetched; [] when it returns none) and its rowcount. On an
    error nothing is committed and the caller rolls back, as always.

    Example: rows, count = execute_then_commit(session, update(t).where(...).returning(t.c.id))
    """
    connection = session.connection()
    carried = _carry_commit(connection)
    try:
        result = connection.execute(statement, params)
        rows = result.all() if result.returns_rows else []
        count = result.rowcount
    finally:  # unused after an error before the statement went out: not left for the next one
        if carried:
            connection.connection.dbapi_connection.__dict__.pop(COMMIT_WITH_NEXT_STATEMENT, None)
    session.commit()
    return rows, count


READS_WITHOUT_TRANSACTION = "weintervene_reads_without_transaction"
"""Execution option of a read-only session's engine (see :func:`read_write_only_in_transactions`)."""


def _parse_pg8000_dates_fast() -> None:
    """Parse DATE columns with ``date.fromisoformat`` (~0.1 µs), not pg8000's strptime (~10 µs).

    identity's access check reads a student's date of birth on every share. Only the
    exact form PostgreSQL sends (``YYYY-MM-DD``, ISO DateStyle) takes the fast path;
    anything else (``infinity``, BC dates, years past 9999) goes to pg8000's own
    parser, so every value comes out as before.
    """
    import pg8000.converters as converters

    original = converters.PG_TYPES[converters.DATE]
    if getattr(original, "weintervene_fast", False):
        return

    def date_in(data):
        if len(data) == 10 and data[4] == "-" and data[7] == "-":
            try:
                return date.fromisoformat(data)
            except ValueError:
                pass
        return original(data)

    date_in.weintervene_fast = True
    converters.PG_TYPES[converters.DATE] = date_in


def make_engine(url: str, read_only_outside_transactions: bool = False) -> Engine:
    """An engine tuned for the service's database kind.

    ``read_only_outside_transactions`` (PostgreSQL with pg8000 only; ignored otherwise):
    see :func:`read_write_only_in_transactions`.
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
    if url.startswith("postgresql+pg8000"):
        from sqlalchemy.engine import make_url

        _cache_pg8000_statements()
        _parse_pg8000_dates_fast()
        _execute_pg8000_statements_in_one_exchange()
        # pg8000 builds a TLS context (loading every CA certificate, ~0.1 s) for
        # each new connection unless told not to; on the same host TLS adds
        # nothing. Remote databases keep pg8000's default (TLS when offered).
        if make_url(url).host in _LOCAL_HOSTS:
            connect_args["ssl_context"] = False
        if read_only_outside_transactions:
            connect_args["startup_params"] = {"default_transaction_read_only": "on"}
    engine = create_engine(url, pool_size=10, max_overflow=20, connect_args=connect_args)
    ping_connections_idle_for(engine, IDLE_BEFORE_PING_SECONDS)
    if read_only_outside_transactions and engine.dialect.driver == "pg8000":
        read_write_only_in_transactions(engine)
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


def read_write_only_in_transactions(engine: Engine) -> None:
    """Let read-only work skip BEGIN and ROLLBACK; everything else runs as before.

    pg8000 sends BEGIN before the first statement of a connection (the pool's ping
    included) and the session's end sends ROLLBACK: two round trips around a
    read-only RPC that has one statement to run. Here each connection is in
    pg8000's autocommit mode and PostgreSQL makes every statement outside a
    transaction read-only (``default_transaction_read_only``, set when the
    connection opens). Every SQLAlchemy transaction opens with an explicit
    ``BEGIN READ WRITE``, so sessions, ``engine.begin()`` and migrations commit
    or roll back whole as before. Only a connection whose engine carries the
    :data:`READS_WITHOUT_TRANSACTION` execution option skips it: its statements
    run one by one, and PostgreSQL refuses any write among them, so nothing can
    be committed half way. (At READ COMMITTED every statement takes its own
    snapshot inside a transaction too: reads see the same.)

    Example::

        engine = make_engine(url, read_only_outside_transactions=True)
        reader = Session(engine.execution_options(**{READS_WITHOUT_TRANSACTION: True}))
    """

    @event.listens_for(engine, "connect")
    def _autocommit(dbapi_connection, _record):
        dbapi_connection.autocommit = True

    @event.listens_for(engine, "begin")
    def _begin_read_write(connection):
        if not connection.get_execution_options().get(READS_WITHOUT_TRANSACTION):
            connection.exec_driver_sql("BEGIN READ WRITE")


def bulk_insert(session, model, rows: list[dict], chunk: int = 2000) -> None:
    """Insert many rows fast, in the session's transaction: :func:`insert_together`
    per chunk (PostgreSQL: one statement per chunk, where pg8000's executemany would
    send one per row; SQLite: a plain executemany, which its driver does in-process)."""
    for start in range(0, len(rows), chunk):
        insert_together(session, [(model, rows[start:start + chunk])])


def insert_together(session, batches: list[tuple[type, list[dict]]], commit: bool = False) -> None:
    """Insert rows of several tables in the session's transaction, parents first.

    PostgreSQL: ONE statement, each table's rows in a data-modifying ``WITH`` clause fed
    by ``json_populate_recordset``. A share's seven small INSERTs cost seven round trips
    and seven passes through SQLAlchemy and pg8000, most of referrals' CPU per share;
    one statement costs one. Foreign keys still hold: PostgreSQL checks them when the
    statement ends, with every row in place. SQLite: one executemany per table, in order
    (its driver runs in-process, so there are no round trips to save). Rows may name
    different columns; the model's Python-side defaults fill what they leave out.

    ``commit=True`` commits the session too; on PostgreSQL (pg8000) the COMMIT travels
    with the statement, in one exchange (:func:`execute_then_commit`). On an
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
    :func:`read_write_only_in_transactions`). Elsewhere they get the usual session.
    """

    def __init__(self, service: str, base: type[DeclarativeBase], read_only_entrypoints=()):
        self.service = service
        self.base = base
        self.read_only_entrypoints = frozenset(read_only_entrypoints)
        self.engine: Engine | None = None
        self.sessionmaker: sessionmaker | None = None
        self.reader_sessionmaker: sessionmaker | None = None
        self.sessions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def setup(self):
        self.open(settings().database_url(self.service), migrate_schema=settings().auto_migrate)

    def open(self, url: str, migrate_schema: bool = True) -> None:
        """Engine and session factories on ``url`` (created, and migrated unless told not to)."""
        ensure_database(url)
        self.engine = make_engine(url, read_only_outside_transactions=bool(self.read_only_entrypoints))
        if migrate_schema:
            migrate(self.service, self.engine)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        if self.read_only_entrypoints and self.engine.dialect.driver == "pg8000":
            reader = self.engine.execution_options(**{READS_WITHOUT_TRANSACTION: True})
            self.reader_sessionmaker = sessionmaker(reader, expire_on_commit=False)

    def stop(self):
        if self.engine is not None:
            self.engine.dispose()

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

    Example: database_refusal(ProgrammingError(..., orig={"C": "53300", "M": "sorry, too many
    clients already"})) -> Unavailable("The database is busy; try again in a moment.")
    """
    from sqlalchemy.exc import DBAPIError

    from weintervene.errors import Unavailable

    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    details = orig.args[0] if orig is not None and orig.args and isinstance(orig.args[0], dict) else {}
    sqlstate = str(details.get("C", ""))
    cannot_connect = type(orig).__name__ == "InterfaceError" and "connect" in str(orig).lower()
    if not (exc.connection_invalidated or cannot_connect or sqlstate.startswith(_RETRYABLE_SQLSTATES)):
        return None
    log.error("the database refused the work for now (%s): %s", sqlstate or type(orig).__name__,
              details.get("M") or orig)
    return Unavailable("The database is busy; try again in a moment.", code="database_unavailable")
