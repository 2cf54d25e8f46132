"""Who may see which service: the one visibility rule of the directory.

A service is either global (``owner_tenant_id`` None, curated by operators) or
owned by a tenant (a school, a district or a youth program). Its owner chooses
its audience, ``published_to``:

* ``tenant``   (the default) only the owning tenant's users;
* ``district`` also every tenant of the owner's district (its schools and the
  district itself); only a school in a district, or a district, may choose it;
* ``schools``  also every school and district on the platform; a youth program
  chooses it so that teachers can find it and refer students to it.

Global services are visible to everyone (anonymous callers included, where the
caller allows anonymous reading at all). Operators and auditors belong to no
school, district or program: they see the global directory only.

The rule is written once, as data (:func:`alternatives`: an OR of ANDs of
``column = value``), and rendered three ways so every reader applies the same
rule: a SQLAlchemy clause (HSDS API, export, counts), a SQL text fragment (the
hand-written search statement) and a Python check on a loaded row
(``get_service``, edits, HSDS documents).

Example::

    >>> viewer = viewer_for({"tenant_id": "school-1", "district_id": "district-9", "role": "teacher", "user_id": "u"})
    >>> alternatives(viewer)
    [{'owner_tenant_id': None}, {'owner_tenant_id': 'school-1'},
     {'published_to': 'district', 'owner_district_id': 'district-9'}, {'published_to': 'schools'}]
    >>> allows(viewer, service)     # a program's service with published_to="schools"
    True
"""
from __future__ import annotations

from sqlalchemy import and_, or_

from weintervene.auth import PROGRAM_ROLES, SCHOOL_ROLES, AuthContext, Role, TenantKind
from weintervene.errors import BadRequest

TENANT = "tenant"
DISTRICT = "district"
SCHOOLS = "schools"
AUDIENCES = (TENANT, DISTRICT, SCHOOLS)

# Tenant kinds that a program's "schools" audience reaches.
SCHOOL_SIDE = (TenantKind.SCHOOL.value, TenantKind.DISTRICT.value)


def viewer_for(auth) -> dict | None:
    """The viewer dict (``tenant_id``, ``district_id``, ``kind``) of an auth dict or context; None if anonymous.

    The kind comes from the role: teachers and school admins are a school's,
    district admins a district's, program staff and admins a program's;
    operators and auditors are the platform's.
    """
    if not auth:
        return None
    ctx = AuthContext.from_dict(auth)
    if ctx.role in SCHOOL_ROLES:
        kind = TenantKind.SCHOOL
    elif ctx.role is Role.DISTRICT_ADMIN:
        kind = TenantKind.DISTRICT
    elif ctx.role in PROGRAM_ROLES:
        kind = TenantKind.PROGRAM
    else:
        kind = TenantKind.PLATFORM
    district = ctx.district_id or (ctx.tenant_id if kind is TenantKind.DISTRICT else None)
    return {"tenant_id": ctx.tenant_id, "district_id": district, "kind": kind.value}


def alternatives(viewer: dict | None) -> list[dict]:
    """The rule for ``viewer``: a service is visible when it matches every column of any one alternative.

    ``None`` as a value means "IS NULL".
    """
    rules: list[dict] = [{"owner_tenant_id": None}]
    if not viewer or not viewer.get("tenant_id"):
        return rules
    if viewer.get("kind") == TenantKind.PLATFORM.value:
        # The operator's own tenant owns nothing; operators curate the global directory.
        return rules
    rules.append({"owner_tenant_id": viewer["tenant_id"]})
    if viewer.get("district_id"):
        rules.append({"published_to": DISTRICT, "owner_district_id": viewer["district_id"]})
    if viewer.get("kind") in SCHOOL_SIDE:
        rules.append({"published_to": SCHOOLS})
    return rules


def clause(columns, viewer: dict | None):
    """The rule as a SQLAlchemy clause over ``columns`` (a model, a table's ``.c`` or an alias).

    ``select(Service).where(clause(Service, viewer))``
    """
    ors = []
    for alt in alternatives(viewer):
        ands = [getattr(columns, k).is_(None) if v is None else getattr(columns, k) == v for k, v in alt.items()]
        ors.append(and_(*ands))
    return or_(*ors)


def sql_text(alias: str, viewer: dict | None, prefix: str = "v_") -> tuple[str, dict]:
    """The rule as SQL text over table alias ``alias`` with its bind values.

    ``sql_text("ss", viewer)`` -> ``("(ss.owner_tenant_id IS NULL OR ss.owner_tenant_id = :v_1_owner_tenant_id ...)", {...})``
    """
    ors, binds = [], {}
    for i, alt in enumerate(alternatives(viewer)):
        ands = []
        for k, v in alt.items():
            if v is None:
                ands.append(f"{alias}.{k} IS NULL")
            else:
                name = f"{prefix}{i}_{k}"
                ands.append(f"{alias}.{k} = :{name}")
                binds[name] = v
        ors.append("(" + " AND ".join(ands) + ")")
    return "(" + " OR ".join(ors) + ")", binds


def allows(viewer: dict | None, row) -> bool:
    """The rule checked on one loaded service (or search row, or any object with the three columns)."""
    return any(all(getattr(row, k, None) == v for k, v in alt.items()) for alt in alternatives(viewer))


def audience_for(owner_kind: str | None, owner_district_id: str | None, published_to: str | None) -> str:
    """Check that an owner may publish to ``published_to``; returns the audience to store.

    Raises BadRequest with the reason when the owner may not (a program has no
    district; only a program publishes to every school).
    """
    audience = published_to or TENANT
    if audience not in AUDIENCES:
        raise BadRequest("Unknown audience.", code="invalid_input", details={"published_to": [f"One of {', '.join(AUDIENCES)}."]})
    if owner_kind is None:
        if audience != TENANT:
            raise BadRequest("Global services are visible to everyone already.", code="invalid_input",
                             details={"published_to": ["Only a tenant's own services are published."]})
        return audience
    if audience == DISTRICT and not owner_district_id:
        raise BadRequest("This tenant is not in a district.", code="invalid_input",
                         details={"published_to": ["Only a school in a district, or a district, publishes to its district."]})
    if audience == SCHOOLS and owner_kind != TenantKind.PROGRAM.value:
        raise BadRequest("Only youth programs publish to every school.", code="invalid_input",
                         details={"published_to": ["A school or district publishes to its district."]})
    return audience
