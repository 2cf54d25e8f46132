"""A fresh, migrated SQLite database of one service, for unit tests."""
from __future__ import annotations

import contextlib

from sqlalchemy.orm import sessionmaker

from weintervene.db import make_engine, migrate


@contextlib.contextmanager
def migrated_session(directory, service: str):
    """A session on ``directory/<service>.db`` migrated to head; closed (and its engine
    disposed) on exit.

    Example::

        @pytest.fixture
        def session(tmp_path):
            with migrated_session(tmp_path, "identity") as db:
                yield db
    """
    engine = make_engine(f"sqlite:///{directory}/{service}.db")
    migrate(service, engine)
    db = sessionmaker(engine, expire_on_commit=False)()
    try:
        yield db
    finally:
        db.close()
        engine.dispose()
