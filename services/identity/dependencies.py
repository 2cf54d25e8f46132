"""Identity's dependency providers (its database)."""
from services.identity.models import Base
from weintervene.db import Database

# Entrypoints that never write: on PostgreSQL they run without BEGIN / ROLLBACK, and
# PostgreSQL refuses a write there (weintervene.db.reads_without_transactions).
# They are on every share's path (share_contexts: referrals' batches of share_context).
READ_ONLY_ENTRYPOINTS = ("share_context", "share_contexts", "check_student_access", "delivery_contacts")


def identity_database() -> Database:
    return Database("identity", Base, read_only_entrypoints=READ_ONLY_ENTRYPOINTS)
