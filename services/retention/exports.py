"""Exports for data owners, and a parent's inspection (or amendment) of a student's records.

A data owner (the admin of a district, school or program) asks for an export;
downloading it gathers, at that moment, everything its tenants hold in every
data service (each service's ``export_tenant``, see ``weintervene.export``).
Retention stores who asked and when, never the data.

An inspection request is entered by school personnel for a parent; while it
is open the student's deletion waits (FERPA), and the school can download the
student's records from every service. An amendment request is recorded with
its outcome.

Example::

    >>> create_export(session, identity, auth, {"tenant_id": auth.tenant_id})
    {"id": "…", "tenant_id": "…", "tenant_ids": ["…"], …}
"""
from __future__ import annotations

import logging

import eventlet
from sqlalchemy import select

from services.retention import audit
from services.retention.deletions import ADMIN_ROLES, _call, advance, refs_of, subject_ref
from services.retention.exceptions import ExportNotFound, InspectionClosed, InspectionNotFound
from services.retention.models import DataExport, DeletionRequest, InspectionRequest
from services.retention.schemas import ExportSchema, InspectionSchema
from weintervene.auth import AuthContext, Role
from weintervene.config import settings
from weintervene.contracts import DATA_SERVICES
from weintervene.db import utcnow
from weintervene.errors import Unavailable

log = logging.getLogger(__name__)


def gather(cluster_rpc, method: str, request: dict) -> dict[str, dict]:
    """Ask every data service at once; all must answer (a partial export is no export)."""
    calls = {name: getattr(getattr(cluster_rpc, name), method).call_async(request) for name in DATA_SERVICES}
    results = {}
    for name, call in calls.items():
        try:
            with eventlet.Timeout(max(60.0, settings().rpc_timeout_seconds)):
                results[name] = call.result()
        except (Exception, eventlet.Timeout) as exc:  # noqa: BLE001
            log.warning("%s.%s failed: %r", name, method, exc)
            raise Unavailable(f"The {name} service did not hand over its data; try again shortly.",
                              code="export_incomplete") from None
    return results


# -- data owner's export -----------------------------------------------------------

def create_export(session, identity, auth: AuthContext, data: dict) -> dict:
    auth.require(*ADMIN_ROLES)
    tenant_id = str(data["tenant_id"])
    if tenant_id != auth.tenant_id:
        raise ExportNotFound("You may export your own tenant only.", code="out_of_scope")
    tenant_ids = [tenant_id]
    if auth.role is Role.DISTRICT_ADMIN:
        tenant_ids = sorted({t["id"] for t in _call(identity.list_tenants_in, tenant_id)} | {tenant_id})
    export = DataExport(tenant_id=tenant_id, tenant_ids=tenant_ids, requested_by=auth.user_id)
    session.add(export)
    session.flush()
    audit.append(session, "export_created", None, {
        "export_id": export.id, "tenant_id": tenant_id, "tenant_ids": tenant_ids, "requested_by": auth.user_id,
    })
    session.commit()
    return ExportSchema().dump(export)


def export_data(session, cluster_rpc, auth: AuthContext, export_id: str) -> dict:
    """``{"manifest": {...}, "services": {service: {table: rows}}}`` for the archive."""
    auth.require(*ADMIN_ROLES)
    export = session.get(DataExport, export_id)
    if export is None or export.tenant_id != auth.tenant_id:
        raise ExportNotFound("No such export.")
    terminated = session.scalars(select(DeletionRequest).where(
        DeletionRequest.scope == "tenant", DeletionRequest.tenant_id == export.tenant_id,
        DeletionRequest.status.in_(("dispatched", "completed")),
    )).first()
    if terminated is not None:
        raise ExportNotFound("This tenant's data has been deleted.", code="export_expired")
    services = gather(cluster_rpc, "export_tenant", {"tenant_ids": export.tenant_ids})
    export.downloaded_at = utcnow()
    audit.append(session, "export_downloaded", None, {"export_id": export.id, "by": auth.user_id})
    session.commit()
    manifest = {
        **ExportSchema().dump(export), "generated_at": utcnow().isoformat(),
        "tables": {svc: {t: len(rows) for t, rows in tables.items()} for svc, tables in services.items()},
    }
    return {"manifest": manifest, "services": services}


