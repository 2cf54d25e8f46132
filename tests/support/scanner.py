"""Search every table of every service's database for a value (proof that a deletion is complete).

Reflects each service's database as it is (whatever its models say), and looks
for the value in every column that can hold text: equality for short string
columns, a substring match for long text and JSON (an id inside a payload).

Example::

    hits = scan_for(system.settings, student_id)
    assert hits == [], hits   # [("referrals", "share", "student_id", 3), ...] when something is left
"""
from __future__ import annotations

from sqlalchemy import JSON, MetaData, String, Text, cast, create_engine, func, or_, select
from sqlalchemy.types import NullType

from weintervene.config import SERVICES

IGNORED_TABLES = frozenset({"alembic_version"})


def _text_columns(table):
    for column in table.columns:
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            python_type = None
        if isinstance(column.type, (String, Text, JSON, NullType)) or python_type in (str, dict, list):
            yield column


def scan_engine(engine, value: str) -> list[tuple[str, str, int]]:
    """``[(table, column, rows)]`` where ``value`` occurs in that database."""
    metadata = MetaData()
    metadata.reflect(bind=engine)
    hits = []
    needle = str(value)
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in IGNORED_TABLES:
                continue
            for column in _text_columns(table):
                as_text = cast(column, Text)
                condition = or_(as_text == needle, as_text.contains(needle))
                n = conn.scalar(select(func.count()).select_from(table).where(condition))
                if n:
                    hits.append((table.name, column.name, n))
    return hits


def scan_for(settings, value: str, services=SERVICES) -> list[tuple[str, str, str, int]]:
    """``[(service, table, column, rows)]`` for every place ``value`` is still stored."""
    hits = []
    for service in services:
        engine = create_engine(settings.database_url(service))
        try:
            hits.extend((service, *hit) for hit in scan_engine(engine, value))
        finally:
            engine.dispose()
    return hits
