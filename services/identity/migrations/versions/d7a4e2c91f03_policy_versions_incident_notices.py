"""policy versions, per-user acknowledgements, incident notices

Revision ID: d7a4e2c91f03
Revises: c3d1f0a2b7e4
Create Date: 2026-11-28 15:10:00

Until now the policy version and incident notice were a static file of the web
app (gateway/static/policy.json); that file's version becomes the first row
here, so the privacy page keeps its "Last Updated" date after the upgrade.
"""
from datetime import date, datetime, timezone

from alembic import op
import sqlalchemy as sa
import weintervene.db


revision = 'd7a4e2c91f03'
down_revision = 'c3d1f0a2b7e4'
branch_labels = None
depends_on = None

FIRST_POLICY = {
    "id": "5b0f3c1e-7d2a-4c6b-9e55-2026110100a1",
    "last_updated": date(2026, 11, 1),
    "summary": "We now list every service that receives student data and how long each keeps it.",
    "published_at": datetime(2026, 11, 1, tzinfo=timezone.utc),
}


def upgrade() -> None:
    policy = op.create_table('policy_version',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('last_updated', sa.Date(), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('published_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('policy_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_version_published_at'), ['published_at'], unique=False)

    op.create_table('policy_acknowledgement',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('policy_version_id', sa.String(length=36), nullable=False),
    sa.Column('acknowledged_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['policy_version_id'], ['policy_version.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'policy_version_id')
    )
    with op.batch_alter_table('policy_acknowledgement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_acknowledgement_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_policy_acknowledgement_user_id'), ['user_id'], unique=False)

    op.create_table('incident_notice',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('starts_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', weintervene.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('incident_notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_notice_ends_at'), ['ends_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_notice_starts_at'), ['starts_at'], unique=False)

    op.bulk_insert(policy, [FIRST_POLICY])


def downgrade() -> None:
    with op.batch_alter_table('incident_notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_notice_starts_at'))
        batch_op.drop_index(batch_op.f('ix_incident_notice_ends_at'))
    op.drop_table('incident_notice')
    with op.batch_alter_table('policy_acknowledgement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_acknowledgement_user_id'))
        batch_op.drop_index(batch_op.f('ix_policy_acknowledgement_tenant_id'))
    op.drop_table('policy_acknowledgement')
    with op.batch_alter_table('policy_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_version_published_at'))
    op.drop_table('policy_version')
