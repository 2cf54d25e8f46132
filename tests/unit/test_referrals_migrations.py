"""Referrals' migrations build every index its models declare (a model's ``index=True``
without a migration would leave production without it)."""
from __future__ import annotations

from sqlalchemy import inspect

from services.referrals.models import Base
from tests.support.databases import migrated_session


def test_every_declared_index_exists_after_migrating(tmp_path):
    with migrated_session(tmp_path, "referrals") as db:
        inspector = inspect(db.get_bind())
        missing = [
            (table.name, index.name)
            for table in Base.metadata.sorted_tables
            for index in table.indexes
            if index.name not in {i["name"] for i in inspector.get_indexes(table.name)}
        ]
    assert missing == []


def test_the_migrations_build_exactly_the_models(tmp_path):
    """Nothing left for autogenerate: every table, column, type, key and index of the models
    is made by a migration (and nothing else is)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with migrated_session(tmp_path, "referrals") as db:
        with db.get_bind().connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert differences == []


def test_the_idempotency_key_migration_goes_down_and_up_again(tmp_path):
    from alembic import command

    from weintervene.db import alembic_config

    with migrated_session(tmp_path, "referrals") as db:
        engine = db.get_bind()
        with engine.begin() as conn:
            command.downgrade(alembic_config("referrals", conn), "9d2e4b7c1a05")
        assert "idempotency_key" not in inspect(engine).get_table_names()
        with engine.begin() as conn:
            command.upgrade(alembic_config("referrals", conn), "head")
        inspector = inspect(engine)
        assert inspector.get_pk_constraint("idempotency_key")["constrained_columns"] == ["tenant_id", "user_id", "key_hash"]
        assert [fk["referred_table"] for fk in inspector.get_foreign_keys("idempotency_key")] == ["share"]