# -- inspection and amendment requests --------------------------------------------------

def open_inspection(session, identity, auth: AuthContext, data: dict) -> dict:
    auth.require(*ADMIN_ROLES)
    student = _call(identity.check_student_access, auth.to_dict(), str(data["student_id"]))
    inspection = InspectionRequest(
        kind=data["kind"], tenant_id=student["tenant_id"], student_id=str(data["student_id"]),
        subject_ref=subject_ref(data["student_id"]), note=data.get("note"), opened_by=auth.user_id,
    )
    session.add(inspection)
    session.flush()
    audit.append(session, "inspection_opened", None, {
        "inspection_id": inspection.id, "kind": inspection.kind, "tenant_id": inspection.tenant_id,
        "subject_ref": inspection.subject_ref, "opened_by": auth.user_id,
    })
    session.commit()
    return InspectionSchema().dump(inspection)


def _inspection_in_scope(session, auth: AuthContext, inspection_id: str) -> InspectionRequest:
    auth.require(*ADMIN_ROLES)
    inspection = session.get(InspectionRequest, inspection_id)
    if inspection is None or inspection.tenant_id != auth.tenant_id:
        raise InspectionNotFound("No such inspection request.")
    return inspection


def close_inspection(session, identity, auth: AuthContext, inspection_id: str, data: dict) -> dict:
    """Record the outcome; a deletion that waited for this inspection proceeds now."""
    inspection = _inspection_in_scope(session, auth, inspection_id)
    if inspection.status != "open":
        raise InspectionClosed("This request is already closed.")
    inspection.status, inspection.outcome = "closed", data["outcome"]
    inspection.note = data.get("note") or inspection.note
    inspection.closed_by, inspection.closed_at = auth.user_id, utcnow()
    audit.append(session, "inspection_closed", None, {
        "inspection_id": inspection.id, "outcome": inspection.outcome, "closed_by": auth.user_id,
    })
    session.commit()
    for req in session.scalars(select(DeletionRequest).where(
        DeletionRequest.subject_ref.in_(refs_of(inspection.student_id, inspection.subject_ref)),
        DeletionRequest.status == "waiting_ferpa_inspection",
    )).all():
        advance(session, identity, req)
    return InspectionSchema().dump(inspection)


def list_inspections(session, auth: AuthContext, status: str | None = None) -> dict:
    auth.require(*ADMIN_ROLES)
    stmt = select(InspectionRequest).where(InspectionRequest.tenant_id == auth.tenant_id)
    if status:
        stmt = stmt.where(InspectionRequest.status == status)
    rows = session.scalars(stmt.order_by(InspectionRequest.opened_at.desc())).all()
    return {"items": InspectionSchema(many=True).dump(rows), "total": len(rows), "page": 1, "per_page": len(rows)}


def inspection_data(session, cluster_rpc, auth: AuthContext, inspection_id: str) -> dict:
    """The student's records from every service, while the inspection is open."""
    inspection = _inspection_in_scope(session, auth, inspection_id)
    if inspection.status != "open" or inspection.kind != "inspection" or not inspection.student_id:
        raise InspectionClosed("Records are available while an inspection request is open.")
    services = gather(cluster_rpc, "export_student",
                      {"tenant_ids": [inspection.tenant_id], "student_id": inspection.student_id})
    audit.append(session, "inspection_records_exported", None, {"inspection_id": inspection.id, "by": auth.user_id})
    session.commit()
    manifest = {"inspection": InspectionSchema().dump(inspection), "generated_at": utcnow().isoformat(),
                "tables": {svc: {t: len(r) for t, r in tables.items()} for svc, tables in services.items()}}
    return {"manifest": manifest, "services": services}
