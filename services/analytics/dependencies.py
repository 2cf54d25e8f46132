"""analytics's dependency providers."""
from services.analytics.models import Base
from weintervene.db import Database


def analytics_database() -> Database:
    return Database("analytics", Base)
