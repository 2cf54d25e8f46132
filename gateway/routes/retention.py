"""Deletion requests, the audit chain, retention policies, exports and inspection requests."""
from __future__ import annotations

from werkzeug.wrappers import Response

from gateway.http import json_response, route
from services.retention.schemas import (
    AuditVerifySchema, DeletionQuery, DeletionRequestInput, DeletionRequestList, DeletionRequestSchema,
    ExportInput, ExportSchema, InspectionClose, InspectionInput, InspectionPageSchema, InspectionSchema,
    PolicyInput, PolicyPageSchema, PolicySchema,
)
from weintervene.auth import Role
from weintervene.export import build_archive

ADMINS = (Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.PROGRAM_ADMIN)
RECORD_READERS = (Role.AUDITOR, Role.OPERATOR) + ADMINS
CHUNK = 64 * 1024
# A whole tenant's export gathers every service's rows: allowed far longer than a page request.
EXPORT_TIMEOUT_SECONDS = 600.0


def _rpc_query(query: dict) -> dict:
    # The schema's attribute is ``from_`` (a keyword in Python); the wire name is ``from``.
    return {("from" if k == "from_" else k): v for k, v in query.items() if v is not None}


def _zip_response(result: dict, filename: str) -> Response:
    archive = build_archive(result["manifest"], result["services"])
    chunks = (archive[i:i + CHUNK] for i in range(0, len(archive), CHUNK))
    response = Response(chunks, mimetype="application/zip", direct_passthrough=True)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Content-Length"] = str(len(archive))
    response.headers["Cache-Control"] = "no-store"
    return response


class RetentionRoutes:
    @route("POST", "/api/v1/deletion-requests", summary="Request a deletion", tags=["retention"],
           roles=(Role.OPERATOR,) + ADMINS, body=DeletionRequestInput, response=DeletionRequestSchema, status=202,
           errors={404: "The student, user or tenant is not one you may see (as for an unknown id)"})
    def request_deletion(self, request, auth, body, **_):
        """A parent's opt-out (school admin; ``verification`` says how the school verified the
        parent and who did), a tenant's termination (operator; optional ``export_id``) or a
        user's removal. 202: ``status`` is dispatched, or pending/waiting_ferpa_inspection with
        ``status_reason``. The note is kept forever: no names, emails or phone numbers."""
        return self.retention_rpc.request_deletion(auth.to_dict(), body)

    @route("GET", "/api/v1/deletion-requests", summary="Deletion requests (the record)", tags=["retention"],
           roles=RECORD_READERS, query=DeletionQuery, response=DeletionRequestList, raw=True,
           also_content_types=("text/csv",))
    def list_deletion_requests(self, request, auth, query, **_):
        """Filter by ``tenant_id``, ``scope``, ``status`` (``open`` for every unfinished one),
        ``overdue=true``, ``from``/``to`` (creation dates); ``format=csv`` for a CSV download."""
        params = _rpc_query(query)
        if params.get("format") == "csv":
            text = self.retention_rpc.deletion_requests_csv(auth.to_dict(), params)
            response = Response(text, mimetype="text/csv")
            response.headers["Content-Disposition"] = 'attachment; filename="deletion-requests.csv"'
            response.headers["Cache-Control"] = "no-store"
            return response
        return json_response(self.retention_rpc.list_deletion_requests(auth.to_dict(), params))

    @route("GET", "/api/v1/deletion-requests/<request_id>", summary="One deletion request",
           tags=["retention"], roles=RECORD_READERS, response=DeletionRequestSchema)
    def get_deletion_request(self, request, auth, request_id, **_):
        """With each service's confirmation and counts, and the services still missing."""
        return self.retention_rpc.get_deletion_request(auth.to_dict(), request_id)

    @route("GET", "/api/v1/audit/verify", summary="Verify the audit hash chain", tags=["retention"],
           roles=(Role.AUDITOR, Role.OPERATOR), response=AuditVerifySchema)
    def verify_audit(self, request, auth, **_):
        """``{"ok": false, "first_broken": {"seq": 17, "reason": "…"}}`` when an entry was edited or removed."""
        return self.retention_rpc.verify_audit(auth.to_dict())

    @route("POST", "/api/v1/retention-policies", summary="Add a retention policy", tags=["retention"],
           roles=(Role.OPERATOR,) + ADMINS, body=PolicyInput, response=PolicySchema, status=201)
    def create_policy(self, request, auth, body, **_):
        """``{"record_kind": "closed_referrals", "max_age_days": 1095}``; applied daily."""
        return self.retention_rpc.create_policy(auth.to_dict(), body)

    @route("GET", "/api/v1/retention-policies", summary="Retention policies", tags=["retention"],
           roles=RECORD_READERS, response=PolicyPageSchema)
    def list_policies(self, request, auth, **_):
        return self.retention_rpc.list_policies(auth.to_dict())

    @route("POST", "/api/v1/exports", summary="Export a tenant's data", tags=["retention"],
           roles=ADMINS, body=ExportInput, response=ExportSchema, status=201, timeout=EXPORT_TIMEOUT_SECONDS,
           errors={404: "The tenant is not one you may see (as for an unknown id)"})
    def create_export(self, request, auth, body, **_):
        """The data owner's full export (e.g. before termination); download it with GET."""
        return self.retention_rpc.create_export(auth.to_dict(), body)

    @route("GET", "/api/v1/exports/<export_id>", summary="Download an export (zip of JSON and CSV)",
           tags=["retention"], roles=ADMINS, raw=True, content_type="application/zip",
           timeout=EXPORT_TIMEOUT_SECONDS)
    def download_export(self, request, auth, export_id, **_):
        result = self.retention_rpc.export_data(auth.to_dict(), export_id)
        return _zip_response(result, f"weintervene-export-{export_id}.zip")

    @route("POST", "/api/v1/inspection-requests", summary="Record a parent's inspection or amendment request",
           tags=["retention"], roles=ADMINS, body=InspectionInput, response=InspectionSchema, status=201,
           errors={404: "The student is not one you may see (as for an unknown id)"})
    def open_inspection(self, request, auth, body, **_):
        """While an inspection is open the student's deletion waits (FERPA)."""
        return self.retention_rpc.open_inspection(auth.to_dict(), body)

    @route("GET", "/api/v1/inspection-requests", summary="Inspection and amendment requests",
           tags=["retention"], roles=ADMINS, response=InspectionPageSchema)
    def list_inspections(self, request, auth, **_):
        return self.retention_rpc.list_inspections(auth.to_dict())

    @route("POST", "/api/v1/inspection-requests/<inspection_id>/close", summary="Close with its outcome",
           tags=["retention"], roles=ADMINS, body=InspectionClose, response=InspectionSchema,
           errors={409: "`inspection_closed`: the request is already closed"})
    def close_inspection(self, request, auth, body, inspection_id, **_):
        return self.retention_rpc.close_inspection(auth.to_dict(), inspection_id, body)

    @route("GET", "/api/v1/inspection-requests/<inspection_id>/records",
           summary="The student's records from every service (zip)", tags=["retention"], roles=ADMINS,
           raw=True, content_type="application/zip",
           errors={409: "`inspection_closed`: records are available while the request is open"})
    def inspection_records(self, request, auth, inspection_id, **_):
        result = self.retention_rpc.inspection_data(auth.to_dict(), inspection_id)
        return _zip_response(result, f"weintervene-records-{inspection_id}.zip")
