"""Every service's migrations build exactly what its models declare: a model change
without its migration (a new table, column, type or index) fails here, not in production."""
from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.support.databases import migrated_session
from weintervene.config import SERVICES

# Directory's full-text index: created by its migrations with raw SQL (an FTS5 virtual
# table and its shadow tables), never declared as a model.
NOT_MODELLED = ("service_fts",)


def _unmodelled_table(difference) -> bool:
    return (isinstance(difference, tuple) and difference[0] == "remove_table"
            and difference[1].name.startswith(NOT_MODELLED))


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_models(tmp_path, service):
    base = importlib.import_module(f"services.{service}.models").Base
    with migrated_session(tmp_path, service) as db:
        context = MigrationContext.configure(db.connection(), opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, base.metadata) if not _unmodelled_table(d)]
    assert differences == []


def _predicate(sql: str | None) -> str | None:
    """The WHERE of a CREATE INDEX statement, spaces and quotes of names dropped, or None."""
    if not sql or " WHERE " not in sql.upper():
        return None
    where = sql[sql.upper().rindex(" WHERE ") + 7:]
    return " ".join(where.replace('"', "").split()).lower()


def _model_predicates(base, dialect: str) -> dict[str, str | None]:
    return {index.name: _predicate(f" WHERE {index.dialect_options[dialect]['where']}"
                                   if index.dialect_options[dialect]["where"] is not None else None)
            for table in base.metadata.tables.values() for index in table.indexes}


@pytest.mark.parametrize("service", SERVICES)
def test_partial_indexes_are_built_with_the_models_predicates(tmp_path, service):
    """Autogenerate compares an index's name and columns, not its WHERE: a partial index
    whose migration and model disagree (or a model index the migrations left partial)
    would pass the test above. The outbox's and referrals' queue indexes are partial."""
    from sqlalchemy import text

    base = importlib.import_module(f"services.{service}.models").Base
    with migrated_session(tmp_path, service) as db:
        built = dict(db.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")).all())
    declared = _model_predicates(base, "sqlite")
    assert {name: _predicate(built.get(name)) for name in declared} == declared
    assert declared["ix_outbox_message_pending"] == "published_at is null"


@pytest.mark.parametrize("service", SERVICES)
def test_the_partial_index_migrations_go_down_and_up_again(tmp_path, service):
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect

    from weintervene.db import alembic_config

    with migrated_session(tmp_path, service) as db:
        engine = db.get_bind()
        script = ScriptDirectory.from_config(alembic_config(service))
        revision = next(r for r in script.walk_revisions() if "partial_indexes" in (r.module.__file__ or ""))
        with engine.begin() as conn:
            command.downgrade(alembic_config(service, conn), revision.down_revision)
        outbox = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("outbox_message")}
        assert outbox == {"ix_outbox_message_created_at": ["created_at"], "ix_outbox_message_published_at": ["published_at"]}
        with engine.begin() as conn:
            command.upgrade(alembic_config(service, conn), "head")
        base = importlib.import_module(f"services.{service}.models").Base
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert [d for d in compare_metadata(context, base.metadata) if not _unmodelled_table(d)] == []
