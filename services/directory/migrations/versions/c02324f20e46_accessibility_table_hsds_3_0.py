"""accessibility table (HSDS 3.0): what a location offers people with disabilities

Imported from HSDS 1.x/2.0 ``accessibility_for_disabilities.csv`` and HSDS 3.0
``accessibility.csv``; served under a location's ``accessibility`` in the HSDS API.

Revision ID: c02324f20e46
Revises: 5a9c2e7d1f38
Create Date: 2026-12-04 04:04:15
"""
from alembic import op
import sqlalchemy as sa


revision = 'c02324f20e46'
down_revision = '5a9c2e7d1f38'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accessibility',
                    sa.Column('id', sa.String(length=36), nullable=False),
                    sa.Column('location_id', sa.String(length=36), nullable=True),
                    sa.Column('description', sa.Text(), nullable=True),
                    sa.Column('details', sa.Text(), nullable=True),
                    sa.Column('url', sa.String(length=500), nullable=True),
                    sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('accessibility', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accessibility_location_id'), ['location_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('accessibility', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accessibility_location_id'))
    op.drop_table('accessibility')
