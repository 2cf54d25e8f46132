"""Single sign-on: the browser's trip to the tenant's OpenID provider and back (thin).

Identity decides everything (``services/identity/single_sign_on.py``); these routes carry
the browser. ``start`` asks identity for the authorization URL and a fresh ``state``,
``nonce`` and PKCE verifier, keeps those three in a short-lived signed cookie (HttpOnly,
Secure, SameSite=Lax so it comes back on the provider's top-level redirect, path limited
to ``/api/v1/sso/``, ten minutes), and redirects. ``callback`` checks the ``state`` against
the cookie, clears the cookie whatever happens (a flow is used once), and hands the code,
verifier and nonce to identity, which answers a session as a password sign-in's. Errors
are mapped through the one table (``gateway/errors.py``) and shown as a page, since a
browser, not a script, is at the other end.

Example::

    GET /api/v1/sso/<district_id>/start   -> 302 https://accounts.google.com/o/oauth2/v2/auth?…
    GET /api/v1/sso/callback?code=…&state=…  -> 200 page, session cookies set, on to /
"""
from __future__ import annotations

import base64
import hmac
import html
import json
import time

from marshmallow import EXCLUDE, Schema, fields, validate
from werkzeug.wrappers import Response

from gateway.errors import error_response
from gateway.http import ErrorPage, client_ip, log_answer, route
from gateway.routes.identity import _set_session_cookies
from services.identity.exceptions import SsoRefused
from services.identity.single_sign_on_schemas import (
    SsoConfigurationOutSchema, SsoConfigurationSchema, SsoLookupOutSchema, SsoLookupSchema, SsoRemovedSchema,
)
from weintervene.auth import Role
from weintervene.errors import BadRequest
from weintervene.hashing import keyed_hash, verify_keyed_hash

FLOW_COOKIE = "wi_sso_flow"
FLOW_PATH = "/api/v1/sso/"
FLOW_SECONDS = 600
SSO_CONFIGURERS = (Role.DISTRICT_ADMIN, Role.SCHOOL_ADMIN, Role.PROGRAM_ADMIN)


class CallbackQuerySchema(Schema):
    """What the provider sends back; providers add their own parameters (``iss``, ``scope``,
    ``session_state``, ``hd``…), which are ignored."""

    class Meta:
        unknown = EXCLUDE

    code = fields.Str(validate=validate.Length(max=2048))
    state = fields.Str(validate=validate.Length(max=256))
    error = fields.Str(validate=validate.Length(max=256))
    error_description = fields.Str(validate=validate.Length(max=1024))
    iss = fields.Str(validate=validate.Length(max=500))  # RFC 9207: which provider answered


def _seal_flow(flow: dict) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(flow, separators=(",", ":")).encode()).decode("ascii")
    return f"{payload}.{keyed_hash('sso-flow', payload)}"


def _open_flow(cookie: str | None) -> dict:
    """The flow the cookie carries, if its signature holds and it has not expired."""
    payload, _, signature = (cookie or "").partition(".")
    if not payload or not verify_keyed_hash("sso-flow", payload, signature):
        raise SsoRefused("This sign-in was not started here, or was already used. Start again from the sign-in page.",
                         code="sso_state_mismatch")
    flow = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    if flow.get("expires", 0) < time.time():
        raise SsoRefused("This sign-in took too long. Start again from the sign-in page.", code="sso_state_expired")
    return flow


def sso_page(status: int, title: str, message: str, next_path: str | None = None) -> Response:
    """A small page for the browser (no script: the CSP allows only our own files)."""
    refresh = f'<meta http-equiv="refresh" content="0;url={html.escape(next_path)}">' if next_path else ""
    link = (f'<p><a href="{html.escape(next_path)}">Continue</a></p>' if next_path
            else '<p><a href="/signin">Back to sign-in</a></p>')
    body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} · WeIntervene'
            f'</title>{refresh}<link rel="stylesheet" href="/static/app.css"></head><body><main id="main">'
            f'<h1>{html.escape(title)}</h1><p id="sso-message">{html.escape(message)}</p>{link}</main></body></html>')
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused_page(exc: BaseException, method: str, path: str) -> Response:
    status, body = error_response(exc)  # the one table decides the status and the words
    log_answer(method, path, status, exc)
    title = "The provider is not answering" if status >= 500 else "Single sign-on did not sign you in"
    response = sso_page(status, title, body["error"]["message"])
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return response


