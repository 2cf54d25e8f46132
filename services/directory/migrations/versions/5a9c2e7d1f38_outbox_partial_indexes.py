"""outbox: partial indexes, pending rows by created_at and published rows by published_at

The relay reads pending rows (published_at IS NULL) in created_at order; the purge
deletes published rows by published_at. Each index now holds only its query's rows,
so marking a row published (a non-HOT update) adds one entry instead of one in each
of the full created_at and published_at indexes, and the relay reads pending rows in
order instead of sorting them.

Revision ID: 5a9c2e7d1f38
Revises: 0e533050282d
Create Date: 2026-11-29 02:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '5a9c2e7d1f38'
down_revision = '0e533050282d'
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


def downgrade() -> None:
    op.drop_index('ix_outbox_message_published_at', table_name='outbox_message')
    op.drop_index('ix_outbox_message_pending', table_name='outbox_message')
    op.create_index('ix_outbox_message_published_at', 'outbox_message', ['published_at'], unique=False)
    op.create_index('ix_outbox_message_created_at', 'outbox_message', ['created_at'], unique=False)
