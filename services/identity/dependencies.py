"""Identity's dependency providers (its database)."""
from services.identity.models import Base
from weintervene.db import Database


def identity_database() -> Database:
    return Database("identity", Base)
