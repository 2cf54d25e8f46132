"""Alembic environment of the directory service (logic shared in weintervene.db)."""
from services.directory.models import Base
from weintervene.db import run_migrations_env

run_migrations_env(Base.metadata)
