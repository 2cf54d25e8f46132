"""Data exports: every service hands over what it holds for a tenant (or a student), generically.

A service mixes in :class:`DataExporter` and gets two RPCs that reflect its own
database: every table with a ``tenant_id`` column gives its rows of the asked
tenants; for a student, every table with a ``student_id`` column (and the
``student`` table itself) gives that student's rows within those tenants.
Secrets never leave (password and token hashes), nor does the plumbing (outbox,
processed events, migrations). Retention gathers the pieces and
:func:`build_archive` packs them as a zip of JSON and CSV.

Internal RPCs (the broker is internal; retention checked the caller's right).

Example::

    class ReferralsService(DataExporter, DeletionParticipant, OutboxRelay):
        ...

    # rpc: referrals.export_tenant({"tenant_ids": ["7e1…"]})
    # -> {"share": [{"id": "…", "tenant_id": "7e1…", "channel": "sms", …}], "saved_list": […]}
"""
from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import MetaData, select

from weintervene.entrypoints import rpc

PLUMBING_TABLES = frozenset({"outbox_message", "processed_event", "alembic_version"})
SECRET_MARKERS = ("password", "token", "_hash", "secret")


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


def export_rows(session, tenant_ids, student_id: str | None = None) -> dict[str, list[dict]]:
    """``{table: [row dicts]}`` for the tenants (and, if given, only that student)."""
    tenant_ids = [str(t) for t in tenant_ids]
    result: dict[str, list[dict]] = {}
    for table in reflected_tables(session).sorted_tables:
        if table.name in PLUMBING_TABLES:
            continue
        columns = [c for c in table.columns if not _is_secret(c.name)]
        stmt = select(*columns)
        if student_id is None:
            if "tenant_id" not in table.c:
                continue
            stmt = stmt.where(table.c.tenant_id.in_(tenant_ids))
        else:
            if table.name == "student" and "id" in table.c:
                stmt = stmt.where(table.c.id == str(student_id))
            elif "student_id" in table.c:
                stmt = stmt.where(table.c.student_id == str(student_id))
            else:
                continue
            if "tenant_id" in table.c:
                stmt = stmt.where(table.c.tenant_id.in_(tenant_ids))
        rows = [{k: _jsonable(v) for k, v in row._mapping.items()} for row in session.execute(stmt)]
        if rows:
            result[table.name] = rows
    return result


class DataExporter:
    """Mixin: ``export_tenant`` and ``export_student`` RPCs over the service's own database."""

    @rpc
    def export_tenant(self, request):
        """``{"tenant_ids": [...]}`` -> ``{table: [rows]}`` of everything those tenants hold here."""
        return export_rows(self.db, request["tenant_ids"])

    @rpc
    def export_student(self, request):
        """``{"tenant_ids": [...], "student_id": "…"}`` -> ``{table: [rows]}`` about that student."""
        return export_rows(self.db, request["tenant_ids"], student_id=request["student_id"])


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
                writer = csv.DictWriter(out, fieldnames=fields)
                writer.writeheader()
                for row in rows:
                    writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
                archive.writestr(f"{service}/{table}.csv", out.getvalue())
    return buffer.getvalue()
