"""PostgreSQL through psycopg2 as its authors documented it (weintervene.db): a query waits
on eventlet's hub and never holds it, a transaction costs the round trips psycopg2's API
gives and no more, a dead pooled connection is replaced, and transactions, autocommit and
errors behave as SQLAlchemy and PostgreSQL define them."""
from __future__ import annotations

import time

import eventlet
import pytest
from nameko import config as nameko_config
from nameko.rpc import rpc
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import ClusterRpcClient
from psycopg2 import extensions
from sqlalchemy import Integer, String, column, insert, table, text, update
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tests.support.infra import PG_URL, Vhost, postgres_available, scratch_postgres_database
from tests.support.round_trips import RoundTrips
from weintervene.db import execute_then_commit, insert_together, make_engine

pytestmark = pytest.mark.integration

SLEEP_SECONDS = 1.0
QUICK_SECONDS = 0.3  # what the other greenthread may take, at most, while the sleep runs


@pytest.fixture
def engine():
    if not postgres_available():
        pytest.fail("PostgreSQL is needed for this test")
    engine = make_engine(f"{PG_URL}/postgres")
    yield engine
    engine.dispose()


class Echo:
    """A service answering through the real broker, in this process (so on this hub)."""

    name = "db_driver_echo"

    @rpc
    def echo(self, value):
        return value


@pytest.fixture
def echo_client():
    vhost = Vhost()
    previous = dict(nameko_config)
    nameko_config.setup({"AMQP_URI": vhost.uri, "serializer": "json"})
    runner = ServiceRunner()
    runner.add_service(Echo)
    runner.start()
    try:
        with ClusterRpcClient(uri=vhost.uri, timeout=30) as client:
            assert client.db_driver_echo.echo("warm") == "warm"
            yield client
    finally:
        runner.stop()
        runner.kill()
        vhost.delete()
        nameko_config.setup(previous)


def sleeping_in_postgresql(engine) -> eventlet.greenthread.GreenThread:
    """A greenthread in ``SELECT pg_sleep(1)``, started and in the server before this returns."""
    started = eventlet.event.Event()

    def sleep():
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # connected: what follows waits only on the sleep
            started.send()
            t0 = time.monotonic()
            conn.execute(text("SELECT pg_sleep(:s)"), {"s": SLEEP_SECONDS})
            return time.monotonic() - t0

    sleeper = eventlet.spawn(sleep)
    started.wait()
    eventlet.sleep(0.05)  # the sleep's query is sent
    return sleeper


def test_a_query_waits_on_the_hub_and_an_rpc_and_another_query_run_meanwhile(engine, echo_client):
    with engine.connect() as other:
        other.execute(text("SELECT 1"))
        other.rollback()
        sleeper = sleeping_in_postgresql(engine)
        t0 = time.monotonic()
        assert echo_client.db_driver_echo.echo("during the sleep") == "during the sleep"
        rpc_seconds = time.monotonic() - t0
        t0 = time.monotonic()
        assert other.execute(text("SELECT 41 + 1")).scalar() == 42
        query_seconds = time.monotonic() - t0
        timer = time.monotonic()
        eventlet.sleep(0.01)
        timer_seconds = time.monotonic() - timer
        assert not sleeper.dead  # all of it while the sleep was still running
        slept = sleeper.wait()
    assert slept >= SLEEP_SECONDS * 0.9
    assert rpc_seconds < QUICK_SECONDS, f"an RPC took {rpc_seconds:.2f} s while a query slept"
    assert query_seconds < QUICK_SECONDS, f"a query took {query_seconds:.2f} s while another slept"
    assert timer_seconds < QUICK_SECONDS


def test_without_the_wait_callback_a_query_would_hold_the_hub(engine):
    """The control: the measurement above sees a blocked hub (psycopg2 as it comes)."""
    installed = extensions.get_wait_callback()
    assert installed is not None
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        conn.rollback()
        ticks = []

        def tick():
            while True:
                t0 = time.monotonic()
                eventlet.sleep(0.01)
                ticks.append(time.monotonic() - t0)

        ticker = eventlet.spawn(tick)
        eventlet.sleep(0.05)
        extensions.set_wait_callback(None)
        try:
            conn.execute(text("SELECT pg_sleep(:s)"), {"s": SLEEP_SECONDS / 2})
        finally:
            extensions.set_wait_callback(installed)
        eventlet.sleep(0.05)
        ticker.kill()
        conn.rollback()
    assert max(ticks) >= SLEEP_SECONDS / 2 * 0.9


