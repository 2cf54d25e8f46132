"""index status_change.changed_by_tenant_id (a termination clears its tenant's notes by it; it scanned the table)

Revision ID: 9d2e4b7c1a05
Revises: 5c1f0d7a9e21
Create Date: 2026-11-28 18:26:00
"""
from alembic import op


revision = '9d2e4b7c1a05'
down_revision = '5c1f0d7a9e21'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('status_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_status_change_changed_by_tenant_id'), ['changed_by_tenant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('status_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_status_change_changed_by_tenant_id'))
