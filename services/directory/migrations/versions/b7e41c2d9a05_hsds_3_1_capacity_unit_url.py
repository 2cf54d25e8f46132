"""HSDS 3.1 tables: service_capacity, unit, url; service_area.service_at_location_id

``service_capacity`` (available / maximum units of a service, and when that was known) and
its ``unit``; ``url`` (a service's additional_urls, an organization's additional_websites);
an area of one service at one location (``service_at_location.service_areas``).

Revision ID: b7e41c2d9a05
Revises: f3a1c9e5b7d2
Create Date: 2026-12-04 20:50:00
"""
from alembic import op
import sqlalchemy as sa

from weintervene.db import UTCDateTime

revision = 'b7e41c2d9a05'
down_revision = 'f3a1c9e5b7d2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('unit',
                    sa.Column('id', sa.String(length=36), nullable=False),
                    sa.Column('name', sa.String(length=255), nullable=False),
                    sa.Column('scheme', sa.String(length=255), nullable=True),
                    sa.Column('identifier', sa.String(length=255), nullable=True),
                    sa.Column('uri', sa.String(length=500), nullable=True),
                    sa.PrimaryKeyConstraint('id'))
    op.create_table('service_capacity',
                    sa.Column('id', sa.String(length=36), nullable=False),
                    sa.Column('service_id', sa.String(length=36), nullable=True),
                    sa.Column('unit_id', sa.String(length=36), nullable=True),
                    sa.Column('available', sa.Float(), nullable=False),
                    sa.Column('maximum', sa.Float(), nullable=True),
                    sa.Column('description', sa.Text(), nullable=True),
                    sa.Column('updated', UTCDateTime(timezone=True), nullable=True),
                    sa.PrimaryKeyConstraint('id'))
    op.create_table('url',
                    sa.Column('id', sa.String(length=36), nullable=False),
                    sa.Column('label', sa.String(length=255), nullable=True),
                    sa.Column('url', sa.String(length=500), nullable=False),
                    sa.Column('organization_id', sa.String(length=36), nullable=True),
                    sa.Column('service_id', sa.String(length=36), nullable=True),
                    sa.PrimaryKeyConstraint('id'))
    for table, column in (('service_capacity', 'service_id'), ('service_capacity', 'unit_id'),
                          ('url', 'organization_id'), ('url', 'service_id')):
        op.create_index(f'ix_{table}_{column}', table, [column], unique=False)
    with op.batch_alter_table('service_area', schema=None) as batch_op:
        batch_op.add_column(sa.Column('service_at_location_id', sa.String(length=36), nullable=True))
        batch_op.create_index('ix_service_area_service_at_location_id', ['service_at_location_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('service_area', schema=None) as batch_op:
        batch_op.drop_index('ix_service_area_service_at_location_id')
        batch_op.drop_column('service_at_location_id')
    for table, column in (('service_capacity', 'service_id'), ('service_capacity', 'unit_id'),
                          ('url', 'organization_id'), ('url', 'service_id')):
        op.drop_index(f'ix_{table}_{column}', table_name=table)
    op.drop_table('url')
    op.drop_table('service_capacity')
    op.drop_table('unit')