def test_round_trips_per_statement_transaction_and_autocommit(engine):
    with engine.connect() as conn, RoundTrips() as trips:
        trips.only(conn.connection.dbapi_connection)
        conn.execute(text("CREATE TEMP TABLE t (id int PRIMARY KEY, v text) ON COMMIT PRESERVE ROWS"))
        conn.commit()
        # psycopg2's BEGIN is an exchange of its own before a transaction's first statement.
        assert trips.of(lambda: conn.execute(text("INSERT INTO t VALUES (:i, :v)"), {"i": 1, "v": "a"})) == 2
        assert trips.of(lambda: conn.execute(text("SELECT v FROM t WHERE id = :i"), {"i": 1})) == 1
        assert trips.of(conn.commit) == 1
        # Many rows: one INSERT (SQLAlchemy's insertmanyvalues), not one per row.
        t = table("t", column("id"), column("v"))
        many = [{"id": n, "v": str(n)} for n in range(2, 202)]
        assert trips.of(lambda: conn.execute(insert(t), many)) == 2  # BEGIN, the INSERT
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 201
        assert trips.of(conn.rollback) == 1
        # A multi-statement execute is one exchange (the simple protocol).
        assert trips.of(lambda: conn.exec_driver_sql("SELECT 1; SELECT 2")) == 2  # BEGIN, then both
        assert trips.of(conn.rollback) == 1
        # Autocommit: no BEGIN, nothing to end.
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        assert trips.of(lambda: auto.execute(text("SELECT count(*) FROM t")).scalar()) == 1
        assert trips.of(auto.rollback) == 0


def test_a_transaction_is_one_and_autocommit_opens_none(engine):
    with engine.connect() as conn:
        first = conn.execute(text("SELECT now(), txid_current()")).one()
        conn.execute(text("SELECT pg_sleep(0.01)"))
        assert conn.execute(text("SELECT now(), txid_current()")).one() == first
        conn.rollback()
        assert conn.execute(text("SELECT txid_current()")).scalar() != first[1]
        conn.rollback()
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        one = auto.execute(text("SELECT txid_current()")).scalar()
        assert auto.execute(text("SELECT txid_current()")).scalar() != one
        assert auto.connection.dbapi_connection.info.transaction_status == extensions.TRANSACTION_STATUS_IDLE


def test_errors_rows_and_the_connection_after_them(engine):
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE t (id int PRIMARY KEY)"))
        assert conn.execute(text("INSERT INTO t VALUES (1), (2) RETURNING id")).scalars().all() == [1, 2]
        with pytest.raises(IntegrityError) as duplicate:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert duplicate.value.orig.pgcode == "23505"
        conn.rollback()
        with pytest.raises(ProgrammingError) as missing:
            conn.execute(text("SELECT * FROM no_such_table"))
        assert missing.value.orig.pgcode == "42P01"
        conn.rollback()
        with pytest.raises(ProgrammingError) as syntax:
            conn.execute(text("SELEC 1"))
        assert syntax.value.orig.pgcode == "42601"
        conn.rollback()
        assert conn.execute(text("SELECT generate_series(1, 3)")).scalars().all() == [1, 2, 3]
        assert conn.execute(text("SELECT NULL::text, 'é'::text, CAST('2026-12-04' AS date)")).one()[:2] == (None, "é")
        assert str(conn.execute(text("SELECT CAST('2026-12-04' AS date)")).scalar()) == "2026-12-04"


