"""outcome counters: referrals closed per tenant, day, term set, outcome and days open

Revision ID: 5e1a7c3d9b20
Revises: 3b8e1f6c2a47
Create Date: 2026-12-04 20:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '5e1a7c3d9b20'
down_revision = '3b8e1f6c2a47'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outcome_count',
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('taxonomy_term_ids', sa.String(length=1850), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('days_open', sa.Integer(), nullable=False),
    sa.Column('district_id', sa.String(length=36), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'day', 'taxonomy_term_ids', 'outcome', 'days_open')
    )


def downgrade() -> None:
    op.drop_table('outcome_count')
