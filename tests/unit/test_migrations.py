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
