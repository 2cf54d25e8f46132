"""weintervene.db.ensure_database on a real PostgreSQL."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text

from tests.support.infra import PG_URL, postgres_available, random_suffix
from weintervene.db import ensure_database

pytestmark = pytest.mark.integration


def test_replicas_starting_together_both_find_their_database():
    """Two processes of one service on a new cluster: both ensure the database at once."""
    if not postgres_available():
        pytest.fail("PostgreSQL is needed for this test")
    name = f"wit_race_{random_suffix()}"
    errors, start = [], threading.Barrier(4)

    def replica():
        start.wait()
        try:
            ensure_database(f"{PG_URL}/{name}")
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    admin = create_engine(f"{PG_URL}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}) == 1
            conn.execute(text(f'DROP DATABASE "{name}"'))
    finally:
        admin.dispose()
    assert errors == []
