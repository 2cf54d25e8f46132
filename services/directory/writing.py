"""Set-based reads and writes of HSDS rows for the importer: what is stored for a chunk of
ids in one SELECT, and the chunk's changed rows written back in one statement.

The importer used to load each chunk's stored rows as ORM objects and change them attribute
by attribute, which the session then flushed as one UPDATE per row: on PostgreSQL a round
trip per changed row, and on both databases a third of an import's CPU spent building and
tracking objects it read once. Here stored rows are plain dicts (a Core SELECT), and changed
rows go back as one multi-row ``INSERT … ON CONFLICT (id) DO UPDATE`` per chunk (SQLAlchemy
Core's PostgreSQL and SQLite ``insert``, so it works the same with any DBAPI driver).

Example::

    >>> stored = stored_rows(session, Service, ["1b0e…", "7c2a…"])
    >>> stored["1b0e…"]["name"]
    'After-school tutoring'
    >>> write_changed(session, Service, [{**stored["1b0e…"], "name": "Tutoring"}], ["name"])
"""
from __future__ import annotations

from sqlalchemy import select

# Bound parameters per statement: SQLite allows 32,766, PostgreSQL 65,535.
MAX_PARAMETERS = 30000


def stored_rows(session, model, ids: list[str]) -> dict[str, dict]:
    """Every column of the stored rows among ``ids``, by id (one SELECT)."""
    if not ids:
        return {}
    table = model.__table__
    return {row["id"]: dict(row) for row in session.execute(select(table).where(table.c.id.in_(ids))).mappings()}


def _insert_for(session, table):
    dialect = session.bind.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the directory runs on these two
        raise NotImplementedError(dialect)
    return insert(table)


def write_changed(session, model, rows: list[dict], columns: list[str]) -> None:
    """Write whole stored rows whose ``columns`` changed: one multi-row upsert per chunk, which
    sets only ``columns`` on the stored row (ownership and other columns of ours stay as they are).
    Every row carries every column of the table (they come from :func:`stored_rows`)."""
    if not rows:
        return
    table = model.__table__
    keys = list(rows[0])
    per_statement = max(1, MAX_PARAMETERS // len(keys))
    for start in range(0, len(rows), per_statement):
        statement = _insert_for(session, table).values([{k: row[k] for k in keys} for row in rows[start:start + per_statement]])
        session.execute(statement.on_conflict_do_update(
            index_elements=[table.c.id], set_={c: statement.excluded[c] for c in columns if c != "id"}))
