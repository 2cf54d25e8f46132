"""Referrals: share a service with a family, follow it, print it, open a shared link, saved lists."""
from __future__ import annotations

import base64

from werkzeug.wrappers import Response

from services.referrals.exceptions import LinkNotFound
from services.referrals.schemas import (
    DisclosurePageSchema, ReferralPageSchema, ReferralQuerySchema, ReferralSchema, SavedListCreateSchema,
    SavedListItemSchema, SavedListPageSchema, SavedListSchema, ShareRequestSchema, ShareResultSchema,
    StatusUpdateSchema,
)
from gateway.http import ErrorPage, Header, json_response, route
from weintervene.auth import STUDENT_DATA_ROLES, Role

STAFF = tuple(sorted(STUDENT_DATA_ROLES, key=lambda r: r.value))

SMS_CALLBACK_MAX_BODY = 64 * 1024

IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "Optional. One key (e.g. a random UUID) per share you mean, sent again with every retry of it: "
    "a repeat with the same body within 24 hours answers with the same referrals (201, header "
    "`Idempotent-Replayed: true`) and shares nothing again; with another body it is a 422 "
    "`idempotency_key_reused`. Keys are per user.",
)


def _html(body: str, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


class ReferralRoutes:
    @route("POST", "/api/v1/referrals", summary="Share services with a family", tags=["referrals"],
           roles=STAFF, body=ShareRequestSchema, response=ShareResultSchema, status=201, raw=True,
           headers=(IDEMPOTENCY_KEY,), body_loaded_by_service=True,
           errors={404: "A student, contact, service or list that is not one you may see (as for an unknown id)",
                   409: "`subject_fenced` after a deletion request; `idempotency_key_in_use`: send it again",
                   422: "`idempotency_key_reused`: this Idempotency-Key came with another body"})
    def create_referral(self, request, auth, body, headers, **_):
        """Body ``{"student_id": "…", "contact_ids": ["…"], "service_ids": ["…"], "channel": "sms",
        "note": "Ask for Ana"}`` -> 201 ``{"items": [referral…]}``. Without ``student_id`` it is a
        walk-in share (nothing about the family is kept). 404 ``student_not_found`` when the caller
        may not see the student (as for an unknown id); 403 when a contact is not authorised;
        409 ``subject_fenced`` after a deletion request.

        ``Idempotency-Key: <1-255 characters>`` makes a retry safe: the same request again
        answers 201 with the same referrals (a link share with a fresh ``link_url``, the first
        one's token being stored hashed only) and ``Idempotent-Replayed: true``; no second
        message goes to the family."""
        result = self.referrals_rpc.share(auth.to_dict(), body, headers["Idempotency-Key"])
        replayed = result.pop("idempotent_replayed", False)
        # 201 again, as the first answer (Stripe's way): the client handles a retry like a first try.
        return json_response(result, 201, headers={"Idempotent-Replayed": "true"} if replayed else None)

    @route("GET", "/api/v1/referrals", summary="My, my school's, or incoming referrals", tags=["referrals"],
           roles=STAFF, query=ReferralQuerySchema, response=ReferralPageSchema)
    def list_referrals(self, request, auth, query, **_):
        """``?scope=mine|school|incoming&status=requested&due=true&page=1&per_page=25``."""
        return self.referrals_rpc.list_referrals(auth.to_dict(), query)

    @route("GET", "/api/v1/referrals/<referral_id>", summary="One referral with history and deliveries",
           tags=["referrals"], roles=STAFF, response=ReferralSchema)
    def get_referral(self, request, auth, referral_id, **_):
        return self.referrals_rpc.get_referral(auth.to_dict(), referral_id)

    @route("POST", "/api/v1/referrals/<referral_id>/status", summary="Update a referral's status",
           tags=["referrals"], roles=STAFF, body=StatusUpdateSchema, response=ReferralSchema,
           errors={409: "`invalid_transition`: the referral is closed, or cannot move to that status"})
    def update_referral_status(self, request, auth, body, referral_id, **_):
        """Body ``{"status": "completed", "outcome": "connected", "note": "Family enrolled"}``."""
        return self.referrals_rpc.update_status(auth.to_dict(), referral_id, body)

    @route("GET", "/api/v1/referrals/<referral_id>/print", summary="Print-ready HTML of a share",
           tags=["referrals"], roles=STAFF, raw=True, content_type="text/html")
    def print_referral(self, request, auth, referral_id, **_):
        return _html(self.referrals_rpc.print_share(auth.to_dict(), referral_id, "html")["html"])

    @route("GET", "/api/v1/referrals/<referral_id>/print.pdf", summary="Print-ready PDF of a share",
           tags=["referrals"], roles=STAFF, raw=True, content_type="application/pdf")
    def print_referral_pdf(self, request, auth, referral_id, **_):
        pdf = base64.b64decode(self.referrals_rpc.print_share(auth.to_dict(), referral_id, "pdf")["pdf_base64"])
        response = Response(pdf, mimetype="application/pdf")
        response.headers["Content-Disposition"] = 'inline; filename="services.pdf"'
        response.headers["Cache-Control"] = "no-store"
        return response

    @route("GET", "/r/<token>", summary="Public page of a shared link (service information only)",
           tags=["referrals"], auth=False, raw=True, content_type="text/html",
           errors={404: ErrorPage("The link expired or never existed: a page that says so", "text/html")})
    def open_shared_link(self, request, token, **_):
        """No sign-in: the unguessable token is the key. Shows the services only, never student data."""
        try:
            page = self.referrals_rpc.open_link(token)["html"]
        except LinkNotFound:
            page = self.referrals_rpc.expired_link_page(token, request.headers.get("Accept-Language"))["html"]
            response = _html(page, 404)
            response.headers["X-Robots-Tag"] = "noindex"
            return response
        response = _html(page)
        response.headers["X-Robots-Tag"] = "noindex"
        return response

    @route("GET", "/api/v1/students/<student_id>/disclosures", summary="FERPA disclosure log of a student",
           tags=["referrals"], roles=(Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN), response=DisclosurePageSchema)
    def student_disclosures(self, request, auth, student_id, **_):
        return self.referrals_rpc.list_disclosures(auth.to_dict(), student_id)

    @route("GET", "/api/v1/lists", summary="My saved lists and my school's shared lists", tags=["lists"],
           roles=STAFF, response=SavedListPageSchema)
    def get_lists(self, request, auth, **_):
        return self.referrals_rpc.get_lists(auth.to_dict())

    @route("POST", "/api/v1/lists", summary="Create a saved list", tags=["lists"], roles=STAFF,
           body=SavedListCreateSchema, response=SavedListSchema, status=201,
           errors={404: "`service_not_found`: a service that is not one you may see (as for an unknown id)"})
    def create_list(self, request, auth, body, **_):
        """Body ``{"name": "Food pantries", "shared": true, "service_ids": ["…"]}``."""
        return self.referrals_rpc.create_list(auth.to_dict(), body)

    @route("POST", "/api/v1/lists/<list_id>/items", summary="Add a service to a saved list", tags=["lists"],
           roles=STAFF, body=SavedListItemSchema, response=SavedListSchema, status=201)
    def add_list_item(self, request, auth, body, list_id, **_):
        return self.referrals_rpc.add_list_item(auth.to_dict(), list_id, body)

    @route("DELETE", "/api/v1/lists/<list_id>/items/<service_id>", summary="Take a service off a saved list",
           tags=["lists"], roles=STAFF, response=SavedListSchema)
    def remove_list_item(self, request, auth, list_id, service_id, **_):
        return self.referrals_rpc.remove_list_item(auth.to_dict(), list_id, service_id)

    @route("DELETE", "/api/v1/lists/<list_id>", summary="Delete a saved list", tags=["lists"], roles=STAFF, raw=True,
           status=204)
    def delete_list(self, request, auth, list_id, **_):
        """204 when deleted; only its owner may."""
        self.referrals_rpc.delete_list(auth.to_dict(), list_id)
        return Response(status=204)

    @route("POST", "/api/v1/deliveries/sms-status", summary="SMS provider status callback", tags=["referrals"],
           auth=False, raw=True, status=204, errors={403: "`bad_signature`: unsigned, or not signed with the account token"})
    def sms_status_callback(self, request, **_):
        """Form-encoded, as the provider sends it (``MessageSid``, ``MessageStatus``…), signed in
        ``X-Twilio-Signature`` with the account token; 204 when accepted, 403 when unsigned."""
        # A provider's callback is a couple of kB: a larger form is 413 before it is read.
        request.max_content_length = SMS_CALLBACK_MAX_BODY
        params = {k: v for k, v in request.form.items()}
        self.referrals_rpc.sms_status(params, request.headers.get("X-Twilio-Signature"))
        return Response(status=204)
