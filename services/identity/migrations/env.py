"""Alembic environment of the identity service (logic shared in weintervene.db)."""
from services.identity.models import Base
from weintervene.db import run_migrations_env

run_migrations_env(Base.metadata)
