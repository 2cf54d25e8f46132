"""retention's dependency providers."""
from services.retention.models import Base
from weintervene.db import Database


def retention_database() -> Database:
    return Database("retention", Base)
