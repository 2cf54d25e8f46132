"""Analytics reports: de-identified figures for school, district and platform leaders."""
from __future__ import annotations

from werkzeug.wrappers import Response

from gateway.http import json_response, route
from services.analytics.reports import REPORTS
from services.analytics.schemas import DashboardQuerySchema, DashboardSchema, ReportQuerySchema, ReportSchema
from weintervene.auth import Role
from weintervene.errors import NotFound
from weintervene.observability import record_feature_use

REPORT_ROLES = (Role.SCHOOL_ADMIN, Role.PROGRAM_ADMIN, Role.DISTRICT_ADMIN, Role.OPERATOR)


class AnalyticsRoutes:
    @route("GET", "/api/v1/analytics/dashboard", summary="Every report of a leader's dashboard, in one answer",
           tags=["analytics"], roles=REPORT_ROLES, query=DashboardQuerySchema, response=DashboardSchema)
    def analytics_dashboard(self, request, auth, query, **_):
        """What the dashboard page shows, in one call: ``reports`` holds exactly what
        ``GET /api/v1/analytics/{report}`` answers for top-categories, top-services, trends,
        channels and unmet-need, and schools where the view compares schools (a district
        admin's, an operator's). Same scope rules and suppression as each report.
        Example: ``GET /api/v1/analytics/dashboard?period=semester`` -> ``{"period": {"kind":
        "semester", "from": "2026-07-01", "to": "2026-12-31"}, "previous_period": {...},
        "scope": {"view": "school", ...}, "reports": {"top-categories": {"report":
        "top-categories", "rows": [...]}, ...}}``. CSV: each report's own endpoint."""
        result = self.analytics_rpc.dashboard(auth.to_dict(), query)
        record_feature_use("analytics.dashboard")
        return result

    @route("GET", "/api/v1/analytics/<report>", summary="An analytics report (JSON or CSV)",
           tags=["analytics"], roles=REPORT_ROLES, query=ReportQuerySchema, response=ReportSchema, raw=True,
           also_content_types=("text/csv",), errors={404: "`report_not_found`: not one of the reports named"})
    def analytics_report(self, request, auth, query, report, **_):
        """``report`` is one of top-services, top-categories, trends, channels, unmet-need, outcomes,
        schools. Example: ``GET /api/v1/analytics/top-services?period=month&to=2026-11-28``
        -> ``{"report": "top-services", "period": {"kind": "month", "from": "2026-11-01",
        "to": "2026-11-30"}, "rows": [{"service_name": "Eastside Tutoring", "count": 42,
        "previous_count": 30, "change_pct": 40.0, ...}]}``. School admins see their school;
        district admins each school and the district, side by side, with small counts
        suppressed; operators only schools that consented. ``format=csv`` exports the rows."""
        if report not in REPORTS:
            raise NotFound(f"No report {report!r}.", code="report_not_found",
                           details={"report": [f"One of {', '.join(REPORTS)}."]})
        if query["format"] == "csv":
            exported = self.analytics_rpc.export_report(auth.to_dict(), report, query)
            record_feature_use(f"analytics.{report}.csv")
            response = Response(exported["content"], mimetype="text/csv")
            response.headers["Content-Disposition"] = f'attachment; filename="{exported["filename"]}"'
            response.headers["Cache-Control"] = "no-store"
            return response
        result = self.analytics_rpc.report(auth.to_dict(), report, query)
        record_feature_use(f"analytics.{report}")
        return json_response(result)
