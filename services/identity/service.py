"""Identity's RPC entrypoints: thin, each delegating to accounts / tenants /
students / rosters / erasure.

RPCs taking ``auth`` are called by the gateway on a user's behalf (the
AuthContext dict identity itself issued); the others (tenant_info,
list_tenants_in, user_info, fence_subject) are for services.
"""
from __future__ import annotations

import base64
import binascii
from datetime import timedelta

from nameko.events import SERVICE_POOL
from nameko.exceptions import serialize
from nameko.timer import timer
from sqlalchemy import select

from services.identity import (
    access_log, accounts, break_glass, conflicts, erasure, mailing, notices, oneroster, rosters, single_sign_on,
    students, tenants,
)
from services.identity.break_glass_schemas import (
    BreakGlassCreateSchema, BreakGlassDecisionSchema, BreakGlassListQuerySchema,
)
from services.identity.dependencies import identity_database
from services.identity.models import DeletionReceipt, OutboxMessage, Tenant
from services.identity.single_sign_on_schemas import SsoConfigurationSchema, SsoLookupSchema, SsoSessionSchema
from services.identity.notice_schemas import (
    AcknowledgementCreateSchema, IncidentNoticeCreateSchema, PolicyVersionCreateSchema,
)
from services.identity.schemas import (
    AccessLogQuerySchema, ConflictQuerySchema, LoginSchema, OneRosterOptionsSchema, RosterMappingSchema, PasswordChangeSchema, PasswordResetCompleteSchema, PasswordResetRequestSchema,
    SessionSchema, StaffAssignmentSchema, StudentListQuerySchema, TenantListQuerySchema,
    TenantIdsSchema, TenantSchema, TenantSettingsSchema, UserListQuerySchema, UserSchema, UserUpdateSchema,
)
from weintervene.auth import AuthContext, Role
from weintervene.contracts import PLATFORM_ACTION
from weintervene.db import utcnow
from weintervene.deletion import DeletionParticipant
from weintervene.entrypoints import rpc
from weintervene.config import settings
from weintervene.errors import BadRequest, NotFound, PayloadTooLarge, Unauthorized, WeInterveneError
from weintervene.export import DataExporter
from weintervene.messaging import OutboxRelay, ReliablePublisher, event_handler, relay_outbox
from weintervene.observability import EntrypointMetrics, HealthCheck, OutboxBacklogGauges
from weintervene.validation import load


# referrals batches at most its worker count (32) of shares; a few more is still a bounded call.
MAX_SHARE_CONTEXTS = 64


def _auth(auth) -> AuthContext:
    return AuthContext.from_dict(auth)


