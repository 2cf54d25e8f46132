"""Sign-in, sessions, the current user, tenants and users."""
from __future__ import annotations

from werkzeug.wrappers import Response

from gateway.http import CSRF_COOKIE, SESSION_COOKIE, client_ip, csrf_token_for, json_response, route, session_token
from services.identity.schemas import LoginSchema, MeSchema, SessionSchema, TenantSchema, UserSchema
from weintervene.auth import Role
from weintervene.config import settings


def _set_session_cookies(response: Response, token: str) -> None:
    # Secure even on http://127.0.0.1: browsers treat localhost as a secure context.
    secure = True
    max_age = settings().session_absolute_seconds
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, secure=secure, samesite="Strict", path="/")
    # Readable by our own script, which echoes it in X-CSRF-Token.
    response.set_cookie(CSRF_COOKIE, csrf_token_for(token), max_age=max_age, httponly=False, secure=secure, samesite="Strict", path="/")


class IdentityRoutes:
    @route("POST", "/api/v1/sessions", summary="Sign in", tags=["sessions"], auth=False,
           body=LoginSchema, response=SessionSchema, status=201, raw=True)
    def sign_in(self, request, body, **_):
        """Body ``{"email": "rivera@lincoln.example", "password": "…"}``; returns the bearer
        token and sets the session cookie (HttpOnly, Secure, SameSite=Strict)."""
        result = self.identity_rpc.login(body, client_ip=client_ip(request))
        response = json_response(result, 201)
        _set_session_cookies(response, result["token"])
        return response

    @route("DELETE", "/api/v1/sessions/current", summary="Sign out", tags=["sessions"], raw=True)
    def sign_out(self, request, auth, **_):
        token, _from_cookie = session_token(request)
        self.identity_rpc.logout(token)
        response = json_response({"signed_out": True})
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    @route("GET", "/api/v1/me", summary="The signed-in user", tags=["sessions"], response=MeSchema)
    def me(self, request, auth, **_):
        return auth.to_dict()

    @route("POST", "/api/v1/tenants", summary="Create a tenant", tags=["tenants"],
           roles=(Role.OPERATOR,), body=TenantSchema, response=TenantSchema, status=201)
    def create_tenant(self, request, auth, body, **_):
        return self.identity_rpc.create_tenant(auth.to_dict(), body)

    @route("POST", "/api/v1/users", summary="Create a user", tags=["users"],
           roles=(Role.OPERATOR, Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.PROGRAM_ADMIN),
           body=UserSchema, response=UserSchema, status=201)
    def create_user(self, request, auth, body, **_):
        return self.identity_rpc.create_user(auth.to_dict(), body)