def test_a_connection_reused_at_once_is_not_pinged_and_a_dead_idle_one_is_replaced(monkeypatch):
    if not postgres_available():
        pytest.fail("PostgreSQL is needed for this test")
    from weintervene import db

    monkeypatch.setattr(db, "IDLE_BEFORE_PING_SECONDS", 0.2)
    engine = make_engine(f"{PG_URL}/postgres")
    admin = make_engine(f"{PG_URL}/postgres").execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            raw = conn.connection.dbapi_connection
            conn.rollback()
        with RoundTrips() as trips, engine.connect() as conn:  # the same connection, at once: no ping
            trips.only(raw)
            assert conn.connection.dbapi_connection is raw
            conn.execute(text("SELECT 1"))
            conn.rollback()
            assert trips.count == 3  # BEGIN, the statement, ROLLBACK; no ping
        with admin.connect() as a:
            assert a.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        time.sleep(0.3)  # idle long enough to be pinged: found dead, replaced
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
        admin.dispose()


class ScratchBase(DeclarativeBase):
    pass


class Item(ScratchBase):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    note: Mapped[str] = mapped_column(String(20))


class Tag(ScratchBase):
    __tablename__ = "tag"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(20))


@pytest.fixture
def session_and_tables():
    if not postgres_available():
        pytest.fail("PostgreSQL is needed for this test")
    with scratch_postgres_database("wit_driver") as url:
        engine = make_engine(url)
        ScratchBase.metadata.create_all(engine)
        session = Session(engine)
        try:
            yield session, engine
        finally:
            session.close()
            engine.dispose()


def committed_ids(engine, table: str = "item") -> list[int]:
    with engine.connect() as other:  # another connection sees only what was committed
        return other.execute(text(f"SELECT id FROM {table} ORDER BY id")).scalars().all()


def test_rows_of_several_tables_go_in_one_statement(session_and_tables):
    session, engine = session_and_tables
    session.connection()
    with RoundTrips() as trips:
        trips.only(session.connection().connection.dbapi_connection)
        insert_together(session, [(Item, [{"id": 1, "note": "a"}, {"id": 2, "note": "b"}]),
                                  (Tag, [{"id": n, "item_id": 1, "label": "x"} for n in range(50)])], commit=True)
        assert trips.count == 3  # BEGIN, the one INSERT for both tables, COMMIT
    assert committed_ids(engine) == [1, 2] and len(committed_ids(engine, "tag")) == 50


def test_a_failing_insert_commits_nothing_and_the_session_goes_on(session_and_tables):
    session, engine = session_and_tables
    session.execute(text("INSERT INTO item VALUES (1, 'a')"))  # in the same transaction as the failure
    with pytest.raises(IntegrityError):
        insert_together(session, [(Item, [{"id": 5, "note": "e"}, {"id": 1, "note": "again"}])], commit=True)
    session.rollback()
    assert committed_ids(engine) == []
    insert_together(session, [(Item, [{"id": 6, "note": "f"}])], commit=True)
    assert committed_ids(engine) == [6]


def test_a_commit_that_fails_is_raised_and_nothing_is_kept(session_and_tables):
    """A deferred constraint is checked at COMMIT: the COMMIT's own error reaches the caller."""
    session, engine = session_and_tables
    session.execute(text("ALTER TABLE item ADD CONSTRAINT one_note UNIQUE (note) DEFERRABLE INITIALLY DEFERRED"))
    session.commit()
    with pytest.raises(IntegrityError) as at_commit:
        insert_together(session, [(Item, [{"id": 7, "note": "same"}, {"id": 8, "note": "same"}])], commit=True)
    assert at_commit.value.orig.pgcode == "23505"
    session.rollback()
    assert committed_ids(engine) == []
    insert_together(session, [(Item, [{"id": 9, "note": "g"}])], commit=True)
    assert committed_ids(engine) == [9]


def test_a_statement_that_ends_its_transaction_returns_its_rows_and_count(session_and_tables):
    session, engine = session_and_tables
    insert_together(session, [(Item, [{"id": n, "note": "queued"} for n in (1, 2, 3)])], commit=True)
    session.execute(text("UPDATE item SET note = 'seen' WHERE id = 3"))  # the same transaction
    items = Item.__table__
    rows, count = execute_then_commit(
        session, update(items).where(items.c.id.in_([1, 2])).values(note="sent").returning(items.c.id))
    assert sorted(r.id for r in rows) == [1, 2] and count == 2
    with engine.connect() as other:
        assert other.execute(text("SELECT id, note FROM item ORDER BY id")).all() == [
            (1, "sent"), (2, "sent"), (3, "seen")]
