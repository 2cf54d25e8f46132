"""published_to audiences; search cards in their own table

Revision ID: e4b7c2a91f03
Revises: dd96d625fa80
Create Date: 2026-11-28 15:10:00

* ``service.published_to`` / ``service_search.published_to`` ("tenant", "district",
  "schools") replace the ``published_to_district`` flag (true becomes "district").
* ``service_card`` holds each service's search result card; ``service_search.summary``
  (the wider list view, stored in the row search scans) goes. Cards are derived
  here from the stored summaries, so search needs no re-index after upgrading.
* ``service_hours``' index covers ``service_id``, so "open at" reads the index alone.
"""
from alembic import op
import sqlalchemy as sa


revision = 'e4b7c2a91f03'
down_revision = 'dd96d625fa80'
branch_labels = None
depends_on = None


def _card(summary: dict) -> dict:
    # Frozen copy of views.card as of this revision, over the old summary shape.
    location = (summary.get("locations") or [{}])[0] or {}
    address = location.get("address") or {}
    description = summary.get("description") or ""
    return {
        "id": summary["id"], "name": summary.get("name") or "",
        "organization_name": (summary.get("organization") or {}).get("name"),
        "description": description[:177] + "…" if len(description) > 180 else description,
        "address": ", ".join(x for x in (address.get("address_1"), address.get("city")) if x) or None,
        "hours_text": summary.get("hours_text") or None,
        "cost": summary.get("cost"),
        "languages": summary.get("languages") or [],
        "categories": [t["name"] for t in (summary.get("taxonomy_terms") or [])[:3]],
    }


def upgrade() -> None:
    op.create_table('service_card',
    sa.Column('service_id', sa.String(length=36), nullable=False),
    sa.Column('card', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('service_id')
    )
    bind = op.get_bind()
    search = sa.table("service_search", sa.column("service_id", sa.String), sa.column("summary", sa.JSON))
    card = sa.table("service_card", sa.column("service_id", sa.String), sa.column("card", sa.JSON))
    rows = [{"service_id": sid, "card": _card(summary)} for sid, summary in bind.execute(sa.select(search.c.service_id, search.c.summary)) if summary]
    for start in range(0, len(rows), 1000):
        bind.execute(card.insert(), rows[start:start + 1000])

    for table in ("service", "service_search"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('published_to', sa.String(length=20), nullable=False, server_default='tenant'))
        op.execute(f"UPDATE {table} SET published_to = 'district' WHERE published_to_district")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('published_to_district')
    with op.batch_alter_table('service_search', schema=None) as batch_op:
        batch_op.drop_column('summary')
    with op.batch_alter_table('service_hours', schema=None) as batch_op:
        batch_op.drop_index('ix_service_hours_day')
        batch_op.create_index('ix_service_hours_open', ['day', 'opens_at', 'closes_at', 'service_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('service_hours', schema=None) as batch_op:
        batch_op.drop_index('ix_service_hours_open')
        batch_op.create_index('ix_service_hours_day', ['day', 'opens_at', 'closes_at'], unique=False)
    with op.batch_alter_table('service_search', schema=None) as batch_op:
        batch_op.add_column(sa.Column('summary', sa.JSON(), nullable=True))
    for table in ("service", "service_search"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('published_to_district', sa.Boolean(), nullable=True))
        op.execute(f"UPDATE {table} SET published_to_district = (published_to = 'district')")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('published_to')
    op.drop_table('service_card')
