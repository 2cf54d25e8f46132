"""deletion receipts: what this service deleted per deletion request, over every run

A request may run more than once (a copy redelivered after a broker restart, a
re-send); the receipt keeps the totals, so every confirmation carries what was
really deleted rather than a repeat's zeros (weintervene.deletion). No personal
data: retention's request id and counts per table; kept for good.

Revision ID: d4b3ea73f1d6
Revises: 7c2a9e41d5b3
Create Date: 2026-11-28 20:38:22.713803
"""
from alembic import op
import sqlalchemy as sa
import weintervene.db


revision = 'd4b3ea73f1d6'
down_revision = '7c2a9e41d5b3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deletion_receipt',
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.Column('first_completed_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_run_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('request_id')
    )


def downgrade() -> None:
    op.drop_table('deletion_receipt')
