"""attribute.label (HSDS 3.1): a human-readable label for an attribute's value

Imported from an HSDS 3.1 ``attributes.csv`` (or JSON), exported in the spec's column, served
on every ``attributes`` entry of the HSDS API.

Revision ID: f3a1c9e5b7d2
Revises: c02324f20e46
Create Date: 2026-12-04 04:32:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'f3a1c9e5b7d2'
down_revision = 'c02324f20e46'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('attribute', schema=None) as batch_op:
        batch_op.add_column(sa.Column('label', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('attribute', schema=None) as batch_op:
        batch_op.drop_column('label')
