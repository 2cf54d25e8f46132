"""directory's dependency providers."""
from services.directory.models import Base
from weintervene.db import Database


def directory_database() -> Database:
    return Database("directory", Base)