class SingleSignOnRoutes:
    # -- the administrator's configuration -----------------------------------
    @route("GET", "/api/v1/tenants/<tenant_id>/sso", summary="This organisation's single sign-on",
           tags=["single sign-on"], roles=SSO_CONFIGURERS, response=SsoConfigurationOutSchema,
           errors={404: "`sso_not_configured`: none yet; `tenant_not_found`: not your organisation",
                   403: "`sso_configured_by_district`: a district's school uses its district's"})
    def get_sso(self, request, auth, tenant_id, **_):
        return self.identity_rpc.sso_configuration(auth.to_dict(), tenant_id)

    @route("PUT", "/api/v1/tenants/<tenant_id>/sso", summary="Configure single sign-on (OpenID Connect)",
           tags=["single sign-on"], roles=SSO_CONFIGURERS, body=SsoConfigurationSchema,
           response=SsoConfigurationOutSchema, body_loaded_by_service=True,
           errors={404: "`tenant_not_found`: not your organisation",
                   403: "`sso_configured_by_district`: a district's school uses its district's"})
    def put_sso(self, request, auth, body, tenant_id, **_):
        """``{"preset": "google" | "entra" | "clever" | "classlink" | "generic", "client_id", "client_secret",
        "allowed_domains": ["riverside.k12.example"], "password_sign_in_allowed": true, "jit_role": null}``;
        ``provider_tenant`` for Entra ID, ``issuer_url`` for generic. The secret is stored encrypted and
        never shown again; register the answer's ``redirect_uri`` at the provider."""
        return self.identity_rpc.configure_sso(auth.to_dict(), tenant_id, body)

    @route("DELETE", "/api/v1/tenants/<tenant_id>/sso", summary="Remove single sign-on",
           tags=["single sign-on"], roles=SSO_CONFIGURERS, response=SsoRemovedSchema)
    def delete_sso(self, request, auth, tenant_id, **_):
        return self.identity_rpc.remove_sso(auth.to_dict(), tenant_id)

    # -- signing in ----------------------------------------------------------
    @route("POST", "/api/v1/sso/lookup", summary="Which single sign-on an address uses", tags=["single sign-on"],
           auth=False, body=SsoLookupSchema, response=SsoLookupOutSchema,
           errors={404: "`sso_not_configured`: that address's organisation signs in with passwords"})
    def sso_lookup(self, request, body, **_):
        """``{"email": "rivera@riverside.k12.example"}`` -> where to send the browser to sign in."""
        found = self.identity_rpc.sso_lookup(body)
        return {**found, "start_url": f"/api/v1/sso/{found['tenant_id']}/start"}

    @route("GET", "/api/v1/sso/<tenant_id>/start", summary="Start single sign-on (a browser redirect)",
           tags=["single sign-on"], auth=False, raw=True, status=302, content_type="text/html",
           errors={404: ErrorPage("No single sign-on for this organisation: a page that says so", "text/html"),
                   503: ErrorPage("The provider does not answer: a page that says so", "text/html"),
                   # The provider's own parameters can make an address longer than the web server
                   # reads (8 KB): it refuses it before the gateway sees anything.
                   414: ErrorPage("The address is longer than the server reads (8 KB): nothing of it was read", None)})
    def sso_start(self, request, tenant_id, **_):
        try:
            flow = self.identity_rpc.sso_begin(tenant_id)
        except Exception as exc:  # noqa: BLE001 - through the one table, as a page
            return _refused_page(exc, "GET", "/api/v1/sso/<tenant_id>/start")
        response = Response(status=302, headers={"Location": flow["authorization_url"]})
        response.headers["Cache-Control"] = "no-store"
        response.set_cookie(FLOW_COOKIE, _seal_flow({
            "tenant_id": tenant_id, "state": flow["state"], "nonce": flow["nonce"],
            "code_verifier": flow["code_verifier"], "expires": int(time.time()) + FLOW_SECONDS,
        }), max_age=FLOW_SECONDS, httponly=True, secure=True, samesite="Lax", path=FLOW_PATH)
        return response

    @route("GET", "/api/v1/sso/callback", summary="The provider's redirect back (a browser page)",
           tags=["single sign-on"], auth=False, raw=True, query=CallbackQuerySchema, content_type="text/html",
           errors={401: ErrorPage("Not signed in (state, ID token, email or account refused): a page saying why",
                                  "text/html"),
                   503: ErrorPage("The provider does not answer: a page that says so", "text/html"),
                   # The provider's own parameters can make an address longer than the web server
                   # reads (8 KB): it refuses it before the gateway sees anything.
                   414: ErrorPage("The address is longer than the server reads (8 KB): nothing of it was read", None)})
    def sso_callback(self, request, query, **_):
        """Register ``<public address>/api/v1/sso/callback`` as the redirect URI at the provider."""
        try:
            flow = _open_flow(request.cookies.get(FLOW_COOKIE))
            if query.get("error"):
                raise SsoRefused(f"The provider did not sign you in ({query['error'][:64]}).", code="sso_provider_refused")
            if not query.get("code") or not query.get("state"):
                raise BadRequest("The provider's answer has no code or state.", code="invalid_input")
            if not hmac.compare_digest(query["state"].encode(), flow["state"].encode()):
                raise SsoRefused("This sign-in was not started here. Start again from the sign-in page.",
                                 code="sso_state_mismatch")
            session = self.identity_rpc.sso_complete(flow["tenant_id"], query["code"], flow["code_verifier"],
                                                     flow["nonce"], client_ip=client_ip(request), issuer=query.get("iss"))
        except Exception as exc:  # noqa: BLE001 - through the one table, as a page
            return _refused_page(exc, "GET", "/api/v1/sso/callback")
        # A page, not a redirect: the Strict session cookie goes with a navigation that starts
        # here, not with the rest of a redirect chain that began at the provider.
        response = sso_page(200, "Signed in", f"Signed in as {session['user']['display_name']}.", "/")
        _set_session_cookies(response, session["token"])
        response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
        return response
