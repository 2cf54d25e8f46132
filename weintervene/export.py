"""Data exports: every service hands over what it holds for a tenant (or a student), generically.

A service mixes in :class:`DataExporter` and gets two RPCs over its own database.
Which rows belong to a tenant (or a student) is worked out from the tables:

* a table with the scope's column (``tenant_id``; ``student_id``) gives the rows
  with the asked ids; a table whose column has another name declares it
  (``ownership(tenant="owner_tenant_id")``; the ``tenant`` table itself: ``"id"``);
* a table without that column (referral status history, deliveries, recipients,
  a directory service's phones and addresses…) gives the rows that refer to a
  row given by a parent table: through each real foreign key, and through the
  references a model declares where there is no foreign key
  (``ownership(via=["location_id -> location.id"])``), including a reference
  whose value is derived from the parent's (``Via("account_key",
  "user_account.email", transform=account_key)``).

So a child table is exported the moment its foreign key (or one declaration) is
there, in every service, and nothing is hand-coded per service.
``tests/integration/test_retention_export.py`` proves that every row a
termination deletes was in the export, and nothing of another tenant.

Secrets never leave (password and token hashes), nor does the plumbing (outbox,
processed events, migrations, idempotency keys, deletion receipts). Retention
gathers the pieces and :func:`build_archive` packs them as a zip of JSON and CSV.

Internal RPCs (the broker is internal; retention checked the caller's right).

Example::

    class ReferralsService(DataExporter, DeletionParticipant, OutboxRelay):
        db = Database("referrals", Base)   # the models' ownership is read from Base
        ...

    # rpc: referrals.export_tenant({"tenant_ids": ["7e1…"]})
    # -> {"share": [{"id": "…", "tenant_id": "7e1…", "channel": "sms", …}],
    #     "referral": […], "status_change": […], "delivery": […], "share_recipient": […], …}
"""
from __future__ import annotations

import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Callable, Iterable

from sqlalchemy import MetaData, Table, or_, select

from weintervene import spreadsheets
from weintervene.entrypoints import rpc

# idempotency_key: a day's record of which request made which share (hashes only).
# deletion_receipt: request ids and counts, no tenant data (weintervene.deletion).
# sms_callback_seen: hashes of SMS provider callbacks' signatures, for replay refusal.
PLUMBING_TABLES = frozenset({"outbox_message", "processed_event", "alembic_version", "idempotency_key",
                             "deletion_receipt", "sms_callback_seen"})
SECRET_MARKERS = ("password", "token", "_hash", "secret")
SCOPES = ("tenant", "student")
INFO_KEY = "export"


@dataclass(frozen=True)
class Via:
    """A reference from ``column`` of a child table to ``parent`` (``"table.column"``).

    ``transform`` maps the parent's value to the child's, for a reference kept as a
    derived value (identity keeps sign-in attempts by a hash of the email).

    Example: ``Via("location_id", "location.id")``; ``Via.parse("location_id -> location.id")``.
    """

    column: str
    parent: str
    transform: Callable | None = None

    @classmethod
    def parse(cls, text: str) -> "Via":
        column, parent = (part.strip() for part in text.split("->"))
        return cls(column, parent)

    @property
    def parent_table(self) -> str:
        return self.parent.split(".", 1)[0]

    @property
    def parent_column(self) -> str:
        return self.parent.split(".", 1)[1]


def ownership(*, tenant: str | None = None, student: str | None = None,
              via: Iterable[str | Via] = (), exported: bool = True) -> dict:
    """What to put in a table's ``info`` to say how its rows belong to a tenant or a student.

    Example::

        class Address(Base):
            __tablename__ = "address"
            __table_args__ = {"info": ownership(via=["location_id -> location.id"])}
    """
    return {INFO_KEY: {
        "tenant": tenant, "student": student, "exported": exported,
        "via": tuple(v if isinstance(v, Via) else Via.parse(v) for v in via),
    }}


def declare_ownership(base, **tables: dict) -> None:
    """Declare the ownership of several of a service's tables in one place.

    Example: ``declare_ownership(Base, address=ownership(via=["location_id -> location.id"]))``.
    """
    for name, info in tables.items():
        base.metadata.tables[name].info.update(info)


