"""The scrub after a deletion (weintervene.remnants) on real PostgreSQL and SQLite files:
a deleted row's bytes gone from the heap and its index, and no rewrite while a
transaction older than the deletion (in another database too) could still see it."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tests.support.db_files import holding, postgres_database_files, sqlite_folder_files
from tests.support.infra import PG_URL, scratch_postgres_database
from weintervene.db import make_engine
from weintervene.remnants import RowsStillVisible, scrub

pytestmark = pytest.mark.integration

NAME, EMAIL = "Quintessa Remnantova", "quintessa.remnantova@family.example"


def make_people(conn) -> None:
    """5,000 people, then the subject: the newest row of the last page and the last key
    of the email index, where a plain VACUUM leaves every byte in place."""
    conn.execute(text("CREATE TABLE person (id serial PRIMARY KEY, name text, email varchar(254))"))
    conn.execute(text("CREATE INDEX ix_person_email ON person (email)"))
    conn.execute(text("INSERT INTO person (name, email) SELECT 'Person ' || g, 'p' || g || '@x.example' "
                      "FROM generate_series(1, 5000) g"))
    conn.execute(text("INSERT INTO person (name, email) VALUES (:n, :e)"), {"n": NAME, "e": EMAIL})


def left_behind(url) -> list[str]:
    files = postgres_database_files(url)
    return sorted(set(holding(files, NAME)) | set(holding(files, EMAIL)))


def test_postgresql_a_deleted_row_leaves_the_files_only_once_no_older_transaction_can_see_it():
    with scratch_postgres_database("wit_scrub") as url:
        engine = make_engine(url)
        bystander = create_engine(f"{PG_URL}/postgres")  # another database of the cluster
        try:
            with engine.begin() as conn:
                make_people(conn)
            with bystander.connect() as other:
                other.execute(text("SELECT pg_current_xact_id()"))  # a transaction with an id, left open
                with engine.begin() as conn:
                    conn.execute(text("DELETE FROM person WHERE email = :e"), {"e": EMAIL})
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM (INDEX_CLEANUP ON) person"))
                assert left_behind(url), "a plain VACUUM was expected to leave the bytes (the premise)"
                with pytest.raises(RowsStillVisible):
                    scrub(engine, {"person"}, wait_seconds=1.0)
                assert left_behind(url)
                other.rollback()
            timings = scrub(engine, {"person"}, wait_seconds=10.0)
            assert set(timings) == {"person"}
            assert left_behind(url) == []
            with engine.connect() as conn:  # the table itself is whole
                assert conn.scalar(text("SELECT count(*) FROM person")) == 5000
        finally:
            engine.dispose()
            bystander.dispose()


def test_sqlite_a_deleted_row_leaves_the_database_file_and_its_wal(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/service.db")
    try:
        with engine.begin() as conn:
            make_sqlite_people(conn)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM person WHERE email = :e"), {"e": EMAIL})
        assert holding(sqlite_folder_files(tmp_path), EMAIL) == ["service.db-wal"]
        scrub(engine, set())
        files = sqlite_folder_files(tmp_path)
        assert holding(files, EMAIL) == [] and holding(files, NAME) == []
        assert files["service.db-wal"] == b""
        with engine.connect() as conn:
            assert conn.scalar(text("PRAGMA secure_delete")) == 1
            assert conn.scalar(text("SELECT count(*) FROM person")) == 500
    finally:
        engine.dispose()


def make_sqlite_people(conn) -> None:
    conn.execute(text("CREATE TABLE person (id integer PRIMARY KEY, name text, email text)"))
    conn.execute(text("CREATE INDEX ix_person_email ON person (email)"))
    for i in range(500):
        conn.execute(text("INSERT INTO person (name, email) VALUES (:n, :e)"), {"n": f"Person {i}", "e": f"p{i}@x.example"})
    conn.execute(text("INSERT INTO person (name, email) VALUES (:n, :e)"), {"n": NAME, "e": EMAIL})
