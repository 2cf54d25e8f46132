"""weintervene.db sends each pg8000 statement in one exchange with PostgreSQL, and every
answer and error is what pg8000 gives."""
from __future__ import annotations

import json
from datetime import date

import pg8000.core as core
import pytest
from sqlalchemy import Integer, String, text
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tests.support.infra import PG_URL, postgres_available, scratch_postgres_database
from weintervene.db import insert_together, make_engine

pytestmark = pytest.mark.integration


class CountingSocket:
    """The connection's socket file, counting the flushes (each one a message sent and waited on)."""

    def __init__(self, sock):
        self.sock, self.flushes, self.writes = sock, 0, 0

    def flush(self):
        self.flushes += 1
        return self.sock.flush()

    def write(self, data):
        self.writes += 1
        return self.sock.write(data)

    def __getattr__(self, name):
        return getattr(self.sock, name)


@pytest.fixture
def connection():
    if not postgres_available():
        pytest.fail("PostgreSQL is needed for this test")
    engine = make_engine(f"{PG_URL}/postgres")
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        counting = raw._sock = CountingSocket(raw._sock)
        conn.info["counting"] = counting
        yield conn
    engine.dispose()


def exchanges_of(counting, run) -> int:
    before = counting.flushes
    run()
    return counting.flushes - before


def exchanges(conn, run) -> int:
    counting = conn.info["counting"]
    before = counting.flushes
    run()
    return counting.flushes - before


def test_a_statement_commit_and_rollback_cost_one_exchange_each(connection):
    conn = connection
    conn.execute(text("CREATE TEMP TABLE t (id int PRIMARY KEY, v text)"))
    assert core.CoreConnection.execute_unnamed.weintervene_one_exchange
    assert exchanges(conn, lambda: conn.execute(text("INSERT INTO t VALUES (:i, :v)"), {"i": 1, "v": "a"})) == 1
    assert exchanges(conn, conn.commit) == 1
    rows = []
    # A transaction's first statement carries its BEGIN.
    assert exchanges(conn, lambda: rows.extend(conn.execute(
        text("SELECT id, v, CAST(:d AS date) FROM t WHERE id = :i"), {"i": 1, "d": "2026-11-29"}).all())) == 1
    assert rows == [(1, "a", date(2026, 11, 29))]
    assert exchanges(conn, conn.rollback) == 1


def test_the_begin_sent_with_the_first_statement_opens_the_transaction(connection):
    conn = connection
    first = conn.execute(text("SELECT now(), txid_current()")).one()
    conn.execute(text("SELECT pg_sleep(0.01)"))
    second = conn.execute(text("SELECT now(), txid_current()")).one()
    assert first == second  # one transaction: the same start time and id
    conn.rollback()
    assert conn.execute(text("SELECT txid_current()")).scalar() != first[1]
    conn.rollback()


def test_autocommit_statements_open_no_transaction(connection):
    conn = connection.execution_options(isolation_level="AUTOCOMMIT")
    first = conn.execute(text("SELECT txid_current()")).scalar()
    assert conn.execute(text("SELECT txid_current()")).scalar() != first
    assert conn.connection.dbapi_connection._transaction_status == core.IDLE


def test_errors_rows_and_the_connection_after_them_are_as_before(connection):
    conn = connection
    conn.execute(text("CREATE TEMP TABLE t (id int PRIMARY KEY)"))
    assert conn.execute(text("INSERT INTO t VALUES (1), (2) RETURNING id")).scalars().all() == [1, 2]
    with pytest.raises(IntegrityError) as duplicate:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    assert "23505" in str(duplicate.value)
    conn.rollback()
    with pytest.raises(ProgrammingError) as missing:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert "42P01" in str(missing.value)
    conn.rollback()
    with pytest.raises(ProgrammingError) as syntax:
        conn.execute(text("SELEC 1"))
    assert "42601" in str(syntax.value)
    conn.rollback()
    assert conn.execute(text("SELECT generate_series(1, 3)")).scalars().all() == [1, 2, 3]
    assert conn.execute(text("SELECT NULL::text, 'é'::text")).one() == (None, "é")


def test_a_connection_reused_at_once_is_not_pinged_and_a_dead_idle_one_is_replaced(monkeypatch):
    if not postgres_available():
        pytest.fail("PostgreSQL is needed for this test")
    import time

    from weintervene import db

    monkeypatch.setattr(db, "IDLE_BEFORE_PING_SECONDS", 0.2)
    engine = make_engine(f"{PG_URL}/postgres")
    admin = make_engine(f"{PG_URL}/postgres").execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            raw = conn.connection.dbapi_connection
            counting = raw._sock = CountingSocket(raw._sock)
            conn.rollback()
        before = counting.flushes
        with engine.connect() as conn:  # the same connection, at once: no ping
            assert conn.connection.dbapi_connection is raw
            assert exchanges_of(counting, lambda: conn.execute(text("SELECT 1"))) == 1
            conn.rollback()
        assert counting.flushes - before == 2  # the statement and the ROLLBACK; no ping
        with admin.connect() as a:
            assert a.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        time.sleep(0.3)  # idle long enough to be pinged: found dead, replaced
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
        admin.dispose()


