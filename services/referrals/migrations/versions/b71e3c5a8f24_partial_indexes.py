"""outbox: partial indexes, pending rows by created_at and published rows by published_at

The relay reads pending rows (published_at IS NULL) in created_at order; the purge
deletes published rows by published_at. Each index now holds only its query's rows,
so marking a row published (a non-HOT update) adds one entry instead of one in each
of the full created_at and published_at indexes, and the relay reads pending rows in
order instead of sorting them.

delivery: ix_delivery_due holds queued deliveries only (by next_attempt_at), the new
ix_delivery_sending those being sent (by claimed_at, for recover_interrupted); a sent
delivery is in neither. ix_delivery_referral_id and ix_referral_receiving_tenant_id
hold rows where the column is set only (a share's deliveries have no referral; most
referrals go to services not on the platform): every query on them compares them to
a value, which implies IS NOT NULL.

Revision ID: b71e3c5a8f24
Revises: 8d0c577f44aa
Create Date: 2026-11-29 02:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'b71e3c5a8f24'
down_revision = '8d0c577f44aa'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_outbox_message_created_at', table_name='outbox_message')
    op.drop_index('ix_outbox_message_published_at', table_name='outbox_message')
    op.create_index('ix_outbox_message_pending', 'outbox_message', ['created_at'], unique=False,
                    postgresql_where=sa.text('published_at IS NULL'), sqlite_where=sa.text('published_at IS NULL'))
    op.create_index('ix_outbox_message_published_at', 'outbox_message', ['published_at'], unique=False,
                    postgresql_where=sa.text('published_at IS NOT NULL'),
                    sqlite_where=sa.text('published_at IS NOT NULL'))
    op.drop_index('ix_delivery_due', table_name='delivery')
    op.create_index('ix_delivery_due', 'delivery', ['next_attempt_at'], unique=False,
                    postgresql_where=sa.text("state = 'queued'"), sqlite_where=sa.text("state = 'queued'"))
    op.create_index('ix_delivery_sending', 'delivery', ['claimed_at'], unique=False,
                    postgresql_where=sa.text("state = 'sending'"), sqlite_where=sa.text("state = 'sending'"))
    op.drop_index('ix_delivery_referral_id', table_name='delivery')
    op.create_index('ix_delivery_referral_id', 'delivery', ['referral_id'], unique=False,
                    postgresql_where=sa.text('referral_id IS NOT NULL'),
                    sqlite_where=sa.text('referral_id IS NOT NULL'))
    op.drop_index('ix_referral_receiving_tenant_id', table_name='referral')
    op.create_index('ix_referral_receiving_tenant_id', 'referral', ['receiving_tenant_id'], unique=False,
                    postgresql_where=sa.text('receiving_tenant_id IS NOT NULL'),
                    sqlite_where=sa.text('receiving_tenant_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_referral_receiving_tenant_id', table_name='referral')
    op.create_index('ix_referral_receiving_tenant_id', 'referral', ['receiving_tenant_id'], unique=False)
    op.drop_index('ix_delivery_referral_id', table_name='delivery')
    op.create_index('ix_delivery_referral_id', 'delivery', ['referral_id'], unique=False)
    op.drop_index('ix_delivery_sending', table_name='delivery')
    op.drop_index('ix_delivery_due', table_name='delivery')
    op.create_index('ix_delivery_due', 'delivery', ['state', 'next_attempt_at'], unique=False)
    op.drop_index('ix_outbox_message_published_at', table_name='outbox_message')
    op.drop_index('ix_outbox_message_pending', table_name='outbox_message')
    op.create_index('ix_outbox_message_published_at', 'outbox_message', ['published_at'], unique=False)
    op.create_index('ix_outbox_message_created_at', 'outbox_message', ['created_at'], unique=False)
