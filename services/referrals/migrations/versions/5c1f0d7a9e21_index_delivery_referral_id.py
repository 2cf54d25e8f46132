"""index delivery.referral_id (a termination deletes referrals; the cascade looks deliveries up by it)

Revision ID: 5c1f0d7a9e21
Revises: 78754f668a62
Create Date: 2026-11-28 15:40:00
"""
from alembic import op


revision = '5c1f0d7a9e21'
down_revision = '78754f668a62'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_referral_id'), ['referral_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_referral_id'))
