"""Read-only entrypoints (weintervene.db.Database) where PostgreSQL is not in play, and
identity's list of them. The PostgreSQL behaviour: tests/integration/test_db_read_only_entrypoints.py."""
from __future__ import annotations

from sqlalchemy import func, select

from services.identity.dependencies import READ_ONLY_ENTRYPOINTS, identity_database
from services.identity.models import Base, Tenant
from services.identity.service import IdentityService
from weintervene.db import Database


class Worker:
    def __init__(self, method_name: str):
        self.entrypoint = type("Entrypoint", (), {"method_name": method_name})()


def test_on_sqlite_a_read_only_entrypoint_gets_the_usual_session(tmp_path):
    database = Database("identity", Base, read_only_entrypoints=("reads",))
    database.open(f"sqlite:///{tmp_path}/identity.db")
    try:
        assert database.reader_sessionmaker is None
        for method_name in ("reads", "writes"):
            worker = Worker(method_name)
            session = database.get_dependency(worker)
            session.add(Tenant(kind="district", name=method_name))
            session.commit()
            database.worker_teardown(worker)
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(Tenant)) == 2
    finally:
        database.stop()


def test_identity_names_only_its_own_rpcs_as_read_only():
    assert identity_database().read_only_entrypoints == frozenset(READ_ONLY_ENTRYPOINTS)
    for name in READ_ONLY_ENTRYPOINTS:
        assert callable(getattr(IdentityService, name, None)), name
