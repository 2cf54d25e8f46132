"""Operators curate the global directory; schools, districts and programs add their own.

Who may write what:

* operators create and edit global services (``owner_tenant_id`` None);
* school, district and program admins create services owned by their tenant
  and edit only those; ``published_to`` chooses who else sees them ("district":
  a school's or district's with its district; "schools": a youth program's with
  every school and district; the rule is ``services.directory.visibility``);
* nobody else writes.

Every change leaves HSDS ``metadata`` rows (field, previous value, new value,
who, when); retiring sets ``status`` to ``inactive`` (search stops showing it,
links already shared keep resolving).

Example::

    >>> create_service(session, operator_auth, {"name": "Math Tutoring", "organization_name": "Reading Partners",
    ...     "taxonomy_term_ids": [term_id("109-03-10")], "minimum_age": 6, "maximum_age": 14})
    {"id": "…", "name": "Math Tutoring", "owner_tenant_id": None, ...}
"""
from __future__ import annotations

from sqlalchemy import delete, select

from services.directory.indexing import reindex
from services.directory.models import (
    Address, Attribute, CostOption, Language, Location, Metadata, Organization, Phone, Schedule, Service,
    ServiceAtLocation, TaxonomyTerm,
)
from services.directory.views import details
from services.directory.visibility import TENANT, allows, audience_for, viewer_for
from weintervene.auth import AuthContext, Role
from weintervene.db import new_id, utcnow
from weintervene.errors import BadRequest, Forbidden, NotFound

OWNER_ROLES = (Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.PROGRAM_ADMIN)
SIMPLE_FIELDS = ("name", "description", "url", "email", "status", "eligibility_description", "application_process",
                 "fees", "minimum_age", "maximum_age")
COST_OPTIONS = {"free": ("Free", 0.0), "low": ("Low cost or sliding scale", None), "paid": ("Fee", None)}
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "zh": "Chinese", "fr": "French", "vi": "Vietnamese",
                  "am": "Amharic", "ko": "Korean", "ar": "Arabic", "pt": "Portuguese", "ht": "Haitian Creole"}


def _history(session, resource_id, resource_type, action, field, old, new, by):
    session.add(Metadata(
        id=new_id(), resource_id=resource_id, resource_type=resource_type, last_action_date=utcnow(),
        last_action_type=action, field_name=field, previous_value="" if old is None else str(old),
        replacement_value="" if new is None else str(new), updated_by=by,
    ))


def may_edit(auth: AuthContext, service: Service) -> bool:
    if service.owner_tenant_id is None:
        return auth.role is Role.OPERATOR
    return auth.role in OWNER_ROLES and service.owner_tenant_id == auth.tenant_id


def _owner(auth: AuthContext) -> tuple[str | None, str | None, str | None]:
    """(owner tenant, its district, its kind) of what ``auth`` creates; a district is its own district."""
    if auth.role is Role.OPERATOR:
        return None, None, None
    if auth.role in OWNER_ROLES:
        viewer = viewer_for(auth)
        return auth.tenant_id, viewer["district_id"], viewer["kind"]
    raise Forbidden("Only operators and school, district or program admins add services.", code="role_forbidden")


def _organization(session, auth, data, owner) -> str:
    if data.get("organization_id"):
        org = session.get(Organization, str(data["organization_id"]))
        if org is None or (org.owner_tenant_id is not None and org.owner_tenant_id != owner):
            raise BadRequest("Unknown organization.", code="invalid_input", details={"organization_id": ["No such organization."]})
        return org.id
    name = data.get("organization_name")
    if not name:
        if owner is None:
            raise BadRequest("Name the organization.", code="invalid_input",
                             details={"organization_name": ["Give organization_id or organization_name."]})
        name = "Our own programs"
    existing = session.scalar(select(Organization).where(Organization.name == name, Organization.owner_tenant_id.is_(owner) if owner is None else Organization.owner_tenant_id == owner))
    if existing:
        return existing.id
    org = Organization(id=new_id(), name=name, description="", owner_tenant_id=owner)
    session.add(org)
    _history(session, org.id, "organization", "create", "", "", "", auth.user_id)
    return org.id


def _check_terms(session, term_ids):
    ids = [str(t) for t in term_ids]
    found = set(session.scalars(select(TaxonomyTerm.id).where(TaxonomyTerm.id.in_(ids)))) if ids else set()
    missing = [t for t in ids if t not in found]
    if missing:
        raise BadRequest("Unknown categories.", code="invalid_input", details={"taxonomy_term_ids": [f"No such term: {t}" for t in missing]})
    return ids


