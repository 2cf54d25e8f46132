"""referrals's dependency providers."""
from services.referrals.models import Base
from weintervene.db import Database


def referrals_database() -> Database:
    return Database("referrals", Base)
