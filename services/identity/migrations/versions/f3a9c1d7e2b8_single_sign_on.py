"""single sign-on: each tenant's OpenID provider, provider links, sessions that came from it

A district's, independent school's or program's OpenID Connect configuration (its client
secret sealed under the versioned keyring), which provider account links to which user,
and the configuration a session came from (sign-out offers that provider's end-session).
See services/identity/single_sign_on.py.

Revision ID: f3a9c1d7e2b8
Revises: f1a9c3e5b7d2
Create Date: 2026-12-04 20:30:00.000000
"""
from alembic import op
import sqlalchemy as sa
import weintervene.db


revision = 'f3a9c1d7e2b8'
down_revision = 'f1a9c3e5b7d2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sso_configuration',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('preset', sa.String(length=16), nullable=False),
    sa.Column('issuer_url', sa.String(length=500), nullable=False),
    sa.Column('provider_tenant', sa.String(length=100), nullable=True),
    sa.Column('client_id', sa.String(length=255), nullable=False),
    sa.Column('client_secret_sealed', sa.String(length=1000), nullable=False),
    sa.Column('allowed_domains', sa.String(length=1000), nullable=False),
    sa.Column('password_sign_in_allowed', sa.Boolean(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('jit_role', sa.String(length=32), nullable=True),
    sa.Column('jit_tenant_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['jit_tenant_id'], ['tenant.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id')
    )
    op.create_table('sso_link',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('configuration_id', sa.String(length=36), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('linked_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['configuration_id'], ['sso_configuration.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id'),
    sa.UniqueConstraint('configuration_id', 'subject')
    )
    with op.batch_alter_table('sso_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sso_link_configuration_id'), ['configuration_id'], unique=False)
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sso_configuration_id', sa.String(length=36), nullable=True))
        batch_op.create_foreign_key('fk_user_session_sso_configuration_id', 'sso_configuration',
                                    ['sso_configuration_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_constraint('fk_user_session_sso_configuration_id', type_='foreignkey')
        batch_op.drop_column('sso_configuration_id')
    with op.batch_alter_table('sso_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sso_link_configuration_id'))
    op.drop_table('sso_link')
    op.drop_table('sso_configuration')