def _replace_children(session, service: Service, data: dict, by: str):
    sid = service.id
    if "taxonomy_term_ids" in data:
        ids = _check_terms(session, data["taxonomy_term_ids"])
        old = sorted(session.scalars(select(Attribute.taxonomy_term_id).where(Attribute.link_id == sid)))
        session.execute(delete(Attribute).where(Attribute.link_id == sid))
        for t in sorted(set(ids)):
            session.add(Attribute(id=new_id(), link_id=sid, taxonomy_term_id=t, link_entity="service", link_type="taxonomy"))
        if old != sorted(set(ids)):
            _history(session, sid, "service", "update", "taxonomy_term_ids", ",".join(old), ",".join(sorted(set(ids))), by)
    if "languages" in data:
        session.execute(delete(Language).where(Language.service_id == sid))
        for code in sorted({c.lower() for c in data["languages"]}):
            session.add(Language(id=new_id(), service_id=sid, code=code, name=LANGUAGE_NAMES.get(code)))
        _history(session, sid, "service", "update", "languages", "", ",".join(sorted(data["languages"])), by)
    if "cost" in data:
        session.execute(delete(CostOption).where(CostOption.service_id == sid))
        if data["cost"]:
            option, amount = COST_OPTIONS[data["cost"]]
            session.add(CostOption(id=new_id(), service_id=sid, option=option, amount=amount, currency="USD"))
        _history(session, sid, "service", "update", "cost", "", data["cost"] or "", by)
    if "phones" in data:
        session.execute(delete(Phone).where(Phone.service_id == sid))
        for number in data["phones"]:
            session.add(Phone(id=new_id(), service_id=sid, number=number.strip(), type="voice"))
        _history(session, sid, "service", "update", "phones", "", ", ".join(data["phones"]), by)
    if "schedules" in data:
        session.execute(delete(Schedule).where(Schedule.service_id == sid))
        for s in data["schedules"]:
            session.add(Schedule(id=new_id(), service_id=sid, freq="WEEKLY", byday=",".join(s["days"]),
                                 opens_at=s["opens_at"], closes_at=s["closes_at"]))
        _history(session, sid, "service", "update", "schedules", "", str(data["schedules"]), by)
    if "location" in data:
        sals = list(session.scalars(select(ServiceAtLocation).where(ServiceAtLocation.service_id == sid)))
        for sal in sals:
            session.delete(sal)
        loc_data = data["location"]
        if loc_data:
            loc = Location(id=new_id(), location_type="physical", organization_id=service.organization_id,
                           name=loc_data.get("name") or service.name, latitude=loc_data.get("latitude"),
                           longitude=loc_data.get("longitude"))
            session.add(loc)
            if loc_data.get("address"):
                a = loc_data["address"]
                session.add(Address(id=new_id(), location_id=loc.id, address_1=a["address_1"], address_2=a.get("address_2"),
                                    city=a["city"], state_province=a["state_province"], postal_code=a["postal_code"],
                                    country="US", address_type="physical"))
            session.add(ServiceAtLocation(id=new_id(), service_id=sid, location_id=loc.id))
        _history(session, sid, "service", "update", "location", "", str(loc_data or ""), by)


def create_service(session, auth: AuthContext, data: dict) -> dict:
    owner, district, kind = _owner(auth)
    service = Service(id=new_id(), owner_tenant_id=owner, owner_district_id=district, last_modified=utcnow(),
                      status=data.get("status") or "active", name=data["name"],
                      published_to=audience_for(kind, district, data.get("published_to")))
    service.organization_id = _organization(session, auth, data, owner)
    for field in SIMPLE_FIELDS:
        if field in data and field != "status":
            setattr(service, field, data[field])
    session.add(service)
    session.flush()
    _history(session, service.id, "service", "create", "", "", "", auth.user_id)
    _replace_children(session, service, data, auth.user_id)
    session.flush()
    reindex(session, [service.id])
    session.commit()
    return details(session, [service.id])[0]


def update_service(session, auth: AuthContext, service_id: str, data: dict) -> dict:
    service = session.get(Service, service_id)
    if service is None or not (may_edit(auth, service) or visible_to(auth, service)):
        raise NotFound("No such service.", code="service_not_found")
    if not may_edit(auth, service):
        raise Forbidden("You may not edit this service.", code="service_forbidden")
    lo = data.get("minimum_age", service.minimum_age)
    hi = data.get("maximum_age", service.maximum_age)
    if lo is not None and hi is not None and lo > hi:
        raise BadRequest("Invalid input.", code="invalid_input", details={"maximum_age": ["maximum_age must not be below minimum_age."]})
    if "organization_id" in data or "organization_name" in data:
        new_org = _organization(session, auth, data, service.owner_tenant_id)
        if new_org != service.organization_id:
            _history(session, service.id, "service", "update", "organization_id", service.organization_id, new_org, auth.user_id)
            service.organization_id = new_org
    if "published_to" in data:
        kind = viewer_for(auth)["kind"] if service.owner_tenant_id is not None else None
        audience = audience_for(kind, service.owner_district_id, data["published_to"])
        if audience != (service.published_to or TENANT):
            _history(session, service.id, "service", "update", "published_to", service.published_to, audience, auth.user_id)
            service.published_to = audience
    for field in SIMPLE_FIELDS:
        if field in data and getattr(service, field) != data[field]:
            _history(session, service.id, "service", "update", field, getattr(service, field), data[field], auth.user_id)
            setattr(service, field, data[field])
    _replace_children(session, service, data, auth.user_id)
    service.last_modified = utcnow()
    session.flush()
    reindex(session, [service.id])
    session.commit()
    return details(session, [service.id])[0]


def retire_service(session, auth: AuthContext, service_id: str) -> dict:
    return update_service(session, auth, service_id, {"status": "inactive"})


def visible_to(auth: AuthContext | None, service: Service) -> bool:
    """The directory's visibility rule (``services.directory.visibility``) for one service."""
    return allows(viewer_for(auth), service)


def history(session, resource_id: str) -> list[dict]:
    rows = session.scalars(select(Metadata).where(Metadata.resource_id == resource_id).order_by(Metadata.last_action_date, Metadata.id))
    return [{"id": m.id, "last_action_date": m.last_action_date.isoformat(), "last_action_type": m.last_action_type,
             "field_name": m.field_name, "previous_value": m.previous_value, "replacement_value": m.replacement_value,
             "updated_by": m.updated_by} for m in rows]
