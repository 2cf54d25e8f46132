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