def test_a_statement_longer_than_the_socket_buffer_leaves_in_one_write(connection):
    """Written message by message, a batch of shares (over 8 KB) left in two sends, and the
    server held the statement open in ClientRead whenever this process lost its core between them."""
    conn = connection
    counting = conn.info["counting"]
    rows = [{"n": n, "note": "x" * 100} for n in range(200)]  # ~25 KB of parameters
    before = counting.writes
    result = conn.execute(text("SELECT count(*) FROM json_to_recordset(CAST(:rows AS json)) AS r(n int, note text)"),
                          {"rows": json.dumps(rows)}).scalar()
    assert result == 200
    assert counting.writes - before == 1
    conn.rollback()



class ScratchBase(DeclarativeBase):
    pass


class Item(ScratchBase):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    note: Mapped[str] = mapped_column(String(20))


@pytest.fixture
def session_and_table():
    """A session on a scratch table (``Item``), the socket's writes and flushes counted."""
    if not postgres_available():
        pytest.fail("PostgreSQL is needed for this test")
    with scratch_postgres_database("wit_commit_with") as url:
        engine = make_engine(url)
        ScratchBase.metadata.create_all(engine)
        session = Session(engine)
        try:
            raw = session.connection().connection.dbapi_connection
            counting = raw._sock = CountingSocket(raw._sock)
            session.commit()
            yield session, counting, engine
        finally:
            session.close()
            engine.dispose()


def committed_ids(engine) -> list[int]:
    with engine.connect() as other:  # another connection sees only what was committed
        return other.execute(text("SELECT id FROM item ORDER BY id")).scalars().all()


def test_an_insert_carries_its_commit_in_the_same_exchange(session_and_table):
    session, counting, engine = session_and_table
    assert exchanges_of(counting, lambda: insert_together(session, [(Item, [{"id": 1, "note": "a"},
                                                                            {"id": 2, "note": "b"}])],
                                                          commit=True)) == 1
    assert committed_ids(engine) == [1, 2]
    # The session goes on as usual: its next transaction begins, commits and rolls back for real.
    session.execute(text("INSERT INTO item VALUES (3, 'c')"))
    session.rollback()
    assert committed_ids(engine) == [1, 2]
    session.execute(text("INSERT INTO item VALUES (4, 'd')"))
    assert exchanges_of(counting, session.commit) == 1
    assert committed_ids(engine) == [1, 2, 4]


def test_a_failing_insert_commits_nothing_and_the_connection_goes_on(session_and_table):
    session, counting, engine = session_and_table
    session.execute(text("INSERT INTO item VALUES (1, 'a')"))  # in the same transaction as the failure
    with pytest.raises(IntegrityError):
        insert_together(session, [(Item, [{"id": 5, "note": "e"}, {"id": 1, "note": "again"}])], commit=True)
    session.rollback()
    assert committed_ids(engine) == []
    insert_together(session, [(Item, [{"id": 6, "note": "f"}])], commit=True)
    assert committed_ids(engine) == [6]


def test_a_commit_that_fails_is_raised_and_nothing_is_kept(session_and_table):
    """A deferred constraint is checked at COMMIT: the COMMIT's own error reaches the caller."""
    session, counting, engine = session_and_table
    session.execute(text("ALTER TABLE item ADD CONSTRAINT one_note UNIQUE (note) DEFERRABLE INITIALLY DEFERRED"))
    session.commit()
    with pytest.raises(IntegrityError) as at_commit:
        insert_together(session, [(Item, [{"id": 7, "note": "same"}, {"id": 8, "note": "same"}])], commit=True)
    assert "23505" in str(at_commit.value)
    session.rollback()
    assert committed_ids(engine) == []
    insert_together(session, [(Item, [{"id": 9, "note": "g"}])], commit=True)
    assert committed_ids(engine) == [9]


def test_a_statement_that_ends_its_transaction_returns_its_rows_and_count(session_and_table):
    from sqlalchemy import update

    from weintervene.db import execute_then_commit

    session, counting, engine = session_and_table
    insert_together(session, [(Item, [{"id": n, "note": "queued"} for n in (1, 2, 3)])], commit=True)
    session.execute(text("UPDATE item SET note = 'seen' WHERE id = 3"))  # the same transaction
    ended = []
    table = Item.__table__
    assert exchanges_of(counting, lambda: ended.append(execute_then_commit(
        session, update(table).where(table.c.id.in_([1, 2])).values(note="sent").returning(table.c.id)))) == 1
    [(rows, count)] = ended
    assert sorted(r.id for r in rows) == [1, 2] and count == 2
    with engine.connect() as other:
        assert other.execute(text("SELECT id, note FROM item ORDER BY id")).all() == [
            (1, "sent"), (2, "sent"), (3, "seen")]