def _jsonable(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _is_secret(column_name: str) -> bool:
    return any(marker in column_name for marker in SECRET_MARKERS)


_REFLECTED: dict[str, MetaData] = {}


def reflected_tables(session) -> MetaData:
    """The service's tables as they are in its database (cached per database URL)."""
    bind = session.get_bind()
    key = str(bind.url)
    if key not in _REFLECTED:
        metadata = MetaData()
        metadata.reflect(bind=bind)
        _REFLECTED[key] = metadata
    return _REFLECTED[key]


def _rule(table: Table) -> dict:
    return table.info.get(INFO_KEY) or {}


def _links(table: Table) -> list[Via]:
    """Every reference of ``table`` to a parent: its foreign keys, then its declared ones."""
    links = [Via(fk.parent.name, f"{fk.column.table.name}.{fk.column.name}") for fk in table.foreign_keys]
    return links + [v for v in _rule(table).get("via", ()) if v not in links]


class _Selection:
    """Builds, per table, the condition selecting the rows of the asked tenants (or student)."""

    def __init__(self, session, metadata: MetaData, scope: str, ids: list[str], tenant_ids: list[str]):
        self.session, self.metadata, self.scope = session, metadata, scope
        self.ids, self.tenant_ids = ids, tenant_ids
        self.done: dict[str, object] = {}

    def own_column(self, table: Table, scope: str):
        name = _rule(table).get(scope) or f"{scope}_id"
        return table.c[name] if name in table.c else None

    def condition(self, table: Table, visiting: frozenset = frozenset()):
        """A WHERE clause for ``table``, or None when no row of it belongs to the subject."""
        if table.name in self.done:
            return self.done[table.name]
        if table.name in PLUMBING_TABLES or _rule(table).get("exported") is False:
            return None
        own = self.own_column(table, self.scope)
        if own is not None:
            condition = own.in_(self.ids)
            tenant = self.own_column(table, "tenant")
            if self.scope != "tenant" and tenant is not None:
                condition = condition & tenant.in_(self.tenant_ids)
            self.done[table.name] = condition
            return condition
        visiting = visiting | {table.name}
        conditions = []
        for via in _links(table):
            parent = self.metadata.tables.get(via.parent_table)
            if parent is None or parent.name in visiting or via.column not in table.c:
                continue  # a cycle, or a reference out of this database
            parent_condition = self.condition(parent, visiting)
            if parent_condition is None:
                continue
            parent_values = select(parent.c[via.parent_column]).where(parent_condition)
            if via.transform is not None:
                parent_values = sorted({via.transform(v) for v in self.session.scalars(parent_values) if v is not None})
            conditions.append(table.c[via.column].in_(parent_values))
        condition = or_(*conditions) if conditions else None
        if not visiting - {table.name}:
            # Only a result reached without cutting a cycle is final.
            self.done[table.name] = condition
        return condition


def export_rows(session, tenant_ids, student_id: str | None = None,
                metadata: MetaData | None = None) -> dict[str, list[dict]]:
    """``{table: [row dicts]}`` for the tenants (and, if given, only that student).

    ``metadata``: the service's models' metadata (ownership declarations, foreign
    keys); the database's own tables, reflected, when not given.
    """
    metadata = metadata if metadata is not None else reflected_tables(session)
    tenant_ids = [str(t) for t in tenant_ids]
    if student_id is None:
        selection = _Selection(session, metadata, "tenant", tenant_ids, tenant_ids)
    else:
        selection = _Selection(session, metadata, "student", [str(student_id)], tenant_ids)
    result: dict[str, list[dict]] = {}
    for table in metadata.sorted_tables:
        condition = selection.condition(table)
        if condition is None:
            continue
        columns = [c for c in table.columns if not _is_secret(c.name)]
        stmt = select(*columns).where(condition)
        rows = [{k: _jsonable(v) for k, v in row._mapping.items()} for row in session.execute(stmt)]
        if rows:
            result[table.name] = rows
    return result


class DataExporter:
    """Mixin: ``export_tenant`` and ``export_student`` RPCs over the service's own database.

    The tables and their ownership come from the models behind the service's
    ``db`` (a :class:`weintervene.db.Database`).
    """

    def _export_metadata(self) -> MetaData | None:
        provider = getattr(type(self), "db", None)  # the DependencyProvider, not the worker's session
        base = getattr(provider, "base", None)
        return base.metadata if base is not None else None

    @rpc
    def export_tenant(self, request):
        """``{"tenant_ids": [...]}`` -> ``{table: [rows]}`` of everything those tenants hold here."""
        return export_rows(self.db, request["tenant_ids"], metadata=self._export_metadata())

    @rpc
    def export_student(self, request):
        """``{"tenant_ids": [...], "student_id": "…"}`` -> ``{table: [rows]}`` about that student."""
        return export_rows(self.db, request["tenant_ids"], student_id=request["student_id"],
                           metadata=self._export_metadata())


def build_archive(manifest: dict, services: dict[str, dict[str, list[dict]]]) -> bytes:
    """A zip: ``manifest.json``, and per service and table ``<service>/<table>.json`` and ``.csv``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, default=_jsonable))
        for service, tables in sorted(services.items()):
            for table, rows in sorted(tables.items()):
                archive.writestr(f"{service}/{table}.json", json.dumps(rows, indent=1, default=_jsonable))
                out = io.StringIO()
                fields = sorted({key for row in rows for key in row})
                writer = spreadsheets.DictWriter(out, fieldnames=fields)
                writer.writeheader()
                for row in rows:
                    writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
                archive.writestr(f"{service}/{table}.csv", out.getvalue())
    return buffer.getvalue()
