"""Privacy-policy versions, acknowledgements and incident notices (stored by identity).

Everyone reads the current ones (``GET /api/v1/notices``, no sign-in needed: the
sign-in page shows an incident too); operators publish; each signed-in user
acknowledges the current policy version for themselves.
"""
from __future__ import annotations

from gateway.http import route, session_token
from services.identity.notice_schemas import (
    AcknowledgementCreateSchema, AcknowledgementSchema, CurrentNoticesSchema, IncidentNoticeCreateSchema,
    IncidentNoticePageSchema, IncidentNoticeSchema, PolicyVersionCreateSchema, PolicyVersionPageSchema,
    PolicyVersionSchema,
)
from weintervene.auth import Role
from weintervene.errors import Unauthorized

OPERATORS = (Role.OPERATOR,)


class NoticeRoutes:
    @route("GET", "/api/v1/notices", summary="The current privacy policy and incident notices", tags=["notices"],
           auth=False, response=CurrentNoticesSchema)
    def current_notices(self, request, **_):
        """-> ``{"policy": {"version": "5b0f…", "last_updated": "2026-11-01", "summary": "…"},
        "incidents": [{"id", "message", "severity", "starts_at", "ends_at", "active"}],
        "acknowledged": false}``. Signed in, ``acknowledged`` says whether you read the current
        policy; otherwise (or with an ended session: never a 401 here) it is null."""
        caller = None
        if session_token(request)[0]:
            try:
                caller = self.authenticate_request(request).to_dict()
            except Unauthorized:
                caller = None
        return self.identity_rpc.current_notices(caller)

    @route("POST", "/api/v1/me/policy-acknowledgement", summary="Acknowledge the current privacy policy",
           tags=["notices"], body=AcknowledgementCreateSchema, response=AcknowledgementSchema,
           errors={409: "`policy_version_not_current`: not the current policy's version"})
    def acknowledge_policy(self, request, auth, body, **_):
        """``{"version": "5b0f…"}`` (the current policy's ``version``) -> ``{"version", "last_updated",
        "acknowledged": true, "acknowledged_at"}``;
        409 ``policy_version_not_current`` for any other version. Acknowledging twice is harmless."""
        return self.identity_rpc.acknowledge_policy(auth.to_dict(), body)

    @route("GET", "/api/v1/me/policy-acknowledgement", summary="Did I acknowledge the current privacy policy",
           tags=["notices"], response=AcknowledgementSchema)
    def policy_acknowledgement(self, request, auth, **_):
        return self.identity_rpc.policy_acknowledgement(auth.to_dict())

    @route("GET", "/api/v1/policy-versions", summary="Every published privacy policy version", tags=["notices"],
           roles=OPERATORS, response=PolicyVersionPageSchema)
    def list_policy_versions(self, request, auth, **_):
        return self.identity_rpc.list_policy_versions(auth.to_dict())

    @route("POST", "/api/v1/policy-versions", summary="Publish a new privacy policy version", tags=["notices"],
           roles=OPERATORS, body=PolicyVersionCreateSchema, response=PolicyVersionSchema, status=201)
    def publish_policy_version(self, request, auth, body, **_):
        """``{"last_updated": "2026-12-01", "summary": "Shorter retention of delivery logs."}`` -> 201;
        every user sees the banner again until they acknowledge it. 409 ``policy_version_outdated``
        when dated before the current version; 400 when dated in the future or the summary is blank."""
        return self.identity_rpc.publish_policy_version(auth.to_dict(), body)

    @route("GET", "/api/v1/incident-notices", summary="Every incident notice, ended ones too", tags=["notices"],
           roles=OPERATORS, response=IncidentNoticePageSchema)
    def list_incident_notices(self, request, auth, **_):
        return self.identity_rpc.list_incident_notices(auth.to_dict())

    @route("POST", "/api/v1/incident-notices", summary="Post an incident notice", tags=["notices"],
           roles=OPERATORS, body=IncidentNoticeCreateSchema, response=IncidentNoticeSchema, status=201)
    def post_incident_notice(self, request, auth, body, **_):
        """``{"message": "Text messages are delayed; email works.", "severity": "warning",
        "ends_at": "2026-11-29T18:00:00+00:00"}`` (``ends_at`` optional) -> 201; shown to everyone
        at once."""
        return self.identity_rpc.post_incident_notice(auth.to_dict(), body)

    @route("POST", "/api/v1/incident-notices/<notice_id>/end", summary="End an incident notice now",
           tags=["notices"], roles=OPERATORS, response=IncidentNoticeSchema)
    def end_incident_notice(self, request, auth, notice_id, **_):
        """-> the notice, ended; 409 ``notice_ended`` when it already had."""
        return self.identity_rpc.end_incident_notice(auth.to_dict(), notice_id)
