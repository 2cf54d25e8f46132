"""sms_callback_seen: signed SMS status callbacks already applied (replay refusal)

Each row is the SHA-256 of a callback's signature and the answer it got, nothing else;
purged after ``sms_callback_replay_hours`` (services/referrals/sms_callbacks.py).

Revision ID: f3b9d1c7a2e6
Revises: c4a7e2f9d813
Create Date: 2026-12-04 03:20:00
"""
from alembic import op
import sqlalchemy as sa
import weintervene.db


revision = 'f3b9d1c7a2e6'
down_revision = 'c4a7e2f9d813'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sms_callback_seen',
        sa.Column('signature_hash', sa.String(length=64), nullable=False),
        sa.Column('updated', sa.Boolean(), nullable=False),
        sa.Column('seen_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('signature_hash'),
    )
    op.create_index('ix_sms_callback_seen_seen_at', 'sms_callback_seen', ['seen_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_sms_callback_seen_seen_at', table_name='sms_callback_seen')
    op.drop_table('sms_callback_seen')
