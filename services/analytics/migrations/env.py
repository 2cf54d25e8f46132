"""Alembic environment of the analytics service (logic shared in weintervene.db)."""
from services.analytics.models import Base
from weintervene.db import run_migrations_env

run_migrations_env(Base.metadata)
