"""analytics's dependency providers: its database.

Example::

    class AnalyticsService:
        db = analytics_database()   # a SQLAlchemy session per worker
"""
from __future__ import annotations

from services.analytics.models import Base
from weintervene.db import Database


def analytics_database() -> Database:
    return Database("analytics", Base)
