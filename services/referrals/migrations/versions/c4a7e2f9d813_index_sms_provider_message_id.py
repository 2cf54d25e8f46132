"""index delivery.provider_message_id of SMS deliveries (the provider's status callback scanned the table)

The SMS provider reports each message's fate by its message id; apply_provider_status
looked the delivery up by provider_message_id, which no index covered: one scan of every
delivery per callback. Partial (channel = 'sms'): emails, most deliveries, also get a
provider id (their Message-ID) but are never looked up by it, so their "sent" update
writes no entry here.

Revision ID: c4a7e2f9d813
Revises: b71e3c5a8f24
Create Date: 2026-11-29 06:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'c4a7e2f9d813'
down_revision = 'b71e3c5a8f24'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_delivery_sms_provider_message_id', 'delivery', ['provider_message_id'], unique=False,
                    postgresql_where=sa.text("channel = 'sms'"), sqlite_where=sa.text("channel = 'sms'"))


def downgrade() -> None:
    op.drop_index('ix_delivery_sms_provider_message_id', table_name='delivery')
