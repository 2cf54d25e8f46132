"""break-glass recovery requests

An operator's recorded recovery of a tenant (invite a new administrator), which takes
effect only once the tenant's administrators, or a second operator when it has none
left, approve it (services/identity/break_glass.py).

Revision ID: 579be002b170
Revises: 6f2d8a4c9e15
Create Date: 2026-12-04 02:46:34.718693
"""
from alembic import op
import sqlalchemy as sa
import weintervene.db


revision = '579be002b170'
down_revision = '6f2d8a4c9e15'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('break_glass_request',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=36), nullable=True),
    sa.Column('requested_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=36), nullable=True),
    sa.Column('decided_at', weintervene.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('approval', sa.String(length=32), nullable=True),
    sa.Column('decision_note', sa.String(length=1000), nullable=True),
    sa.Column('created_user_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('break_glass_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_break_glass_request_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_break_glass_request_tenant_id'), ['tenant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('break_glass_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_break_glass_request_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_break_glass_request_status'))

    op.drop_table('break_glass_request')
