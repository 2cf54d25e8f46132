"""access transparency log, mail jobs sent after answering, account conflicts

Revision ID: e4b7c2d9a1f6
Revises: e5b8c2d4f1a7
Create Date: 2026-12-04 03:00:00
"""
from alembic import op
import sqlalchemy as sa
import weintervene.db


revision = 'e4b7c2d9a1f6'
down_revision = 'e5b8c2d4f1a7'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('access_log_entry',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('actor_user_id', sa.String(length=36), nullable=True),
    sa.Column('actor_name', sa.String(length=200), nullable=False),
    sa.Column('actor_role', sa.String(length=32), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('occurred_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('access_log_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_log_entry_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_log_entry_occurred_at'), ['occurred_at'], unique=False)

    op.create_table('mail_job',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('tenant_id', sa.String(length=36), nullable=True),
    sa.Column('entry_id', sa.String(length=36), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_try_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('mail_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_job_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_job_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_job_next_try_at'), ['next_try_at'], unique=False)

    op.create_table('account_conflict',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('requested_by', sa.String(length=36), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('created_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('account_conflict', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_conflict_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_account_conflict_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_account_conflict_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_table('account_conflict')
    op.drop_table('mail_job')
    op.drop_table('access_log_entry')
