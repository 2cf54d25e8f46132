"""A database that refuses the work for now is a 503 to retry, not a 500 "internal error"
(``weintervene.db.database_refusal``, applied to every RPC's answer by our ``rpc`` entrypoint)."""
from __future__ import annotations

import psycopg2
import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError, ProgrammingError

from gateway.errors import error_response
from tests.support.infra import free_port
from weintervene.db import database_refusal
from weintervene.errors import Unavailable


def postgresql_error(sqlstate: str, message: str) -> ProgrammingError:
    """What SQLAlchemy raises for a PostgreSQL error psycopg2 received: psycopg2's error class
    for the SQLSTATE, whose ``pgcode`` is the server's (psycopg2 sets it only on errors it
    raises itself, so the class states it here)."""
    base = psycopg2.errors.lookup(sqlstate)
    error = type(base.__name__, (base,), {"pgcode": sqlstate})(message)
    return ProgrammingError("SELECT 1", {}, error)


@pytest.mark.parametrize("sqlstate, message", [
    ("53300", "sorry, too many clients already"),
    ("57P03", "the database system is starting up"),
    ("08006", "connection failure"),
    ("40P01", "deadlock detected"),
])
def test_a_database_that_cannot_take_the_work_now_is_a_503(sqlstate, message):
    refusal = database_refusal(postgresql_error(sqlstate, message))
    assert isinstance(refusal, Unavailable) and refusal.code == "database_unavailable"
    assert error_response(refusal)[0] == 503


def test_a_database_that_cannot_be_reached_is_a_503():
    engine = create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/nowhere")
    with pytest.raises(DBAPIError) as refused:
        engine.connect()
    assert isinstance(database_refusal(refused.value), Unavailable)


@pytest.mark.parametrize("error", [
    postgresql_error("42P01", 'relation "nope" does not exist'),  # our bug: stays a 500, logged
    postgresql_error("23505", "duplicate key value violates unique constraint"),
    ValueError("not a database error"),
])
def test_other_errors_are_left_as_they_are(error):
    assert database_refusal(error) is None
