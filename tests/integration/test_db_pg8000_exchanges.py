"""weintervene.db sends each pg8000 statement in one exchange with PostgreSQL, and every
answer and error is what pg8000 gives."""
from __future__ import annotations

import json
from datetime import date

import pg8000.core as core
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from tests.support.infra import PG_URL, postgres_available
from weintervene.db import make_engine

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

