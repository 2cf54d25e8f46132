"""Sign-in, sessions, passwords, tenants, users, rosters and students.

Every handler is thin: it passes the caller's AuthContext and the validated
body to identity, which enforces scope (tenant isolation, least access).
"""
from __future__ import annotations

import base64

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from gateway.http import CSRF_COOKIE, SESSION_COOKIE, client_ip, csrf_token_for, json_response, route, session_token
from services.identity.schemas import (
    AcceptedSchema, LoginSchema, MeSchema, PasswordChangedSchema, PasswordChangeSchema,
    OneRosterOptionsSchema, OneRosterResultSchema, PasswordResetCompleteSchema, PasswordResetRequestSchema,
    RosterMappingOutSchema, RosterMappingSchema, RosterResultSchema, SessionSchema, SignedOutSchema,
    StaffAssignmentSchema, StudentDetailSchema, StudentListQuerySchema, StudentPageSchema,
    TenantInfoSchema, TenantListQuerySchema, TenantPageSchema, TenantSchema, TenantSettingsSchema,
    UserListQuerySchema, UserOutSchema, UserPageSchema, UserSchema, UserUpdateSchema,
)
from services.identity.exceptions import RosterRejected
from weintervene.auth import Role
from weintervene.config import settings
from weintervene.errors import BadRequest

USER_MANAGERS = (Role.OPERATOR, Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.PROGRAM_ADMIN)
SETTINGS_MANAGERS = USER_MANAGERS
STUDENT_VIEWERS = (Role.TEACHER, Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.PROGRAM_STAFF, Role.PROGRAM_ADMIN)
STAFF_ASSIGNERS = (Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.PROGRAM_ADMIN)
ROSTER_IMPORTERS = (Role.SCHOOL_ADMIN, Role.PROGRAM_ADMIN)
ONEROSTER_IMPORTERS = (Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN)
ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")
CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/vnd.ms-excel")


def _set_session_cookies(response: Response, token: str) -> None:
    # Secure even on http://127.0.0.1: browsers treat localhost as a secure context.
    secure = True
    max_age = settings().session_absolute_seconds
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, secure=secure, samesite="Strict", path="/")
    # Readable by our own script, which echoes it in X-CSRF-Token.
    response.set_cookie(CSRF_COOKIE, csrf_token_for(token), max_age=max_age, httponly=False, secure=secure, samesite="Strict", path="/")


def _csv_upload(request) -> str:
    """The request body (a CSV file) as base64 for the RPC; size checked first."""
    limit = settings().roster_max_bytes
    if request.content_length and request.content_length > limit:
        raise RequestEntityTooLarge()
    request.max_content_length = limit
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    if request.mimetype not in CSV_TYPES:
        raise BadRequest("Send the roster as text/csv.", code="unsupported_media_type")
    return base64.b64encode(raw).decode("ascii")


def _package_upload(request) -> dict[str, str]:
    """A OneRoster package as {file name: base64} for the RPC: a zip body, or a multipart
    form of one zip or the package's CSV files (a folder chosen in the browser)."""
    limit = settings().roster_max_bytes
    if request.content_length and request.content_length > limit:
        raise RequestEntityTooLarge()
    request.max_content_length = limit
    if request.mimetype == "multipart/form-data":
        files = {}
        for upload in request.files.getlist("files"):
            name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
            if name:
                files[name] = base64.b64encode(upload.read(limit + 1)).decode("ascii")
        if not files:
            raise BadRequest("Send the package's files in the form field files.", code="invalid_input")
        return files
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    if request.mimetype not in ZIP_TYPES:
        raise BadRequest("Send the package as application/zip (or multipart/form-data).", code="unsupported_media_type")
    return {"package.zip": base64.b64encode(raw).decode("ascii")}