class IdentityService(DataExporter, HealthCheck, DeletionParticipant, OutboxRelay, OutboxBacklogGauges):
    name = "identity"

    db = identity_database()
    metrics = EntrypointMetrics()
    events = ReliablePublisher()
    outbox_model = OutboxMessage
    receipt_model = DeletionReceipt
    # Names, dates of birth, addresses, client addresses, raw subject ids (erasure marks them).
    tables_with_personal_data = ("student", "family_contact", "user_account", "login_attempt", "subject_fence",
                                 "mail_job", "account_conflict", "access_log_entry", "break_glass_request",
                                 "sis_enrollment",  # a student's SIS id (OneRoster)
                                 "sso_link")

    @timer(interval=60.0)
    def forget_session_notices(self):
        """Published ``sessions_ended`` events go after a minute (see accounts.forget_session_notices)."""
        if accounts.forget_session_notices(self.db, utcnow() - timedelta(minutes=1)):
            self.db.commit()

    @mailing.mail_trigger
    def send_mail(self):
        """Identity's mail, after the answers: resets, invitations, access notices (see mailing)."""
        return mailing.deliver_due(self.db)

    def _publish_now(self):
        # Sessions that just ended (``sessions_ended``) reach the gateways before this
        # answer reaches the caller, rather than at the relay's next turn.
        relay_outbox(self.db, OutboxMessage, self.events, self.name)

    # -- sessions ---------------------------------------------------------
    @rpc
    def login(self, credentials, client_ip="unknown"):
        """{"email", "password"} -> {"token", "expires_at", "user"}; InvalidCredentials / LoginThrottled."""
        data = load(LoginSchema(), credentials)
        token, session, user = accounts.login(self.db, data["email"], data["password"], client_ip)
        return SessionSchema().dump({
            "token": token,
            "expires_at": session.expires_at,
            "user": accounts.auth_context(user, session.id).to_dict(),
        })

    @rpc
    def authenticate(self, token):
        """A session token -> the caller's AuthContext as a dict, with ``session_valid_until``
        (ISO instant the session ends unless used again); SessionExpired otherwise."""
        caller, valid_until = accounts.check_session(self.db, token)
        return {**caller.to_dict(), "session_valid_until": valid_until.isoformat()}

    @rpc
    def logout(self, token):
        """-> {"signed_out": true, "provider_sign_out_url": None, or the provider's end-session
        URL when the session came from single sign-on and the provider has one}."""
        configuration_id = accounts.logout(self.db, token)
        self._publish_now()
        return {"signed_out": True,
                "provider_sign_out_url": single_sign_on.end_session_url(self.db, configuration_id)}

    # -- single sign-on (services.identity.single_sign_on) ----------------------
    @rpc
    def sso_configuration(self, auth, tenant_id):
        """The tenant's single sign-on as its administrator sees it (never the secret)."""
        return single_sign_on.get_configuration(self.db, _auth(auth), tenant_id)

    @rpc
    def configure_sso(self, auth, tenant_id, data):
        """{"preset": "google", "client_id", "client_secret", "allowed_domains": [...],
        "password_sign_in_allowed": false, "jit_role": "teacher", "jit_tenant_id": …} -> the configuration."""
        values = load(SsoConfigurationSchema(), data)
        if values.get("jit_tenant_id") is not None:
            values["jit_tenant_id"] = str(values["jit_tenant_id"])
        return single_sign_on.configure(self.db, _auth(auth), tenant_id, values)

    @rpc
    def remove_sso(self, auth, tenant_id):
        return single_sign_on.remove_configuration(self.db, _auth(auth), tenant_id)

    @rpc
    def sso_lookup(self, data):
        """{"email"} -> {"tenant_id", "provider_name"} of the tenant whose provider signs that domain in."""
        return single_sign_on.lookup(self.db, load(SsoLookupSchema(), data)["email"])

    @rpc
    def sso_begin(self, tenant_id):
        """The gateway only: {"authorization_url", "state", "nonce", "code_verifier", "provider_name"}."""
        return single_sign_on.begin(self.db, tenant_id, single_sign_on.callback_url())

    @rpc
    def sso_complete(self, tenant_id, code, code_verifier, nonce, client_ip="unknown", issuer=None):
        """The gateway only, from the provider's callback: -> {"token", "expires_at", "user"}
        (a session as ``login``'s); SsoRefused / SsoProviderUnavailable otherwise."""
        if not all(isinstance(v, str) and 0 < len(v) <= 2048 for v in (code, code_verifier, nonce)) or not (
                issuer is None or isinstance(issuer, str)):
            raise BadRequest("The sign-in callback is incomplete.", code="invalid_input")
        token, session, user = single_sign_on.complete(self.db, tenant_id, code, code_verifier, nonce,
                                                       single_sign_on.callback_url(), client_ip, issuer)
        self._publish_now()  # a just-in-time account's access notice is staged; nothing to relay otherwise
        return SsoSessionSchema().dump({
            "token": token, "expires_at": session.expires_at,
            "user": accounts.auth_context(user, session.id).to_dict(),
        })

    # -- passwords --------------------------------------------------------
    @rpc
    def change_password(self, auth, data):
        """{"current_password", "new_password"} -> {"changed": true, "other_sessions_ended": 2}."""
        values = load(PasswordChangeSchema(), data)
        ended = accounts.change_password(self.db, _auth(auth), values["current_password"], values["new_password"])
        self._publish_now()
        return {"changed": True, "other_sessions_ended": ended}

    @rpc
    def request_password_reset(self, data):
        """{"email"} -> {"accepted": true} whether or not the account exists (no enumeration)."""
        values = load(PasswordResetRequestSchema(), data)
        accounts.request_reset(self.db, values["email"])
        return {"accepted": True, "message": "If that address has an account, a reset link is on its way."}

    @rpc
    def complete_password_reset(self, data):
        """{"token", "new_password"} -> {"changed": true}; InvalidResetToken when used or expired."""
        values = load(PasswordResetCompleteSchema(), data)
        accounts.complete_reset(self.db, values["token"], values["new_password"])
        self._publish_now()
        return {"changed": True, "other_sessions_ended": 0}

    # -- tenants ----------------------------------------------------------
    @rpc
    def tenant_info(self, tenant_id):
        """Tenant facts for services (no auth: not personal data).

        Example: tenant_info(lincoln_id) -> {"id": …, "kind": "school", "name": "Lincoln Middle",
        "district_id": riverside_id, "student_ids_enabled": true, "suppression_threshold": 10, …}
        """
        return tenants.tenant_info(tenants.get_tenant_or_404(self.db, tenant_id))

    @rpc
    def tenants_info(self, tenant_ids):
        """``tenant_info`` of many tenants in one call (analytics' operator views):
        {id: tenant_info}; unknown ids are left out. At most 1,000 ids.

        Example: tenants_info([lincoln_id, adams_id, unknown_id]) ->
        {lincoln_id: {"id": lincoln_id, "kind": "school", …}, adams_id: {…}}
        """
        ids = load(TenantIdsSchema(), {"tenant_ids": tenant_ids})["tenant_ids"]
        return {t.id: tenants.tenant_info(t) for t in tenants.get_tenants(self.db, ids)}

    @rpc
    def list_tenants_in(self, tenant_id):
        """A district -> [the district, its schools…]; any other tenant -> [that tenant]."""
        return [tenants.tenant_info(t) for t in tenants.tenants_in(self.db, tenant_id)]

    @rpc
    def list_tenants(self, auth, query=None):
        """The tenants the caller reaches, paged: {"items": [tenant_info…], "total", "page", "per_page"}."""
        q = load(TenantListQuerySchema(), query or {})
        return tenants.list_tenants(self.db, _auth(auth), q["kind"], q["page"], q["per_page"])

    @rpc
    def get_tenant(self, auth, tenant_id):
        return tenants.tenant_info(tenants.scoped_tenant(self.db, _auth(auth), tenant_id))

    @rpc
    def update_tenant_settings(self, auth, tenant_id, data):
        """{"student_ids_enabled": false} -> tenant_info (turning IDs off erases stored numbers)."""
        values = load(TenantSettingsSchema(), data)
        return tenants.update_settings(self.db, _auth(auth), tenant_id, values)

    @rpc
    def create_tenant(self, auth, data):
        """Operators only: {"kind": "school", "name": "Lincoln Middle", "parent_id": district} -> tenant."""
        _auth(auth).require(Role.OPERATOR)
        values = load(TenantSchema(), data)
        if values.get("parent_id") is not None:
            values["parent_id"] = str(values["parent_id"])
            parent = self.db.get(Tenant, values["parent_id"])
            if parent is None or parent.kind != "district":
                raise NotFound("No such district.", code="district_not_found")
            if values["kind"] != "school":
                raise BadRequest("Only schools belong to a district.", code="invalid_input",
                                 details={"parent_id": ["Only a school has a district."]})
        tenant = Tenant(**values)
        self.db.add(tenant)
        self.db.flush()
        access_log.record(self.db, _auth(auth), tenant, "tenant_created", f"Created the {tenant.kind} {tenant.name}")
        self.db.commit()
        return tenants.tenant_info(tenant)

    # -- users ------------------------------------------------------------
    @rpc
    def bootstrap_user(self, data, password):
        """Operators' CLI and the demo loader only (trusted broker access): create a user with a password.

        Without a tenant id the user joins the platform tenant, created on first use. Trusted:
        the operators' rules (staff_rules) do not apply, a tenant's kind still decides its roles.
        Never exposed through the gateway.
        Example: bootstrap_user({"email": "ops@x.org", "display_name": "Ops",
        "role": "operator", "tenant_id": None}, "a long passphrase") -> the user.
        """
        data = dict(data)
        if not data.get("tenant_id"):
            data["tenant_id"] = self._platform_tenant().id
        operator = AuthContext(user_id="bootstrap", tenant_id=data["tenant_id"], role=Role.OPERATOR)
        user, invited = tenants.create_user(self.db, operator, load(UserSchema(), data), password, trusted=True)
        return {**tenants.user_dict(user), "invited": invited}

    @rpc
    def user_exists(self, email):
        """Operators' CLI and the demo loader only (trusted broker access, like bootstrap_user):
        whether an account has this email. Never exposed through the gateway.

        Example: user_exists("rivera@lincoln.example") -> True
        """
        from services.identity.models import User

        return self.db.scalar(select(User.id).where(User.email == accounts.normalise_email(email))) is not None

    def _platform_tenant(self) -> Tenant:
        tenant = self.db.scalar(select(Tenant).where(Tenant.kind == "platform"))
        if tenant is None:
            tenant = Tenant(kind="platform", name="WeIntervene platform")
            self.db.add(tenant)
            self.db.commit()
        return tenant

    @rpc
    def create_user(self, auth, data):
        """{"tenant_id", "email", "display_name", "role"} -> the user, invited: an email with a
        one-time link to choose a password (nobody else sets it). An operator creates only a
        tenant's first administrator (OperatorRefused ``tenant_has_administrator`` after that)."""
        values = load(UserSchema(), data)
        user, invited = tenants.create_user(self.db, _auth(auth), values)
        return {**tenants.user_dict(user), "invited": invited}

    @rpc
    def list_users(self, auth, query=None):
        q = load(UserListQuerySchema(), query or {})
        tenant_id = str(q["tenant_id"]) if q["tenant_id"] else None
        return tenants.list_users(self.db, _auth(auth), tenant_id, q["search"], q["page"], q["per_page"])

    @rpc
    def update_user(self, auth, user_id, data):
        """{"is_active": false} -> the user (their sessions end at once)."""
        values = load(UserUpdateSchema(), data)
        user = tenants.update_user(self.db, _auth(auth), user_id, values)
        self._publish_now()
        return tenants.user_dict(user)

    @rpc
    def names_for_audit(self, user_ids, tenant_ids):
        """For retention's auditor pages: staff accounts' names and roles, tenants' names.

        Staff and tenants only, never a student or a contact; ids that are unknown (an account
        or tenant deleted since) are left out, and the page says "account removed".

        Example: names_for_audit([admin_id], [lincoln_id])
        -> {"users": {admin_id: {"display_name": "Ms. Patel", "role": "school_admin"}},
            "tenants": {lincoln_id: "Lincoln Middle"}}
        """
        return tenants.names_for_audit(self.db, user_ids, tenant_ids)

    @rpc
    def user_info(self, user_id):
        """For services (reminders): user_info(id) -> {id, tenant_id, display_name, email, role}."""
        from services.identity.models import User

        user = self.db.get(User, str(user_id))
        if user is None:
            raise NotFound("No such user.", code="user_not_found")
        return {"id": user.id, "tenant_id": user.tenant_id, "display_name": user.display_name,
                "email": user.email, "role": user.role}

    # -- break-glass recovery ----------------------------------------------
    @rpc
    def request_break_glass(self, auth, data):
        """Operators: {"tenant_id", "email", "display_name", "reason", "action": "invite_administrator"}
        -> the request, pending until the tenant's administrators (or, with none, a second
        operator) approve it; the tenant's administrators are emailed."""
        return break_glass.request_recovery(self.db, _auth(auth), load(BreakGlassCreateSchema(), data))

    @rpc
    def list_break_glass(self, auth, query=None):
        """Operators: every request; tenant admins: their tenants'. {"items", "total", "page", "per_page"}."""
        q = load(BreakGlassListQuerySchema(), query or {})
        return break_glass.list_requests(self.db, _auth(auth), q["status"], q["tenant_id"], q["page"], q["per_page"])

    @rpc
    def approve_break_glass(self, auth, request_id, data=None):
        """{"note": "Confirmed by phone"} -> the request, approved; its invitation is mailed now."""
        note = load(BreakGlassDecisionSchema(), data or {})["note"]
        return break_glass.approve(self.db, _auth(auth), request_id, note)

    @rpc
    def refuse_break_glass(self, auth, request_id, data=None):
        """{"note": "We did not ask for this"} -> the request, refused; nothing takes effect."""
        note = load(BreakGlassDecisionSchema(), data or {})["note"]
        return break_glass.refuse(self.db, _auth(auth), request_id, note)

    # -- rosters and students ---------------------------------------------
    @rpc
    def preview_roster(self, auth, content_b64):
        """The CSV file (base64) -> what an import would do; stores nothing."""
        return rosters.import_roster(self.db, _auth(auth), _decode_upload(content_b64), preview=True)

    @rpc
    def import_roster(self, auth, content_b64):
        """The CSV file (base64) -> {columns_kept, columns_dropped, created, updated, unchanged,
        applied_rows, skipped_rows, errors: [{row, column, message}]} in one transaction."""
        return rosters.import_roster(self.db, _auth(auth), _decode_upload(content_b64), preview=False)

    @rpc
    def roster_column_mapping(self, auth):
        """The school's saved mapping of its SIS's headers to the roster's fields.

        Example: -> {"mapping": {"Student ID": "student_key"}, "fields": ["student_key", …]}
        """
        return rosters.get_mapping(self.db, _auth(auth))

    @rpc
    def save_roster_column_mapping(self, auth, data):
        """{"mapping": {"Student ID": "student_key", "Nickname": null}} -> the saved mapping
        (null: drop the column). Later previews and imports of the school read headers through it."""
        return rosters.save_mapping(self.db, _auth(auth), load(RosterMappingSchema(), data)["mapping"])

    @rpc
    def preview_oneroster(self, auth, files, options=None):
        """A OneRoster 1.2 CSV package ({file name: base64}: one zip, or its CSV files) -> what an
        import would do, errors by file and row; stores nothing."""
        return self._oneroster(auth, files, options, preview=True)

    @rpc
    def import_oneroster(self, auth, files, options=None):
        """The same, applied in one transaction; any error: nothing applied (``imported`` and
        ``can_import`` false, the errors listed; the gateway answers that 400). ``options``:
        {"contacts_authorised": true (the administrator confirms the school's records authorise
        the package's family contacts), "birth_dates": true (read demographics.csv's birthDate)}."""
        return self._oneroster(auth, files, options, preview=False)

    def _oneroster(self, auth, files, options, preview):
        values = load(OneRosterOptionsSchema(), options or {})
        if not isinstance(files, dict) or not 1 <= len(files) <= 50:
            raise BadRequest("files must be an object of 1 to 50 files.", code="invalid_input")
        total = 0
        decoded = {}
        for name, content in files.items():
            decoded[str(name)[:200]] = data = _decode_upload(content)
            total += len(data)
        if total > settings().roster_max_bytes:
            raise PayloadTooLarge(f"The package is larger than {settings().roster_max_bytes} bytes.", code="roster_too_large")
        package = oneroster.read_package(oneroster.files_of_upload(decoded), birth_dates=values["birth_dates"])
        return oneroster.import_package(self.db, _auth(auth), package, preview=preview,
                                        contacts_authorised=values["contacts_authorised"])

    @rpc
    def list_students(self, auth, query=None):
        q = load(StudentListQuerySchema(), query or {})
        tenant_id = str(q["tenant_id"]) if q["tenant_id"] else None
        return students.list_students(self.db, _auth(auth), q["search"], tenant_id, q["page"], q["per_page"])

    @rpc
    def get_student(self, auth, student_id):
        """A student the caller may see, with contacts and serving staff."""
        return students.get_student(self.db, _auth(auth), student_id)

    @rpc
    def set_student_staff(self, auth, student_id, data):
        """{"user_ids": [...]} replaces the staff serving the student (admins)."""
        values = load(StaffAssignmentSchema(), data)
        return students.set_staff(self.db, _auth(auth), student_id, values["user_ids"])

    @rpc
    def check_student_access(self, auth, student_id):
        """{student_id, tenant_id, district_id, is_adult, first_name} when the caller may act
        for the student; StudentForbidden / StudentNotFound / SubjectFenced otherwise."""
        return students.check_access(self.db, _auth(auth), student_id)

    @rpc
    def delivery_contacts(self, sharer, student_id, contact_ids):
        """[{id, name, email, mobile, preferred_language, authorised}] of the named authorised
        contacts (an adult student may be named by their own id); Forbidden otherwise.

        For referrals' delivery (a timer, long after the sharer's request): ``sharer`` is the
        context referrals recorded with the share, not a signed one, so identity re-checks the
        sharer's access as of now. Only referrals' broker credential may call this
        (``weintervene.broker``'s topic permissions), which is why it is not named ``auth``.
        """
        if not isinstance(contact_ids, list) or len(contact_ids) > 50:
            raise BadRequest("contact_ids must be a list of at most 50 ids.", code="invalid_input")
        return students.delivery_contacts(self.db, _auth(sharer), student_id, contact_ids)

    @rpc
    def share_context(self, auth, student_id, contact_ids, tenant_ids=()):
        """Everything a share needs from identity, in one round trip.

        Example: share_context(auth, diego_id, [rosa_id], [program_id]) ->
        {"student": {student_id, tenant_id, district_id, is_adult, first_name},
         "contacts": [{id, name, email, mobile, preferred_language, authorised}],
         "tenants": {program_id: tenant_info}}; the refusals of check_student_access and
        delivery_contacts otherwise. ``tenants`` holds those of ``tenant_ids`` that exist.
        """
        _check_share_lists(contact_ids, tenant_ids)
        context = students.share_context(self.db, _auth(auth), student_id, contact_ids)
        return {**context, "tenants": tenants.tenant_infos(self.db, tenant_ids)}

    @rpc(signed_contexts=lambda args, kwargs: [r.get("auth") for r in (args[0] if args else kwargs["requests"])])
    def share_contexts(self, requests):
        """``share_context`` for several shares in one round trip: referrals writes the shares
        that arrive together as one batch. Each share is checked in full on its own; the
        answers come in order, each ``{"context": …}`` or ``{"error": …}`` (that share's
        refusal, serialised as nameko sends an error), so one share's refusal is only its own.
        The batch is read in one statement (see ``students.share_contexts``).

        Example: share_contexts([{"auth": auth, "student_id": diego_id, "contact_ids": [rosa_id],
        "tenant_ids": []}]) -> [{"context": {"student": {…}, "contacts": […], "tenants": {}}}]
        """
        if (not isinstance(requests, list) or not 1 <= len(requests) <= MAX_SHARE_CONTEXTS
                or not all(isinstance(r, dict) for r in requests)):
            raise BadRequest(f"requests must be a list of 1 to {MAX_SHARE_CONTEXTS} objects.", code="invalid_input")
        answers: list = [None] * len(requests)
        checks, placed = [], []
        for n, request in enumerate(requests):
            # What share_context refuses before it reads anything, in its order.
            try:
                contact_ids, tenant_ids = request.get("contact_ids"), request.get("tenant_ids", ())
                _check_share_lists(contact_ids, tenant_ids)
                checks.append(students.ShareCheck(_auth(request.get("auth")), request.get("student_id"),
                                                  contact_ids, tenant_ids))
                placed.append(n)
            except WeInterveneError as refused:
                answers[n] = {"error": serialize(refused)}
        for n, result in zip(placed, students.share_contexts(self.db, checks)):
            answers[n] = {"error": serialize(result)} if isinstance(result, Exception) else {"context": result}
        return answers

    # -- deletion ---------------------------------------------------------
    @rpc
    def fence_subject(self, request_id, scope, tenant_id, subject_id, requested_by=None):
        """Retention, before dispatching a deletion: refuse new data about the subject.
        ``requested_by`` (the requester's user id): a platform account's request is
        recorded in the tenant's access log, and its notices staged, with the new fence.

        Example: fence_subject(req, "student", school_id, diego_id, admin_id) -> {"fenced": true}
        """
        fenced = erasure.fence(self.db, request_id, scope, tenant_id, subject_id, requested_by)
        self._publish_now()
        return fenced

    @rpc
    def left_students(self, tenant_id, older_than):
        """Retention's ``left_students`` policies only (trusted broker access): the students of
        the tenant (a district: and its schools) a bulk roster import marked left before
        ``older_than`` (ISO instant), not already being deleted.

        Example: left_students(lincoln_id, "2026-09-01T00:00:00+00:00") -> [{"id": …, "tenant_id": lincoln_id}]
        """
        return oneroster.left_before(self.db, str(tenant_id), older_than)

    def delete_for(self, request):
        return erasure.delete_for(self.db, request)

    # -- access transparency ------------------------------------------------
    @event_handler("retention", PLATFORM_ACTION, handler_type=SERVICE_POOL, reliable_delivery=True)
    def on_retention_platform_action(self, payload):
        """Retention reports an operator's action on a tenant (its outbox; at least once)."""
        return access_log.apply_report(self.db, payload, "retention")

    @rpc
    def list_access_log(self, auth, query=None):
        """Tenant admins: what platform accounts did to their tenant (a district admin: and
        its schools), newest first. Example: -> {"items": [{"action": "user_created",
        "description": "Created the school_admin account Ana Ruiz", "actor_name": "Ops",
        "actor_role": "operator", "occurred_at": "…", …}], "page": 1, "per_page": 50, "total": 1}
        """
        q = load(AccessLogQuerySchema(), query or {})
        return access_log.list_entries(self.db, _auth(auth), q["tenant_id"], q["action"], q["page"], q["per_page"])

    @rpc
    def access_log_csv(self, auth, query=None):
        """The same entries (every page) as CSV text. Example: -> "occurred_at,tenant_id,…\r\n…"."""
        q = load(AccessLogQuerySchema(), query or {})
        return access_log.entries_csv(self.db, _auth(auth), q["tenant_id"], q["action"])

    @rpc
    def list_account_conflicts(self, auth, query=None):
        """Operators: addresses tenant admins asked for that another tenant's account has.
        Example: -> {"items": [{"email": "ana@x.example", "tenant_name": "Lincoln", "role": "teacher", …}], …}"""
        q = load(ConflictQuerySchema(), query or {})
        return conflicts.list_conflicts(self.db, _auth(auth), q["page"], q["per_page"])

    # -- policy versions and incident notices --------------------------------
    @rpc
    def current_notices(self, auth=None):
        """Everyone (auth None for a visitor): the current policy, the incident notices in force,
        and whether the caller acknowledged the policy.

        Example: current_notices(None) -> {"policy": {"version": "5b0f…", "last_updated":
        "2026-11-01", "summary": "…"}, "incidents": [], "acknowledged": None}
        """
        return notices.current(self.db, _auth(auth) if auth else None)

    @rpc
    def web_boot(self, token=None):
        """The gateway's web app shell, in one round trip: who holds ``token`` (what
        ``authenticate`` answers, or None for no or an ended session) and ``current_notices``
        for them.

        Example: web_boot("tok…") -> {"me": {"user_id": …, "role": "teacher", …},
        "notices": {"policy": {…}, "incidents": [], "acknowledged": False}}
        """
        auth = None
        if token:
            try:
                auth = accounts.authenticate(self.db, token)
            except Unauthorized:
                auth = None
        return {"me": auth.to_dict() if auth else None, "notices": notices.current(self.db, auth)}

    @rpc
    def publish_policy_version(self, auth, data):
        """Operators: {"last_updated": "2026-12-01", "summary": "…"} -> the version, now the current one."""
        return notices.publish_policy(self.db, _auth(auth), load(PolicyVersionCreateSchema(), data))

    @rpc
    def list_policy_versions(self, auth):
        """Operators: {"items": [version…]}, newest first."""
        return notices.list_policies(self.db, _auth(auth))

    @rpc
    def policy_acknowledgement(self, auth):
        """-> {"version": "5b0f…", "last_updated": "2026-11-01", "acknowledged": false, "acknowledged_at": null}."""
        return notices.acknowledgement(self.db, _auth(auth))

    @rpc
    def acknowledge_policy(self, auth, data):
        """{"version": "5b0f…"} (the current version's id) -> the caller's acknowledgement."""
        return notices.acknowledge(self.db, _auth(auth), load(AcknowledgementCreateSchema(), data)["version"])

    @rpc
    def post_incident_notice(self, auth, data):
        """Operators: {"message": "Sign-in is slow", "severity": "warning", "ends_at": null} -> the notice."""
        return notices.post_notice(self.db, _auth(auth), load(IncidentNoticeCreateSchema(), data))

    @rpc
    def end_incident_notice(self, auth, notice_id):
        return notices.end_notice(self.db, _auth(auth), notice_id)

    @rpc
    def list_incident_notices(self, auth):
        """Operators: {"items": [notice…]}, newest first, ended ones too."""
        return notices.list_notices(self.db, _auth(auth))


def _check_share_lists(contact_ids, tenant_ids) -> None:
    """A share's lists of contacts and tenants, or BadRequest (before anything is read)."""
    if not isinstance(contact_ids, list) or len(contact_ids) > 50:
        raise BadRequest("contact_ids must be a list of at most 50 ids.", code="invalid_input")
    if not isinstance(tenant_ids, (list, tuple)) or len(tenant_ids) > 50:
        raise BadRequest("tenant_ids must be a list of at most 50 ids.", code="invalid_input")


def _decode_upload(content_b64) -> bytes:
    if not isinstance(content_b64, str):
        raise BadRequest("The file must be sent base64-encoded.", code="invalid_input")
    try:
        return base64.b64decode(content_b64, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("The file must be sent base64-encoded.", code="invalid_input") from None
