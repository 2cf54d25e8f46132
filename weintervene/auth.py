"""Who is calling: the authenticated context passed as the first argument of RPCs.

Identity builds it when it authenticates a session; the gateway signs it
(:mod:`weintervene.context_signing`: an expiry and an Ed25519 signature travel in the
dict) and passes it on; every service's RPC entrypoint verifies the signature before
the method runs (:mod:`weintervene.entrypoints`), and the method turns the dict back
into an :class:`AuthContext` and checks roles with the helpers below. A service that
calls another on the user's behalf forwards the context unchanged: ``from_dict`` keeps
the signature and ``to_dict`` gives it back.

Example::

    >>> auth = AuthContext.from_dict({"user_id": "u1", "tenant_id": "t1",
    ...     "role": "teacher", "district_id": "d1"})
    >>> auth.require(Role.TEACHER, Role.SCHOOL_ADMIN)   # passes
    >>> auth.require(Role.OPERATOR)                      # raises Forbidden
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Optional

from weintervene.errors import Forbidden, Unauthorized


class Role(str, enum.Enum):
    TEACHER = "teacher"  # teacher or other school staff
    SCHOOL_ADMIN = "school_admin"
    DISTRICT_ADMIN = "district_admin"
    PROGRAM_STAFF = "program_staff"
    PROGRAM_ADMIN = "program_admin"
    OPERATOR = "operator"  # platform operator
    AUDITOR = "auditor"


SCHOOL_ROLES = frozenset({Role.TEACHER, Role.SCHOOL_ADMIN})
PROGRAM_ROLES = frozenset({Role.PROGRAM_STAFF, Role.PROGRAM_ADMIN})
STUDENT_DATA_ROLES = SCHOOL_ROLES | PROGRAM_ROLES | {Role.DISTRICT_ADMIN}
"""Roles that may ever see student data (operators and auditors never do)."""


class TenantKind(str, enum.Enum):
    DISTRICT = "district"
    SCHOOL = "school"  # a school in a district, or a charter/independent school
    PROGRAM = "program"  # a youth program or community-based organisation
    PLATFORM = "platform"  # the operator's own tenant


@dataclasses.dataclass(frozen=True)
class AuthContext:
    user_id: str
    tenant_id: str
    role: Role
    # The district above the user's tenant (its own id for a district admin), if any.
    district_id: Optional[str] = None
    session_id: Optional[str] = None
    email: Optional[str] = None
    display_name: Optional[str] = None
    # Set by the gateway's signature (weintervene.context_signing), kept as they came so a
    # forwarded context still verifies; not part of who the caller is (not compared).
    expires_at: Optional[int] = dataclasses.field(default=None, compare=False)
    signature: Optional[str] = dataclasses.field(default=None, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data) -> "AuthContext":
        if isinstance(data, AuthContext):
            return data
        # Not a mapping (a list, a string from a faulty caller): refused like no context at
        # all, never an AttributeError (a 500) in the service that was called.
        if not isinstance(data, dict) or not data.get("user_id") or not data.get("role"):
            raise Unauthorized("Not signed in.", code="not_authenticated")
        try:
            role = Role(data["role"])
        except ValueError:
            raise Unauthorized("Unknown role.", code="not_authenticated") from None
        values = {k: v for k, v in data.items() if k in _FIELD_NAMES}
        values["role"] = role
        return cls(**values)

    def to_dict(self) -> dict:
        # Spelled out rather than dataclasses.asdict (a deep copy): this runs
        # twice on every authenticated request.
        data = {
            "user_id": self.user_id, "tenant_id": self.tenant_id, "role": self.role.value,
            "district_id": self.district_id, "session_id": self.session_id, "email": self.email,
            "display_name": self.display_name,
        }
        if self.signature is not None:  # signed: forwarded exactly as it was signed
            data["expires_at"] = self.expires_at
            data["signature"] = self.signature
        return data

    def unsigned(self) -> "AuthContext":
        """The same caller without the gateway's signature (what identity answered; ``/me``)."""
        if self.signature is None and self.expires_at is None:
            return self
        return dataclasses.replace(self, expires_at=None, signature=None)

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles

    def require(self, *roles: Role) -> "AuthContext":
        if self.role not in roles:
            raise Forbidden("Your role may not do this.", code="role_forbidden")
        return self

    @property
    def sees_student_data(self) -> bool:
        return self.role in STUDENT_DATA_ROLES

    def in_scope(self, tenant_id: str, district_id: Optional[str] = None) -> bool:
        """True when a record owned by ``tenant_id`` is within this caller's tenant.

        District admins reach their district and its schools; everyone else only
        their own tenant.
        """
        if tenant_id == self.tenant_id:
            return True
        if self.role is Role.DISTRICT_ADMIN and district_id and district_id == self.tenant_id:
            return True
        return False


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(AuthContext))
