"""deletion and inspection requests: subject references record the id of their key ("0:" for the legacy key)

Revision ID: a7d3e9f2c5b1
Revises: 9e4a7c1b3d62
Create Date: 2026-12-04 03:10:00

Keys are versioned (weintervene.hashing): a stored keyed hash is "<key id>:<64 hex>".
Every ``subject_ref`` stored so far was made with the single WEINTERVENE_SECRET_KEY of
the time, which is key "0" (the default WEINTERVENE_SECRET_KEY_ID): they get that
prefix, so they still match. The audit log's entries are never changed (its hash chain
and the database trigger forbid it): a ``subject_ref`` in an entry's details stays as it
was written, bare hex meaning key 0. The columns widen to hold the id.
"""
from alembic import op
import sqlalchemy as sa


revision = 'a7d3e9f2c5b1'
down_revision = '9e4a7c1b3d62'
branch_labels = None
depends_on = None

TABLES = ('deletion_request', 'inspection_request')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('subject_ref', existing_type=sa.String(length=64), type_=sa.String(length=96))
        op.execute(f"UPDATE {table} SET subject_ref = '0:' || subject_ref WHERE subject_ref NOT LIKE '%:%'")


def downgrade() -> None:
    conn = op.get_bind()
    for table in TABLES:
        other = conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE subject_ref LIKE '%:%' "
                                     "AND subject_ref NOT LIKE '0:%'")).scalar()
        if other:
            raise RuntimeError(f"{other} rows of {table} hold a subject_ref made under a rotated key")
        op.execute(f"UPDATE {table} SET subject_ref = substr(subject_ref, 3) WHERE subject_ref LIKE '0:%'")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('subject_ref', existing_type=sa.String(length=96), type_=sa.String(length=64))
