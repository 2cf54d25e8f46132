"""Alembic environment of the referrals service (logic shared in weintervene.db)."""
from services.referrals.models import Base
from weintervene.db import run_migrations_env

run_migrations_env(Base.metadata)
