"""Who sees which schools' figures, and whether those figures leave a school.

- A school (or program) admin sees their own tenant, unsuppressed: the figures
  do not leave the school.
- A district admin sees each school of the district side by side with the
  district total; small counts are suppressed with the district's threshold.
- An operator sees only tenants whose ``analytics_consent`` is on; a school
  without consent appears in no operator view. Suppression uses the strictest
  threshold of the tenants shown.

Tenant facts come from ``identity.tenant_info`` / ``tenants_info`` (many at once) /
``list_tenants_in``.

Example::

    >>> resolve_scope({"role": "district_admin", "tenant_id": "d1", ...}, None, sources, 10)
    Scope(view='district', tenants=[{school A}, {school B}, {district d1}], total={...}, threshold=12)
"""
from __future__ import annotations

import dataclasses

from weintervene.auth import AuthContext, Role
from weintervene.errors import Forbidden

OWN_TENANT_ROLES = (Role.SCHOOL_ADMIN, Role.PROGRAM_ADMIN)
REPORT_ROLES = (*OWN_TENANT_ROLES, Role.DISTRICT_ADMIN, Role.OPERATOR)


@dataclasses.dataclass
class Scope:
    view: str  # school | district | operator
    tenants: list[dict]  # tenant_info dicts: the columns of every table
    total: dict | None  # the total column {id, name, level}; None in a school's own view
    threshold: int | None  # None: nothing leaves the school, nothing is suppressed
    timezone: str | None
    only: str | None = None  # show this tenant's rows only (the table is still the whole scope)

    @property
    def tenant_ids(self) -> list[str]:
        return [t["id"] for t in self.tenants]

    def to_dict(self) -> dict:
        return {
            "view": self.view,
            "tenants": [{"id": t["id"], "name": t.get("name"), "kind": t.get("kind")} for t in self.tenants],
            "total": self.total,
            "suppression_threshold": self.threshold,
            "timezone": self.timezone,
        }


def _threshold(value, default: int) -> int:
    return int(value) if isinstance(value, int) and value > 0 else default


def resolve_scope(auth: dict, tenant_id: str | None, sources, default_threshold: int) -> Scope:
    """The scope of a report for ``auth``; ``tenant_id`` narrows it (must be within reach)."""
    caller = AuthContext.from_dict(auth).require(*REPORT_ROLES)
    if caller.role in OWN_TENANT_ROLES:
        if tenant_id and tenant_id != caller.tenant_id:
            raise Forbidden("You see your own school's analytics only.", code="tenant_forbidden")
        info = sources.tenant_info(caller.tenant_id)
        return Scope("school", [info], None, None, info.get("timezone"))

    if caller.role is Role.DISTRICT_ADMIN:
        district = sources.tenant_info(caller.tenant_id)
        tenants = [t for t in sources.list_tenants_in(caller.tenant_id) if t["id"] != district["id"]]
        tenants.append(district)  # shares made at the district level itself
        if tenant_id and tenant_id not in {t["id"] for t in tenants}:
            raise Forbidden("That school is not in your district.", code="tenant_forbidden")
        return Scope(
            "district", tenants,
            {"id": district["id"], "name": district.get("name"), "level": "district"},
            _threshold(district.get("suppression_threshold"), default_threshold),
            district.get("timezone"), only=tenant_id,
        )

    # Operator: consenting tenants only.
    if tenant_id:
        root = sources.tenant_info(tenant_id)
        candidates = [t for t in sources.list_tenants_in(tenant_id) if t["id"] != root["id"]] + [root]
    else:
        # One identity call for every tenant with counts (a tenant identity no
        # longer knows is left out: nothing to show), in a stable order.
        known = sources.tenants_info(sources.tenants_with_counts())
        candidates = sorted(known.values(), key=lambda t: (t.get("name") or "", t["id"]))
    tenants = [t for t in candidates if t.get("analytics_consent") is True]
    if tenant_id and not tenants:
        raise Forbidden("That school has not consented to cross-school analytics.",
                        code="analytics_consent_missing")
    # The strictest threshold of the tenants shown and of their districts.
    districts = {t.get("district_id") for t in tenants} - {None} - {t["id"] for t in tenants}
    governing = tenants + list(sources.tenants_info(districts).values()) if districts else tenants
    threshold = max([default_threshold] + [_threshold(t.get("suppression_threshold"), default_threshold) for t in governing])
    timezone = tenants[0].get("timezone") if tenants else None
    return Scope("operator", tenants, {"id": None, "name": "All consenting tenants", "level": "platform"},
                 threshold, timezone)
