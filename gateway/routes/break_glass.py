"""Break-glass recovery of a tenant (stored and decided by identity, ``services/identity/break_glass.py``).

An operator asks ("invite a new administrator <email> because <reason>"); the tenant's
administrators (a district admin for its schools) approve or refuse; when the tenant has no
active administrator left, a second operator (never the one who asked) approves instead.
Nothing takes effect before an approval; a request expires after 72 hours.
"""
from __future__ import annotations

from gateway.http import route
from services.identity.break_glass_schemas import (
    BreakGlassCreateSchema, BreakGlassDecisionSchema, BreakGlassListQuerySchema, BreakGlassPageSchema,
    BreakGlassSchema,
)
from weintervene.auth import Role

OPERATORS = (Role.OPERATOR,)
APPROVERS = (Role.OPERATOR, Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.PROGRAM_ADMIN)
DECISION_ERRORS = {
    403: "Not yours to approve: your own request (``break_glass_own_request``), or the tenant "
         "has an administrator who approves it (``tenant_administrator_must_approve``)",
    404: "No such request within your tenants (``break_glass_not_found``)",
    409: "Already decided (``break_glass_decided``) or expired (``break_glass_expired``), or the "
         "email now has an account (``email_taken``)",
}


class BreakGlassRoutes:
    @route("POST", "/api/v1/break-glass", summary="Ask for a break-glass recovery of a tenant",
           tags=["break-glass"], roles=OPERATORS, body=BreakGlassCreateSchema, response=BreakGlassSchema,
           status=201, errors={409: "The email already has an account (``email_taken``)"})
    def request_break_glass(self, request, auth, body, **_):
        """``{"tenant_id": "…", "email": "new.principal@lincoln.example", "display_name": "New Principal",
        "reason": "The principal left; the district asked by phone (ticket 4411)."}`` -> 201, ``pending``.
        The tenant's administrators are emailed; the invitation goes out only once approved."""
        return self.identity_rpc.request_break_glass(auth.to_dict(), body)

    @route("GET", "/api/v1/break-glass", summary="Break-glass requests", tags=["break-glass"],
           roles=APPROVERS, query=BreakGlassListQuerySchema, response=BreakGlassPageSchema)
    def list_break_glass(self, request, auth, query, **_):
        """Operators: every request; administrators: their tenants' (``?status=pending``), newest first.
        Each says who may approve it now (``approvers``)."""
        return self.identity_rpc.list_break_glass(auth.to_dict(), query)

    @route("POST", "/api/v1/break-glass/<request_id>/approve", summary="Approve a break-glass request",
           tags=["break-glass"], roles=APPROVERS, body=BreakGlassDecisionSchema, response=BreakGlassSchema,
           errors=DECISION_ERRORS)
    def approve_break_glass(self, request, auth, body, request_id, **_):
        """``{"note": "Confirmed with the superintendent"}`` (optional) -> ``approved``; the new
        administrator's invitation is created and mailed now."""
        return self.identity_rpc.approve_break_glass(auth.to_dict(), request_id, body)

    @route("POST", "/api/v1/break-glass/<request_id>/refuse", summary="Refuse a break-glass request",
           tags=["break-glass"], roles=APPROVERS, body=BreakGlassDecisionSchema, response=BreakGlassSchema,
           errors={k: v for k, v in DECISION_ERRORS.items() if k != 403})
    def refuse_break_glass(self, request, auth, body, request_id, **_):
        """``{"note": "We did not ask for this"}`` (optional) -> ``refused``; nothing takes effect.
        The operator who asked may withdraw their own request this way."""
        return self.identity_rpc.refuse_break_glass(auth.to_dict(), request_id, body)
