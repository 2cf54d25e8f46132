"""retention's entrypoints: deletion requests, confirmations, the audit chain, exports.

Thin: the logic lives in ``deletions`` (requests, fence, FERPA guard, dispatch,
re-send, completion), ``audit`` (the hash chain) and ``exports`` (exports and
inspection requests).
"""
from __future__ import annotations

import logging

from marshmallow import ValidationError
from nameko.events import SERVICE_POOL
from nameko.timer import timer
from sqlalchemy import select

from services.retention import audit, backlog, deletions, exports, names
from services.retention.dependencies import retention_database
from services.retention.models import OutboxMessage, RetentionPolicy
from services.retention.schemas import (
    DeletionQuery, DeletionRequestInput, ExportInput, InspectionClose, InspectionInput, PolicyInput, PolicySchema,
)
from weintervene.auth import AuthContext, Role
from weintervene.contracts import DELETION_COMPLETED
from weintervene.entrypoints import rpc
from weintervene.messaging import OutboxRelay, ReliablePublisher, event_handler, relay_outbox
from weintervene.observability import BACKLOG_SECONDS, EntrypointMetrics, HealthCheck, OutboxBacklogGauges
from weintervene.rpc import ClusterRpc, ServiceRpc
from weintervene.validation import load

log = logging.getLogger(__name__)


def _confirmation_handler(source: str):
    return event_handler(source, DELETION_COMPLETED, handler_type=SERVICE_POOL, reliable_delivery=True)


