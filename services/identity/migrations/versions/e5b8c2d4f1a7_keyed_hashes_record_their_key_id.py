"""subject fences: keyed hashes record the id of their key ("0:" for the legacy key)

Revision ID: e5b8c2d4f1a7
Revises: 579be002b170
Create Date: 2026-12-04 03:10:00

Keys are versioned (weintervene.hashing): a stored keyed hash is "<key id>:<64 hex>".
Every hash stored so far was made with the single WEINTERVENE_SECRET_KEY of the time,
which is key "0" (the default WEINTERVENE_SECRET_KEY_ID): they get that prefix, so they
still match after the upgrade, and after a rotation as long as key 0 is kept in
WEINTERVENE_PREVIOUS_SECRET_KEYS. The columns widen to hold the id.
"""
from alembic import op
import sqlalchemy as sa


revision = 'e5b8c2d4f1a7'
down_revision = '579be002b170'
branch_labels = None
depends_on = None

COLUMNS = ('subject_hash', 'roster_key_hash')


def upgrade() -> None:
    with op.batch_alter_table('subject_fence', schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.alter_column(column, existing_type=sa.String(length=64), type_=sa.String(length=96))
    for column in COLUMNS:
        op.execute(f"UPDATE subject_fence SET {column} = '0:' || {column} "
                   f"WHERE {column} IS NOT NULL AND {column} NOT LIKE '%:%'")


def downgrade() -> None:
    conn = op.get_bind()
    for column in COLUMNS:
        other = conn.execute(sa.text(f"SELECT count(*) FROM subject_fence WHERE {column} LIKE '%:%' "
                                     f"AND {column} NOT LIKE '0:%'")).scalar()
        if other:
            raise RuntimeError(f"{other} fences hold a {column} made under a rotated key: the old code cannot match them")
        op.execute(f"UPDATE subject_fence SET {column} = substr({column}, 3) WHERE {column} LIKE '0:%'")
    with op.batch_alter_table('subject_fence', schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.alter_column(column, existing_type=sa.String(length=96), type_=sa.String(length=64))
