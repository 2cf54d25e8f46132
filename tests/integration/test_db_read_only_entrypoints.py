"""weintervene.db's read-only entrypoints on a real PostgreSQL (identity's share path runs
them): no BEGIN or ROLLBACK round trips, any write refused by PostgreSQL, and every
other session's transaction committed or rolled back whole, as before."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from services.identity.models import Base, Tenant
from tests.support.infra import PG_URL, postgres_available, random_suffix
from tests.support.round_trips import RoundTrips
from weintervene.db import Database
from weintervene.deletion import sqlstate

pytestmark = pytest.mark.integration

READ_ONLY = "25006"  # PostgreSQL: read_only_sql_transaction


class Worker:
    """What Database.get_dependency reads of a nameko worker context."""

    def __init__(self, method_name: str):
        self.entrypoint = type("Entrypoint", (), {"method_name": method_name})()


@pytest.fixture
def database():
    """identity's schema in a fresh PostgreSQL database, behind a Database whose
    ``reads`` entrypoint is read-only."""
    if not postgres_available():
        pytest.fail("PostgreSQL is needed for this test")
    name = f"wit_readonly_{random_suffix()}"
    db = Database("identity", Base, read_only_entrypoints=("reads",))
    db.open(f"{PG_URL}/{name}")  # creates the database and migrates it
    try:
        yield db
    finally:
        db.stop()
        admin = create_engine(f"{PG_URL}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sent(database):
    """The round trips to PostgreSQL on ``database``'s connections (psycopg2's own BEGIN,
    COMMIT and ROLLBACK included); not those of services running in this process meanwhile."""
    trips = RoundTrips()
    for engine in (database.engine, database.reader_engine):
        event.listen(engine, "connect", lambda dbapi_connection, _record: trips.add(dbapi_connection))
        engine.dispose()  # from now on every connection is a new one, and ours
    with trips:
        yield trips


def run(database, method_name: str, work):
    """``work(session)`` as the worker of ``method_name`` would, teardown included."""
    worker = Worker(method_name)
    session = database.get_dependency(worker)
    try:
        return work(session)
    finally:
        database.worker_teardown(worker)


def tenants(database, name: str) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(Tenant).where(Tenant.name == name))


def test_a_read_only_entrypoint_sends_no_begin_and_no_rollback(database, sent):
    def two_reads(session):
        session.execute(select(Tenant.id)).all()
        return session.scalar(text("SHOW transaction_read_only"))

    run(database, "reads", two_reads)  # a new connection: the pool does not ping it
    # nor one used a moment ago (weintervene.db.ping_connections_idle_for): the SELECT and the SHOW
    assert sent.of(lambda: run(database, "reads", two_reads) == "on") == 2
    assert run(database, "reads", two_reads) == "on"
    # Any other entrypoint: one transaction, read-write, as before (psycopg2's BEGIN and the
    # session's ROLLBACK around the two statements).
    assert run(database, "writes", two_reads) == "off"
    assert sent.of(lambda: run(database, "writes", two_reads)) == 4


@pytest.mark.parametrize("write", [
    lambda session: (session.add(Tenant(kind="district", name="written")), session.flush()),
    lambda session: session.execute(insert(Tenant).values(id="t1", kind="district", name="written")),
    lambda session: session.execute(text("UPDATE tenant SET name = 'written'")),
    lambda session: session.execute(select(Tenant.id).with_for_update()).all(),
])
def test_a_write_in_a_read_only_entrypoint_is_refused_and_leaves_nothing(database, write):
    with pytest.raises(DBAPIError) as caught:
        run(database, "reads", write)
    assert sqlstate(caught.value) == READ_ONLY
    assert tenants(database, "written") == 0


def test_other_entrypoints_commit_or_roll_back_whole(database):
    def two_rows_then_a_failure(session):
        session.execute(insert(Tenant).values(id="t1", kind="district", name="half"))
        session.execute(insert(Tenant).values(id="t2", kind="district", name="half"))
        session.execute(insert(Tenant).values(id="t1", kind="district", name="half"))  # duplicate key

    with pytest.raises(DBAPIError):
        run(database, "writes", two_rows_then_a_failure)
    assert tenants(database, "half") == 0  # nothing committed half way

    def two_rows(session):
        session.add_all([Tenant(kind="district", name="whole"), Tenant(kind="district", name="whole")])
        session.flush()
        assert tenants(database, "whole") == 0  # not visible outside before the commit
        session.commit()

    run(database, "writes", two_rows)
    assert tenants(database, "whole") == 2


def test_a_connection_serves_readers_and_writers_in_turn(database):
    """Readers and writers in turn: neither leaves state for the next."""
    for turn in range(3):
        run(database, "reads", lambda session: session.execute(select(Tenant.id)).all())

        def write(session, turn=turn):
            session.add(Tenant(kind="district", name=f"turn{turn}"))
            session.commit()

        run(database, "writes", write)
        with pytest.raises(DBAPIError):
            run(database, "reads", lambda session: session.execute(text("DELETE FROM tenant")))
    assert database.engine.pool.checkedout() == 0 and database.reader_engine.pool.checkedout() == 0
    assert [tenants(database, f"turn{turn}") for turn in range(3)] == [1, 1, 1]
