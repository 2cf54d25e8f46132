"""term set counters: one row per set of terms a share carried, not per term

A share carrying two terms of one top-level category was counted twice for
that category; per-term rows cannot tell one such share from two shares. The
existing per-term counts are carried over as one-term sets (their figures
stay exactly what they were); new shares are counted by their whole set.

Revision ID: 7c2a9e41d5b3
Revises: d42cd1b2ff60
Create Date: 2026-11-28 15:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '7c2a9e41d5b3'
down_revision = 'd42cd1b2ff60'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('term_set_share_count',
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('taxonomy_term_ids', sa.String(length=1850), nullable=False),
    sa.Column('district_id', sa.String(length=36), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'day', 'channel', 'taxonomy_term_ids')
    )
    op.execute(
        "INSERT INTO term_set_share_count (tenant_id, day, channel, taxonomy_term_ids, district_id, count) "
        "SELECT tenant_id, day, channel, taxonomy_term_id, min(district_id), sum(count) FROM term_share_count "
        "GROUP BY tenant_id, day, channel, taxonomy_term_id"
    )
    op.drop_table('term_share_count')


def downgrade() -> None:
    # Per-service term counts cannot be recovered from sets: the old table comes back empty.
    op.create_table('term_share_count',
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('service_id', sa.String(length=36), nullable=False),
    sa.Column('taxonomy_term_id', sa.String(length=36), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('district_id', sa.String(length=36), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'day', 'service_id', 'taxonomy_term_id', 'channel')
    )
    op.drop_table('term_set_share_count')
