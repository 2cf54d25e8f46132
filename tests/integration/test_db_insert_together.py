"""weintervene.db.insert_together on a real PostgreSQL: several tables' rows in one
statement, foreign keys checked, Python defaults applied, types kept (the referrals share
path depends on it). SQLite's path is the plain executemany (unit tests of sharing)."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Date, ForeignKey, Integer, String, create_engine, event, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from tests.support.infra import scratch_postgres_database
from weintervene.db import JSONType, UTCDateTime, insert_together, utcnow
from weintervene.deletion import sqlstate

pytestmark = pytest.mark.integration


class Base(DeclarativeBase):
    pass


class Parent(Base):
    __tablename__ = "parent"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[object] = mapped_column(UTCDateTime)
    info: Mapped[object] = mapped_column(JSONType, nullable=True)
    tries: Mapped[int] = mapped_column(Integer, default=7)


class Child(Base):
    __tablename__ = "child"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    parent_id: Mapped[str] = mapped_column(ForeignKey("parent.id"))
    on_date: Mapped[object] = mapped_column(Date, nullable=True)


@pytest.fixture
def session():
    with scratch_postgres_database("wit_together") as url:
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        db = sessionmaker(engine)()
        try:
            yield db
        finally:
            db.close()
            engine.dispose()


def test_children_and_parents_in_one_statement_with_types_and_defaults(session):
    statements = []
    engine = session.get_bind()
    listener = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    now = utcnow()
    try:
        insert_together(session, [
            (Parent, [{"id": "p1", "created_at": now, "info": {"name": "Food pantry", "hours": ["9-5"]}},
                      {"id": "p2", "created_at": now, "info": None, "tries": 2}]),
            (Child, [{"id": "c1", "parent_id": "p1", "on_date": date(2026, 12, 12)},
                     {"id": "c2", "parent_id": "p2", "on_date": None}]),
            (Child, []),  # nothing to insert: left out
        ])
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    session.commit()
    assert len([s for s in statements if "INSERT" in s]) == 1
    p1, p2 = session.scalars(select(Parent).order_by(Parent.id)).all()
    assert p1.created_at == now and p1.info == {"name": "Food pantry", "hours": ["9-5"]} and p1.tries == 7
    assert p2.info is None and p2.tries == 2
    assert [(c.id, c.parent_id, c.on_date) for c in session.scalars(select(Child).order_by(Child.id))] == [
        ("c1", "p1", date(2026, 12, 12)), ("c2", "p2", None)]


def test_a_broken_foreign_key_writes_nothing(session):
    with pytest.raises(DBAPIError) as caught:  # psycopg2: an IntegrityError; SQLite: an IntegrityError too
        insert_together(session, [
            (Parent, [{"id": "p1", "created_at": utcnow()}]),
            (Child, [{"id": "c1", "parent_id": "nobody"}]),
        ])
    assert sqlstate(caught.value) == "23503"  # foreign_key_violation, checked at the statement's end
    session.rollback()
    assert session.scalars(select(Parent)).all() == []
