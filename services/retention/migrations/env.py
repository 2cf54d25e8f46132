"""Alembic environment of the retention service (logic shared in weintervene.db)."""
from services.retention.models import Base
from weintervene.db import run_migrations_env

run_migrations_env(Base.metadata)
