"""The access-transparency log (tenant admins) and the operators' account-conflict queue.

Identity owns both (``services.identity.access_log``, ``services.identity.conflicts``);
these handlers only pass the caller on.
"""
from __future__ import annotations

from werkzeug.wrappers import Response

from gateway.http import route
from services.identity.schemas import (
    AccessLogPageSchema, AccessLogQuerySchema, AccountConflictPageSchema, ConflictQuerySchema,
)
from weintervene.auth import Role

LOG_READERS = (Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.PROGRAM_ADMIN)


def _params(query: dict) -> dict:
    return {k: (str(v) if k == "tenant_id" else v) for k, v in query.items() if v is not None}


class AccessRoutes:
    @route("GET", "/api/v1/access-log", summary="What platform accounts did to your tenant", tags=["access"],
           roles=LOG_READERS, query=AccessLogQuerySchema, response=AccessLogPageSchema)
    def access_log(self, request, auth, query, **_):
        """Every action an operator or auditor took on your tenant (a district admin: the
        district and its schools), newest first: accounts, settings, deletions, retention.
        Filter by ``tenant_id`` and ``action``."""
        return self.identity_rpc.list_access_log(auth.to_dict(), _params(query))

    @route("GET", "/api/v1/access-log/csv", summary="The access log as CSV", tags=["access"],
           roles=LOG_READERS, query=AccessLogQuerySchema, raw=True, content_type="text/csv")
    def access_log_csv(self, request, auth, query, **_):
        """Every entry (not paged) as CSV; no cell starts a spreadsheet formula."""
        params = {k: v for k, v in _params(query).items() if k not in ("page", "per_page")}
        response = Response(self.identity_rpc.access_log_csv(auth.to_dict(), params), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="access-log.csv"'
        response.headers["Cache-Control"] = "no-store"
        return response

    @route("GET", "/api/v1/operator/account-conflicts", summary="Addresses taken in another tenant",
           tags=["access"], roles=(Role.OPERATOR,), query=ConflictQuerySchema, response=AccountConflictPageSchema)
    def account_conflicts(self, request, auth, query, **_):
        """Tenant admins who asked for an account whose address another tenant's account has
        (they were told only that the address cannot be used), newest first."""
        return self.identity_rpc.list_account_conflicts(auth.to_dict(), _params(query))
