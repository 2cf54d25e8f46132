"""Direct access to identity's own database in integration tests (to move clocks
and to prove what is and is not stored). Tests only; services never do this."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import Text, cast, create_engine, func, inspect, select, table, column, text


@contextmanager
def identity_engine(system):
    engine = create_engine(system.settings.database_url("identity"))
    try:
        yield engine
    finally:
        engine.dispose()


def execute(system, sql: str, **params):
    with identity_engine(system) as engine, engine.begin() as conn:
        result = conn.execute(text(sql), params)
        return result.fetchall() if result.returns_rows else result.rowcount


def tables_holding(system, value: str) -> list[str]:
    """Every table.column of identity's database whose text contains ``value``."""
    hits = []
    with identity_engine(system) as engine, engine.connect() as conn:
        inspector = inspect(conn)
        for table_name in inspector.get_table_names():
            for col in inspector.get_columns(table_name):
                t = table(table_name, column(col["name"]))
                n = conn.scalar(
                    select(func.count()).select_from(t).where(cast(t.c[col["name"]], Text).contains(value))
                )
                if n:
                    hits.append(f"{table_name}.{col['name']}")
    return hits


def count_rows(system, table_name: str, where: str = "", **params) -> int:
    sql = f"SELECT count(*) FROM {table_name}" + (f" WHERE {where}" if where else "")
    return execute(system, sql, **params)[0][0]
