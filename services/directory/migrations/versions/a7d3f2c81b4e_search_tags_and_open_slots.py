"""Filter tokens in the full-text index; open half hours in the search row; a name index

Revision ID: a7d3f2c81b4e
Revises: e4b7c2a91f03
Create Date: 2026-11-28 18:50:00

* ``service_search.tags``: languages, cost class, categories and days with hours as tokens ("tlanges0"),
  indexed with the words (PostgreSQL: appended to the generated ``tsv`` without
  positions; SQLite: a third FTS5 column), so those filters narrow keyword matches
  inside the index.
* ``service_search.open_mo`` .. ``open_su`` (bitmaps of the half hours open from start to
  end) and ``hours_unaligned``: "open at" reads the search row, and only services whose
  hours are off the half hour are checked against ``service_hours``.
* PostgreSQL: a GIN index on the words of the name alone (search ranks name matches first
  and finds them there).

Existing rows are filled here from what the search rows and ``service_hours`` already hold,
so search needs no re-index after upgrading.
"""
import re
from collections import defaultdict

from alembic import op
import sqlalchemy as sa


revision = 'a7d3f2c81b4e'
down_revision = 'e4b7c2a91f03'
branch_labels = None
depends_on = None

DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
OPEN_COLUMNS = [f"open_{d.lower()}" for d in DAYS]
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"


# Frozen copies of indexing.tag / search_tags / open_slots as of this revision.
def _tag(kind, value):
    return "t" + kind + re.sub(r"[^0-9a-z]", "", value.lower()) + "0"


def _tags(languages, cost, term_ids, days):
    tokens = {_tag("lang", v) for v in (languages or "|").strip("|").split("|") if v}
    tokens |= {_tag("cat", v) for v in (term_ids or "|").strip("|").split("|") if v}
    tokens |= {_tag("open", d) for d in days}
    tokens.add(_tag("cost", cost or "unknown"))
    return " ".join(sorted(tokens))


def _slots(hours):
    slots = dict.fromkeys(OPEN_COLUMNS, 0)
    unaligned = False
    for day, opens, closes in hours:
        start, end = int(opens[:2]) * 60 + int(opens[3:5]), int(closes[:2]) * 60 + int(closes[3:5])
        if start % 30 or end % 30:
            unaligned = True
        for slot in range(-(-start // 30), end // 30):
            slots[f"open_{day.lower()}"] |= 1 << slot
    slots["hours_unaligned"] = unaligned
    return slots


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.add_column("service_search", sa.Column("tags", sa.Text(), nullable=False, server_default=""))
    for column in OPEN_COLUMNS:
        op.add_column("service_search", sa.Column(column, sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("service_search", sa.Column("hours_unaligned", sa.Boolean(), nullable=False, server_default=sa.false()))

    search = sa.table("service_search", sa.column("id", sa.Integer), sa.column("service_id", sa.String),
                      sa.column("languages", sa.String), sa.column("cost", sa.String), sa.column("term_ids", sa.Text),
                      sa.column("tags", sa.Text), sa.column("hours_unaligned", sa.Boolean),
                      *[sa.column(c, sa.BigInteger) for c in OPEN_COLUMNS])
    hours_table = sa.table("service_hours", sa.column("service_id", sa.String), sa.column("day", sa.String),
                           sa.column("opens_at", sa.String), sa.column("closes_at", sa.String))
    hours = defaultdict(list)
    for sid, day, opens, closes in bind.execute(sa.select(hours_table.c.service_id, hours_table.c.day,
                                                          hours_table.c.opens_at, hours_table.c.closes_at)):
        hours[sid].append((day, opens, closes))
    update = (search.update().where(search.c.id == sa.bindparam("row_id"))
              .values(tags=sa.bindparam("new_tags"), hours_unaligned=sa.bindparam("new_unaligned"),
                      **{c: sa.bindparam(f"new_{c}") for c in OPEN_COLUMNS}))
    rows = []
    for row_id, sid, languages, cost, term_ids in bind.execute(
            sa.select(search.c.id, search.c.service_id, search.c.languages, search.c.cost, search.c.term_ids)):
        slots = _slots(hours.get(sid, []))
        rows.append({"row_id": row_id, "new_tags": _tags(languages, cost, term_ids, {h[0] for h in hours.get(sid, [])}),
                     "new_unaligned": slots.pop("hours_unaligned"), **{f"new_{c}": v for c, v in slots.items()}})
    for start in range(0, len(rows), 1000):
        bind.execute(update, rows[start:start + 1000])

    if postgres:
        op.execute("DROP INDEX IF EXISTS ix_service_search_tsv")
        op.execute("ALTER TABLE service_search DROP COLUMN tsv")
        op.execute(
            "ALTER TABLE service_search ADD COLUMN tsv tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('english', coalesce(name, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(body, '')), 'B') || "
            "array_to_tsvector(string_to_array(coalesce(tags, ''), ' '))) STORED"
        )
        op.execute("CREATE INDEX ix_service_search_tsv ON service_search USING gin (tsv)")
        op.execute("CREATE INDEX ix_service_search_name_tsv ON service_search USING gin (to_tsvector('english', name))")
    else:
        op.execute("DROP TABLE IF EXISTS service_fts")
        op.execute(f"CREATE VIRTUAL TABLE service_fts USING fts5(name, body, tags, tokenize = '{FTS_TOKENIZER}')")
        op.execute("INSERT INTO service_fts (rowid, name, body, tags) SELECT id, name, body, tags FROM service_search")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_service_search_name_tsv")
        op.execute("DROP INDEX IF EXISTS ix_service_search_tsv")
        op.execute("ALTER TABLE service_search DROP COLUMN tsv")
        op.execute(
            "ALTER TABLE service_search ADD COLUMN tsv tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('english', coalesce(name, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(body, '')), 'B')) STORED"
        )
        op.execute("CREATE INDEX ix_service_search_tsv ON service_search USING gin (tsv)")
    else:
        op.execute("DROP TABLE IF EXISTS service_fts")
        op.execute(f"CREATE VIRTUAL TABLE service_fts USING fts5(name, body, tokenize = '{FTS_TOKENIZER}')")
        op.execute("INSERT INTO service_fts (rowid, name, body) SELECT id, name, body FROM service_search")
    with op.batch_alter_table("service_search", schema=None) as batch_op:
        for column in ["tags", *OPEN_COLUMNS, "hours_unaligned"]:
            batch_op.drop_column(column)
