"""analytics's entrypoints: the share_recorded consumer, the report RPCs, deletion.

Any number of instances may run: they compete on one durable queue, and every
effect goes through the database (see ``counting``).
"""
from __future__ import annotations

import re

from datetime import date

from services.analytics import counting, demo, reports
from services.analytics.dependencies import analytics_database
from services.analytics.intake import batch_event_handler
from services.analytics.models import DeletionReceipt, OutboxMessage
from services.analytics.schemas import DashboardQuerySchema, ReportQuerySchema
from services.analytics.scope import resolve_scope
from services.analytics.sources import Sources, TermCache
from weintervene.config import settings
from weintervene.contracts import REFERRAL_CLOSED, SHARE_RECORDED
from weintervene.deletion import DeletionParticipant
from weintervene.entrypoints import rpc
from weintervene.auth import AuthContext, Role
from weintervene.errors import Forbidden, NotFound
from weintervene.export import DataExporter
from weintervene.messaging import OutboxRelay, ReliablePublisher
from weintervene.observability import EntrypointMetrics, HealthCheck, OutboxBacklogGauges
from weintervene.rpc import ServiceRpc
from weintervene.validation import load


class AnalyticsService(DataExporter, DeletionParticipant, OutboxRelay, HealthCheck, OutboxBacklogGauges):
    name = "analytics"

    db = analytics_database()
    metrics = EntrypointMetrics()
    events = ReliablePublisher()
    outbox_model = OutboxMessage
    receipt_model = DeletionReceipt
    identity_rpc = ServiceRpc("identity")
    directory_rpc = ServiceRpc("directory")
    term_cache = TermCache()

    # Events come in batches (see ``intake``): one transaction and one ack per
    # batch, the ack only after the commit. requeue_on_error: a database error
    # (outage, deadlock) puts the whole batch back for another try instead of
    # losing it; events outside the contract never raise (they are rejected
    # inside), so nothing loops forever on bad input.
    @batch_event_handler("referrals", SHARE_RECORDED, reliable_delivery=True, requeue_on_error=True,
                         batch_size=lambda: settings().analytics_batch_size,
                         prefetch=lambda: settings().analytics_prefetch)
    def on_share_recorded(self, payloads):
        """Count a batch of shares; returns {outcome: events}. Each payload is the
        ShareRecorded contract, e.g. [{"event_id": "…", "tenant_id": "…",
        "district_id": null, "service_id": "…", "taxonomy_term_ids": ["…"],
        "channel": "sms", "occurred_on": "2026-11-28"}] -> {"counted": 1}."""
        return counting.receive_shares(self.db, payloads)

    @batch_event_handler("referrals", REFERRAL_CLOSED, reliable_delivery=True, requeue_on_error=True,
                         batch_size=lambda: settings().analytics_batch_size,
                         prefetch=lambda: settings().analytics_prefetch)
    def on_referral_closed(self, payloads):
        """Count a batch of closed referrals; the ReferralClosed contract, e.g.
        [{"event_id": "…", "tenant_id": "…", "district_id": null, "service_id": "…",
        "taxonomy_term_ids": ["…"], "outcome": "connected", "days_open": 9,
        "occurred_on": "2026-12-04"}] -> {"counted": 1}."""
        return counting.receive_outcomes(self.db, payloads)

    @rpc
    def load_demo_history(self, auth, plan, today=None):
        """Demo mode only, the operator: a school year of de-identified share events for the
        demo schools (:mod:`services.analytics.demo`), counted like real ones; idempotent.

        Example: load_demo_history(operator, {"schools": [{"tenant_id": lincoln, "district_id":
        riverside}], "services": [{"service_id": s, "taxonomy_term_ids": [t], "category":
        "mental_health"}]}) -> {"counted": 4210, "closings_counted": 2410}
        (again: {"duplicate": 4210, "closings_duplicate": 2410})
        """
        AuthContext.from_dict(auth).require(Role.OPERATOR)
        if not settings().dev_mode:
            raise Forbidden("Demo history is for demo mode only: real figures come from real shares.",
                            code="demo_mode_only")
        values = load(demo.DemoHistoryPlan(), plan or {})
        day = date.fromisoformat(today) if today else date.today()
        events = demo.history_events(values, day)
        summary: dict = {}
        for start in range(0, len(events), 1000):
            for outcome, n in counting.receive_shares(self.db, events[start:start + 1000]).items():
                summary[outcome] = summary.get(outcome, 0) + n
        closings = demo.closing_events(events, values, day)
        for start in range(0, len(closings), 1000):
            for outcome, n in counting.receive_outcomes(self.db, closings[start:start + 1000]).items():
                summary[f"closings_{outcome}"] = summary.get(f"closings_{outcome}", 0) + n
        return summary

    @rpc
    def report(self, auth, name, query=None):
        """A report for the caller's scope.

        Example: report(auth, "top-services", {"period": "month", "to": "2026-11-28"}) ->
        {"report": "top-services", "period": {"kind": "month", "from": "2026-11-01",
        "to": "2026-11-30"}, "previous_period": {...}, "scope": {"view": "school", ...},
        "columns": [...], "rows": [{"tenant_id": "…", "rank": 1, "service_id": "…",
        "service_name": "Eastside Tutoring", "count": 42, "previous_count": 30,
        "change_pct": 40.0, ...}]}
        """
        if name not in reports.REPORTS:
            raise NotFound(f"No report {name!r}.", code="report_not_found",
                           details={"report": [f"One of {', '.join(reports.REPORTS)}."]})
        params = load(ReportQuerySchema(), query or {})
        sources, scope = self._scope(auth, params)
        return reports.build_report(self.db, name, scope, params, sources, settings())

    @rpc
    def dashboard(self, auth, query=None):
        """A leader's whole dashboard in one call: what ``report`` gives for top-categories,
        top-services, trends, channels and unmet-need (and schools where the view compares
        schools), for one scope and period. The scope is resolved once, so identity is asked
        once; directory once for the service names and once for the term names (if not kept).

        Example: dashboard(auth, {"period": "semester"}) -> {"period": {"kind": "semester",
        "from": "2026-07-01", "to": "2026-12-31"}, "previous_period": {...}, "scope": {"view":
        "school", ...}, "reports": {"top-categories": {"report": "top-categories", "rows": [...],
        ...}, "top-services": {...}, "trends": {...}, "channels": {...}, "unmet-need": {...}}}
        """
        params = load(DashboardQuerySchema(), query or {})
        sources, scope = self._scope(auth, params)
        return reports.build_dashboard(self.db, scope, params, sources, settings())

    def _scope(self, auth, params):
        tenant_id = str(params["tenant_id"]) if params.get("tenant_id") else None
        sources = Sources(self.db, self.identity_rpc, self.directory_rpc, auth, terms=self.term_cache)
        return sources, resolve_scope(auth, tenant_id, sources, settings().analytics_suppression_threshold)

    @rpc
    def export_report(self, auth, name, query=None):
        """The same report as CSV: {"filename": "top-services-2026-11-01-2026-11-30.csv",
        "content_type": "text/csv", "content": "tenant_id,tenant_name,…\\r\\n…"}."""
        result = self.report(auth, name, query)
        period = result["period"]
        filename = re.sub(r"[^a-z0-9.-]", "-", f"{name}-{period['from']}-{period['to']}.csv")
        return {"filename": filename, "content_type": "text/csv", "content": reports.to_csv(result)}

    def delete_for(self, request: dict) -> dict:
        """Tenant termination: delete every counter of every tenant covered, and fence
        them so a late event cannot recreate any. Other scopes hold nothing here:
        counters carry no person."""
        if request["scope"] != "tenant":
            return {}
        return counting.delete_tenants(self.db, request["tenant_ids"])
