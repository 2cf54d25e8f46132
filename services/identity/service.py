"""Identity's RPC entrypoints: thin, each delegating to accounts / tenants / rosters."""
from __future__ import annotations

from weintervene.entrypoints import rpc
from sqlalchemy import select

from services.identity import accounts
from services.identity.dependencies import identity_database
from services.identity.exceptions import OutOfScope
from services.identity.models import Tenant, User
from services.identity.passwords import check_policy, hash_password
from services.identity.schemas import LoginSchema, SessionSchema, TenantSchema, UserSchema
from weintervene.auth import AuthContext, Role
from weintervene.errors import Conflict, NotFound
from weintervene.export import DataExporter
from weintervene.observability import EntrypointMetrics, HealthCheck
from weintervene.validation import load


class IdentityService(DataExporter, HealthCheck):
    name = "identity"

    db = identity_database()
    metrics = EntrypointMetrics()

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
        """A session token -> the caller's AuthContext as a dict; SessionExpired otherwise."""
        return accounts.authenticate(self.db, token).to_dict()

    @rpc
    def logout(self, token):
        accounts.logout(self.db, token)
        return {"signed_out": True}

    # -- tenants and users ------------------------------------------------
    @rpc
    def bootstrap_user(self, data, password):
        """Operators' CLI only (trusted broker access): create a user with a password.

        Without a tenant id the user joins the platform tenant, created on first use.
        Example: bootstrap_user({"email": "ops@x.org", "display_name": "Ops",
        "role": "operator", "tenant_id": None}, "a long passphrase") -> the user.
        """
        data = dict(data)
        if not data.get("tenant_id"):
            data["tenant_id"] = self._platform_tenant().id
        operator = AuthContext(user_id="bootstrap", tenant_id=data["tenant_id"], role=Role.OPERATOR)
        return self.create_user(operator.to_dict(), data, password=password)

    def _platform_tenant(self) -> Tenant:
        tenant = self.db.scalar(select(Tenant).where(Tenant.kind == "platform"))
        if tenant is None:
            tenant = Tenant(kind="platform", name="WeIntervene platform")
            self.db.add(tenant)
            self.db.commit()
        return tenant

    @rpc
    def create_tenant(self, auth, data):
        AuthContext.from_dict(auth).require(Role.OPERATOR)
        values = load(TenantSchema(), data)
        if values.get("parent_id") is not None:
            values["parent_id"] = str(values["parent_id"])
            parent = self.db.get(Tenant, values["parent_id"])
            if parent is None or parent.kind != "district":
                raise NotFound("No such district.", code="district_not_found")
        tenant = Tenant(**values)
        self.db.add(tenant)
        self.db.commit()
        return TenantSchema().dump(tenant)

    @rpc
    def create_user(self, auth, data, password=None):
        caller = AuthContext.from_dict(auth).require(Role.OPERATOR, Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.PROGRAM_ADMIN)
        values = load(UserSchema(), data)
        values["tenant_id"] = str(values["tenant_id"])
        values["email"] = accounts.normalise_email(values["email"])
        tenant = self.db.get(Tenant, values["tenant_id"])
        if tenant is None:
            raise NotFound("No such tenant.", code="tenant_not_found")
        if caller.role is not Role.OPERATOR and not caller.in_scope(tenant.id, tenant.parent_id):
            raise OutOfScope("That tenant is not yours.")
        if self.db.scalar(select(User).where(User.email == values["email"])):
            raise Conflict("A user with that email exists.", code="email_taken")
        user = User(**values)
        if password is not None:
            check_policy(password, email=user.email)
            user.password_hash = hash_password(password)
        self.db.add(user)
        self.db.commit()
        return UserSchema().dump(user)