class IdentityRoutes:
    # -- sessions ---------------------------------------------------------
    @route("POST", "/api/v1/sessions", summary="Sign in", tags=["sessions"], auth=False,
           body=LoginSchema, response=SessionSchema, status=201, raw=True,
           errors={401: "`invalid_credentials`: no active account with this email and password; "
                        "after a correct password only: `account_ended` (the school or program left "
                        "the platform) or `account_disabled` (an administrator disabled the account)",
                   403: "`password_sign_in_disabled`: this organisation signs in with single sign-on only",
                   429: "`login_throttled`: too many failed sign-ins for this account or address; see Retry-After"})
    def sign_in(self, request, body, **_):
        """Body ``{"email": "rivera@lincoln.example", "password": "…"}``; returns the bearer
        token and sets the session cookie (HttpOnly, Secure, SameSite=Strict)."""
        result = self.identity_rpc.login(body, client_ip=client_ip(request))
        response = json_response(result, 201)
        _set_session_cookies(response, result["token"])
        return response

    @route("DELETE", "/api/v1/sessions/current", summary="Sign out", tags=["sessions"], raw=True,
           response=SignedOutSchema)
    def sign_out(self, request, auth, **_):
        token, _from_cookie = session_token(request)
        # Forgotten here first: this gateway's next request with the token asks identity.
        self.session_cache.forget_token(token)
        ended = self.identity_rpc.logout(token)
        # A session from single sign-on: the provider's own sign-out, offered (not forced) to the user.
        response = json_response({"signed_out": True, "provider_sign_out_url": ended.get("provider_sign_out_url")})
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    @route("GET", "/api/v1/me", summary="The signed-in user", tags=["sessions"], response=MeSchema)
    def me(self, request, auth, **_):
        return auth.unsigned().to_dict()  # the signature is for the services, not the browser

    # -- passwords --------------------------------------------------------
    @route("POST", "/api/v1/me/password", summary="Change my password", tags=["sessions"],
           body=PasswordChangeSchema, response=PasswordChangedSchema)
    def change_password(self, request, auth, body, **_):
        """``{"current_password": "…", "new_password": "…"}``; every other session of yours ends."""
        result = self.identity_rpc.change_password(auth.to_dict(), body)
        self.session_cache.forget(user_ids=[auth.user_id])  # the other sessions ended
        return result

    @route("POST", "/api/v1/password-resets", summary="Email a password reset link", tags=["sessions"],
           auth=False, body=PasswordResetRequestSchema, response=AcceptedSchema, status=202)
    def request_password_reset(self, request, body, **_):
        """``{"email": "rivera@lincoln.example"}`` -> 202 whether or not the address has an account."""
        return self.identity_rpc.request_password_reset(body)

    @route("POST", "/api/v1/password-resets/complete", summary="Set a new password with a reset link",
           tags=["sessions"], auth=False, body=PasswordResetCompleteSchema, response=PasswordChangedSchema)
    def complete_password_reset(self, request, body, **_):
        """``{"token": "<from the link>", "new_password": "…"}``; the link works once, then ends."""
        return self.identity_rpc.complete_password_reset(body)

    # -- tenants ----------------------------------------------------------
    @route("GET", "/api/v1/tenants", summary="Tenants I can reach", tags=["tenants"],
           query=TenantListQuerySchema, response=TenantPageSchema)
    def list_tenants(self, request, auth, query, **_):
        """District admins: their district and schools; operators and auditors: all; others: their own."""
        return self.identity_rpc.list_tenants(auth.to_dict(), query)

    @route("POST", "/api/v1/tenants", summary="Create a tenant", tags=["tenants"],
           roles=(Role.OPERATOR,), body=TenantSchema, response=TenantInfoSchema, status=201)
    def create_tenant(self, request, auth, body, **_):
        return self.identity_rpc.create_tenant(auth.to_dict(), body)

    @route("GET", "/api/v1/tenants/<tenant_id>", summary="One tenant", tags=["tenants"], response=TenantInfoSchema)
    def get_tenant(self, request, auth, tenant_id, **_):
        return self.identity_rpc.get_tenant(auth.to_dict(), tenant_id)

    @route("PATCH", "/api/v1/tenants/<tenant_id>/settings", summary="Change a tenant's settings",
           tags=["tenants"], roles=SETTINGS_MANAGERS, body=TenantSettingsSchema, response=TenantInfoSchema)
    def update_tenant_settings(self, request, auth, body, tenant_id, **_):
        """``{"student_ids_enabled": false, "analytics_consent": true, "suppression_threshold": 10}``
        (any subset). Turning student IDs off erases the stored student numbers."""
        return self.identity_rpc.update_tenant_settings(auth.to_dict(), tenant_id, body)

    # -- users ------------------------------------------------------------
    @route("GET", "/api/v1/users", summary="Users I manage", tags=["users"], roles=USER_MANAGERS,
           query=UserListQuerySchema, response=UserPageSchema,
           errors={404: "`tenant_not_found`: the tenant is not one you manage (as for an unknown id)"})
    def list_users(self, request, auth, query, **_):
        return self.identity_rpc.list_users(auth.to_dict(), query)

    @route("POST", "/api/v1/users", summary="Create a user (invited by email)", tags=["users"],
           roles=USER_MANAGERS, body=UserSchema, response=UserOutSchema, status=201,
           errors={404: "`tenant_not_found`: the tenant is not one you manage (as for an unknown id)"})
    def create_user(self, request, auth, body, **_):
        """``{"tenant_id", "email", "display_name", "role"}``; the user gets an emailed link
        to choose a password. An operator invites only a new tenant's first administrator
        (403 ``tenant_has_administrator`` / ``tenant_needs_break_glass`` /
        ``tenant_accounts_are_the_tenants`` otherwise; see ``/api/v1/break-glass``)."""
        return self.identity_rpc.create_user(auth.to_dict(), body)

    @route("PATCH", "/api/v1/users/<user_id>", summary="Change a user's role, name or active flag",
           tags=["users"], roles=USER_MANAGERS, body=UserUpdateSchema, response=UserOutSchema)
    def update_user(self, request, auth, body, user_id, **_):
        """``{"is_active": false}`` disables the user and ends their sessions at once. For a
        tenant's user that is all an operator may send (403 ``operator_disable_only``)."""
        result = self.identity_rpc.update_user(auth.to_dict(), user_id, body)
        self.session_cache.forget(user_ids=[user_id])  # a new role or a disabled user: at once
        return result

    # -- rosters and students ---------------------------------------------
    @route("POST", "/api/v1/rosters/preview", summary="Preview a roster CSV (stores nothing)",
           tags=["rosters"], roles=ROSTER_IMPORTERS, response=RosterResultSchema, raw=True,
           request_content_type="text/csv")
    def preview_roster(self, request, auth, **_):
        """Body: the CSV file (``text/csv``, UTF-8). Says which columns will be dropped and
        which rows have errors, with row numbers (the header is row 1)."""
        return json_response(self.identity_rpc.preview_roster(auth.to_dict(), _csv_upload(request)))

    @route("POST", "/api/v1/rosters/import", summary="Import a roster CSV", tags=["rosters"],
           roles=ROSTER_IMPORTERS, response=RosterResultSchema, raw=True, request_content_type="text/csv")
    def import_roster(self, request, auth, **_):
        """Body: the CSV file. Columns outside the allow-list are dropped before storage; valid
        rows are applied in one transaction, invalid ones listed; re-importing updates."""
        return json_response(self.identity_rpc.import_roster(auth.to_dict(), _csv_upload(request)))

    @route("GET", "/api/v1/rosters/column-mapping", summary="The school's saved roster column mapping",
           tags=["rosters"], roles=ROSTER_IMPORTERS, response=RosterMappingOutSchema)
    def roster_column_mapping(self, request, auth, **_):
        """``{"mapping": {"Student ID": "student_key"}, "fields": [the roster's fields]}``."""
        return self.identity_rpc.roster_column_mapping(auth.to_dict())

    @route("PUT", "/api/v1/rosters/column-mapping", summary="Save the school's roster column mapping",
           tags=["rosters"], roles=ROSTER_IMPORTERS, body=RosterMappingSchema, response=RosterMappingOutSchema)
    def save_roster_column_mapping(self, request, auth, body, **_):
        """Body ``{"mapping": {"Student ID": "student_key", "Home Address": null}}``: each of the
        SIS's headers -> a roster field (null drops it). Previews and imports read through it."""
        return self.identity_rpc.save_roster_column_mapping(auth.to_dict(), body)

    @route("POST", "/api/v1/rosters/oneroster/preview", summary="Preview a OneRoster 1.2 CSV package (stores nothing)",
           tags=["rosters"], roles=ONEROSTER_IMPORTERS, query=OneRosterOptionsSchema, response=OneRosterResultSchema,
           request_content_type="application/zip", timeout=120, raw=True)
    def preview_oneroster(self, request, auth, query, **_):
        """Body: the package zip (or multipart ``files``: the zip or its CSV files). Says what an
        import would do per school, which files and columns are not read, and every error by
        file and row. Query ``contacts_authorised=true``, ``birth_dates=true`` as for the import."""
        return json_response(self.identity_rpc.preview_oneroster(auth.to_dict(), _package_upload(request), query))

    @route("POST", "/api/v1/rosters/oneroster/import", summary="Import a OneRoster 1.2 CSV package",
           tags=["rosters"], roles=ONEROSTER_IMPORTERS, query=OneRosterOptionsSchema, response=OneRosterResultSchema,
           request_content_type="application/zip", timeout=120, raw=True,
           errors={400: "`roster_package_invalid`: the package has errors (listed by file and row in "
                        "`details.errors`); nothing was imported"})
    def import_oneroster(self, request, auth, query, **_):
        """The whole package in one transaction, or nothing. ``contacts_authorised=true`` records the
        administrator's confirmation that the school's records authorise the package's family
        contacts (otherwise they are imported not authorised); ``birth_dates=true`` reads
        demographics.csv's birthDate and nothing else of it."""
        result = self.identity_rpc.import_oneroster(auth.to_dict(), _package_upload(request), query)
        if not result.get("imported"):
            # Raised here, not in identity: nameko would carry the report's numbers as strings.
            raise RosterRejected(f"The package has {len(result.get('errors') or [])} error(s); nothing was imported.",
                                 code="roster_package_invalid", details=result)
        return json_response(result)

    @route("GET", "/api/v1/students", summary="Students I may see", tags=["students"],
           roles=STUDENT_VIEWERS, query=StudentListQuerySchema, response=StudentPageSchema)
    def list_students(self, request, auth, query, **_):
        """Teachers and program staff: the students they serve; admins: their school's or
        program's; district admins: their schools'. ``?search=diego&page=1``."""
        return self.identity_rpc.list_students(auth.to_dict(), query)

    @route("GET", "/api/v1/students/<student_id>", summary="A student with contacts", tags=["students"],
           roles=STUDENT_VIEWERS, response=StudentDetailSchema)
    def get_student(self, request, auth, student_id, **_):
        return self.identity_rpc.get_student(auth.to_dict(), student_id)

    @route("PUT", "/api/v1/students/<student_id>/staff", summary="Set the staff serving a student",
           tags=["students"], roles=STAFF_ASSIGNERS, body=StaffAssignmentSchema, response=StudentDetailSchema)
    def set_student_staff(self, request, auth, body, student_id, **_):
        """``{"user_ids": [...]}`` replaces the list; each must be staff of the student's school."""
        return self.identity_rpc.set_student_staff(auth.to_dict(), student_id, body)
