"""A directory database on SQLite (the embedded default) for tests of the directory's modules."""
from __future__ import annotations

from sqlalchemy.orm import Session

from services.directory.taxonomy import TermTree, load_open_eligibility
from weintervene.db import make_engine, migrate


def sqlite_directory(path) -> Session:
    """A migrated directory database in ``path`` with Open Eligibility loaded."""
    engine = make_engine(f"sqlite:///{path}")
    migrate("directory", engine)
    session = Session(engine)
    TermTree.invalidate()
    load_open_eligibility(session)
    return session