class RetentionService(HealthCheck, OutboxRelay, OutboxBacklogGauges):
    name = "retention"

    db = retention_database()
    metrics = EntrypointMetrics()
    events = ReliablePublisher()
    outbox_model = OutboxMessage
    identity_rpc = ServiceRpc("identity")
    cluster_rpc = ClusterRpc()

    def _relay_now(self):
        # Publish at once rather than at the next relay tick: an opt-out should
        # reach every service within a second.
        relay_outbox(self.db, OutboxMessage, self.events, self.name)

    # -- deletion requests ----------------------------------------------------
    @rpc
    def request_deletion(self, auth, data):
        """Record a verified deletion request, fence the subject, dispatch it.

        Example: request_deletion(auth_of_school_admin, {"scope": "student",
        "subject_id": "9b1…", "reason": "parent_opt_out", "verification":
        {"method": "in_person_photo_id", "verified_by": "4c0…"}})
        -> {"id": "…", "status": "dispatched", "subject_ref": "5e…", …}
        (``status`` is ``pending`` with ``status_reason`` while identity cannot
        fence, ``waiting_ferpa_inspection`` while an inspection is open).
        """
        caller = AuthContext.from_dict(auth)
        values = load(DeletionRequestInput(), data)
        req = deletions.create_request(self.db, self.identity_rpc, caller, values)
        if req.status == "dispatched":
            self._relay_now()
        return deletions.dump_request(req)

    @rpc
    def list_deletion_requests(self, auth, query=None):
        """Filter by tenant_id, scope, status (or "open"), overdue, from/to (dates of creation).

        Example: list_deletion_requests(auditor, {"status": "open", "overdue": True})
        -> {"items": [...], "total": 1, "page": 1, "per_page": 50}
        """
        values = load(DeletionQuery(), query or {})
        page = deletions.list_requests(self.db, AuthContext.from_dict(auth), values)
        names.name_requests(self.identity_rpc, page["items"])
        return page

    @rpc
    def deletion_requests_csv(self, auth, query=None):
        """The same filters, every match as CSV text. Example: -> "id,scope,tenant_id,…\\r\\n…"."""
        values = load(DeletionQuery(), query or {})
        return deletions.requests_csv(self.db, AuthContext.from_dict(auth), values,
                                      named=lambda rows: names.name_requests(self.identity_rpc, rows))

    @rpc
    def get_deletion_request(self, auth, request_id):
        """One request with each service's confirmation and counts."""
        request = deletions.get_request(self.db, AuthContext.from_dict(auth), str(request_id))
        return names.name_requests(self.identity_rpc, [request])[0]

    @rpc
    def verify_audit(self, auth):
        """Check the hash chain. Example: -> {"ok": true, "entries": 42, "first_broken": null, "head_hash": "…"}."""
        AuthContext.from_dict(auth).require(Role.AUDITOR, Role.OPERATOR)
        return audit.verify_chain(self.db)

    # -- confirmations (one durable queue per data service) ---------------------
    def _confirm(self, service, payload):
        try:
            outcome = deletions.record_confirmation(self.db, payload, service)
        except ValidationError as exc:
            self.db.rollback()
            log.error("confirmation from %s outside the contract: %s", service, exc.messages)
            return "rejected"
        log.info("confirmation from %s: %s", service, outcome)
        return outcome

    @_confirmation_handler("identity")
    def on_identity_deletion_completed(self, payload):
        return self._confirm("identity", payload)

    @_confirmation_handler("directory")
    def on_directory_deletion_completed(self, payload):
        return self._confirm("directory", payload)

    @_confirmation_handler("referrals")
    def on_referrals_deletion_completed(self, payload):
        return self._confirm("referrals", payload)

    @_confirmation_handler("analytics")
    def on_analytics_deletion_completed(self, payload):
        return self._confirm("analytics", payload)

    # -- timers ------------------------------------------------------------------
    @timer(interval=1.0)
    def sweep(self):
        """Retry fences, release FERPA waits, re-send to services that have not confirmed."""
        stats = deletions.sweep(self.db, self.identity_rpc)
        if stats["advanced"] or stats["resent"]:
            self._relay_now()

    @timer(interval=60.0)
    def apply_policies(self):
        if deletions.apply_due_policies(self.db, identity=self.identity_rpc):
            self._relay_now()

    @timer(interval=600.0)
    def purge_outbox(self):
        deletions.purge_delivered_outbox(self.db)

    @timer(interval=BACKLOG_SECONDS)
    def measure_deletions(self):
        """weintervene_deletion_requests_pending / _overdue for the alert rules."""
        backlog.measure_deletions(self.db)

    # -- retention policies ------------------------------------------------------
    @rpc
    def create_policy(self, auth, data):
        """Example: create_policy(school_admin, {"record_kind": "login_records", "max_age_days": 365})."""
        return deletions.create_policy(self.db, AuthContext.from_dict(auth), load(PolicyInput(), data))

    @rpc
    def list_policies(self, auth):
        caller = AuthContext.from_dict(auth).require(Role.OPERATOR, Role.AUDITOR, *deletions.ADMIN_ROLES)
        stmt = select(RetentionPolicy).order_by(RetentionPolicy.created_at)
        if caller.role not in (Role.OPERATOR, Role.AUDITOR):
            stmt = stmt.where(RetentionPolicy.tenant_id == caller.tenant_id)
        rows = self.db.scalars(stmt).all()
        return {"items": PolicySchema(many=True).dump(rows), "total": len(rows), "page": 1, "per_page": len(rows)}

    @rpc
    def run_due_policies(self):
        """(internal; the timer does this every minute) -> ids of the policy requests created."""
        ids = deletions.apply_due_policies(self.db, identity=self.identity_rpc)
        if ids:
            self._relay_now()
        return ids

    # -- exports and inspections ---------------------------------------------------
    @rpc
    def create_export(self, auth, data):
        """A data owner's export. Example: create_export(school_admin, {"tenant_id": "…"}) -> {"id": …}."""
        return exports.create_export(self.db, self.identity_rpc, AuthContext.from_dict(auth), load(ExportInput(), data))

    @rpc
    def export_data(self, auth, export_id):
        """Everything the export's tenants hold in every service: {"manifest", "services": {svc: {table: rows}}}."""
        return exports.export_data(self.db, self.cluster_rpc, AuthContext.from_dict(auth), str(export_id))

    @rpc
    def open_inspection(self, auth, data):
        """Example: open_inspection(school_admin, {"student_id": "…", "kind": "inspection"})."""
        return exports.open_inspection(self.db, self.identity_rpc, AuthContext.from_dict(auth), load(InspectionInput(), data))

    @rpc
    def close_inspection(self, auth, inspection_id, data):
        """Example: close_inspection(school_admin, "…", {"outcome": "provided"})."""
        result = exports.close_inspection(self.db, self.identity_rpc, AuthContext.from_dict(auth),
                                          str(inspection_id), load(InspectionClose(), data))
        self._relay_now()
        return result

    @rpc
    def list_inspections(self, auth, status=None):
        return exports.list_inspections(self.db, AuthContext.from_dict(auth), status)

    @rpc
    def inspection_data(self, auth, inspection_id):
        return exports.inspection_data(self.db, self.cluster_rpc, AuthContext.from_dict(auth), str(inspection_id))
