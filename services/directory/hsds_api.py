"""The HSDS 3.1 API's queries (``/hsds/...`` at the gateway).

Each function returns a JSON-able HSDS document, or a ``Page`` of them; the
gateway only routes and formats (``format=ndjson`` streams ``contents``).
Visibility: the directory's one rule (``services.directory.visibility``): global
services for everyone (anonymous callers too when ``hsds_public`` is on); a
tenant's own services for that tenant's users, and for whom it published them
to. An organization is visible when it is global, the viewer's own, or runs a
service the viewer sees.

Filters combine with AND. ``minimal`` returns each service's id, name, status
and ``last_modified`` (the smallest document ``service_list`` allows).

Example::

    >>> services(session, {"taxonomy_term_id": term_id("109-03-10"), "page": 1, "per_page": 10}, viewer=None)
    {"total_items": 4, "total_pages": 1, "page_number": 1, "size": 4, "first_page": True,
     "last_page": True, "empty": False, "contents": [{"id": "…", "name": "…", "status": "active", ...}]}
"""
from __future__ import annotations

from sqlalchemy import func, literal_column, or_, select, text

from services.directory import visibility
from services.directory.geo import bounding_box, miles_between, postcode_centroid
from services.directory.hsds import HSDS_VERSION, Loader, document, page
from services.directory.models import (
    Attribute, Organization, Service, ServiceAtLocation, ServiceSearch, Taxonomy, TaxonomyTerm,
)
from services.directory.search import area_names, keyword_condition, plan_query
from weintervene.errors import BadRequest, NotFound

# No profile of our own: the base HSDS 3.1 (its documentation is the profile URL it names).
OPENAPI_URL = "https://raw.githubusercontent.com/openreferral/specification/3.1/schema/openapi.json"
PROFILE_URL = "https://docs.openreferral.org/en/v3.1/hsds/"
NDJSON_LIMIT = 100000


def root(base_url: str) -> dict:
    return {"version": HSDS_VERSION, "profile": PROFILE_URL, "openapi_url": OPENAPI_URL}


def _visible_organization(viewer):
    own = [Organization.owner_tenant_id.is_(None)]
    if viewer and viewer.get("tenant_id") and viewer.get("kind") != "platform":
        own.append(Organization.owner_tenant_id == viewer["tenant_id"])
    published = Organization.id.in_(
        select(Service.organization_id).where(Service.owner_tenant_id.is_not(None), visibility.clause(Service, viewer)))
    return or_(*own, published)


def visible_service_fn(viewer):
    """The rule as a check on a loaded service (HSDS documents filter their embedded services with it)."""
    return lambda service: visibility.allows(viewer, service)


def keyword_subquery(session, q: str):
    """Service ids matching ``q`` as the educator search matches it (every concept, with its
    synonyms and the taxonomy terms it names), as a subquery; None when ``q`` has no word
    (punctuation alone filters nothing). Any text is safe: it never reaches SQL or FTS syntax."""
    plan = plan_query(session, q)
    if plan is None:
        return None
    binds: dict = {}
    condition = keyword_condition(session.bind.dialect.name, plan, binds)
    if session.bind.dialect.name == "postgresql":
        return select(literal_column("ss.service_id")).select_from(text("service_search ss")).where(text(condition)).params(**binds)
    return (select(ServiceSearch.service_id)
            .where(ServiceSearch.id.in_(select(literal_column("rowid")).select_from(text("service_fts"))
                                        .where(text(condition)))).params(**binds))


def like_text(value: str) -> str:
    """A LIKE pattern finding ``value`` as text: ``%`` and ``_`` are literal (escaped with ``\\``)."""
    value = value.replace("\x00", "").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{value.lower()}%"


def _paging(params, total):
    number, per_page = params.get("page", 1), params.get("per_page", 50)
    last = max(1, (total + per_page - 1) // per_page)
    if number > last:
        raise BadRequest("Page out of range.", code="invalid_input", details={"page": [f"There are {last} page(s) of {per_page}."]})
    return number, per_page


def _service_filters(session, params, viewer):
    conditions = [visibility.clause(Service, viewer)]
    if params.get("search"):
        matching = keyword_subquery(session, params["search"])
        if matching is not None:
            conditions.append(Service.id.in_(matching))
    if params.get("taxonomy_term_id"):
        conditions.append(Service.id.in_(select(ServiceSearch.service_id).where(ServiceSearch.term_ids.like(f"%|{params['taxonomy_term_id']}|%"))))
    if params.get("taxonomy_id"):
        conditions.append(Service.id.in_(
            select(Attribute.link_id).join(TaxonomyTerm, TaxonomyTerm.id == Attribute.taxonomy_term_id)
            .where(TaxonomyTerm.taxonomy_id == params["taxonomy_id"])))
    if params.get("organization_id"):
        conditions.append(Service.organization_id == params["organization_id"])
    if params.get("modified_after"):
        conditions.append(Service.last_modified >= params["modified_after"])
    if params.get("postcode"):
        place = postcode_centroid(params["postcode"])
        if place is None:
            raise BadRequest("Unknown postcode.", code="invalid_input", details={"postcode": ["Not a known US ZIP code."]})
        if params.get("proximity"):
            miles = params["proximity"] / 1609.344
            lat0, lat1, lon0, lon1 = bounding_box(place["latitude"], place["longitude"], miles)
            near = [
                sid for sid, lat, lon in session.execute(
                    select(ServiceSearch.service_id, ServiceSearch.latitude, ServiceSearch.longitude)
                    .where(ServiceSearch.latitude.between(lat0, lat1), ServiceSearch.longitude.between(lon0, lon1)))
                if miles_between(place["latitude"], place["longitude"], lat, lon) <= miles
            ]
            conditions.append(Service.id.in_(near))
        else:
            names = area_names(params["postcode"])
            covered = or_(ServiceSearch.area_names == "|", *[ServiceSearch.area_names.like(f"%|{n}|%") for n in names])
            conditions.append(Service.id.in_(select(ServiceSearch.service_id).where(covered)))
    return conditions


def services(session, params: dict, viewer) -> dict:
    conditions = _service_filters(session, params, viewer)
    total = session.scalar(select(func.count()).select_from(Service).where(*conditions))
    query = select(Service).where(*conditions).order_by(Service.name, Service.id)
    if params.get("format") == "ndjson":
        rows, number, per_page = list(session.scalars(query.limit(NDJSON_LIMIT))), 1, max(total, 1)
    else:
        number, per_page = _paging(params, total)
        rows = list(session.scalars(query.offset((number - 1) * per_page).limit(per_page)))
    loader = Loader(session, visible_service_fn(viewer))
    if params.get("minimal"):
        contents = [{"id": s.id, "name": s.name, "status": s.status,
                     "last_modified": s.last_modified.isoformat().replace("+00:00", "Z")} for s in rows]
    else:
        shape = "service" if params.get("full") else "service_list"
        contents = [document(loader, shape, s, kind="service") for s in rows]
    return page(contents, total, number, per_page)


def service(session, service_id: str, viewer) -> dict:
    s = session.get(Service, service_id)
    if s is None or not visible_service_fn(viewer)(s):
        raise NotFound("No such service.", code="service_not_found")
    return document(Loader(session, visible_service_fn(viewer)), "service", s)


def organizations(session, params: dict, viewer) -> dict:
    conditions = [_visible_organization(viewer)]
    if params.get("taxonomy_term_id") or params.get("taxonomy_id"):
        # HSDS 3.1: an organization is filed under a term when a service of its, that the
        # viewer sees, is.
        filtered = {k: params[k] for k in ("taxonomy_term_id", "taxonomy_id") if params.get(k)}
        conditions.append(Organization.id.in_(
            select(Service.organization_id).where(*_service_filters(session, filtered, viewer))))
    if params.get("search"):
        like = like_text(params["search"])
        conditions.append(or_(func.lower(Organization.name).like(like, escape="\\"),
                              func.lower(Organization.description).like(like, escape="\\")))
    total = session.scalar(select(func.count()).select_from(Organization).where(*conditions))
    query = select(Organization).where(*conditions).order_by(Organization.name, Organization.id)
    if params.get("format") == "ndjson":
        rows, number, per_page = list(session.scalars(query.limit(NDJSON_LIMIT))), 1, max(total, 1)
    else:
        number, per_page = _paging(params, total)
        rows = list(session.scalars(query.offset((number - 1) * per_page).limit(per_page)))
    loader = Loader(session, visible_service_fn(viewer))
    shape = "organization" if params.get("full") or params.get("full_service") else "organization_list"
    return page([document(loader, shape, o, kind="organization") for o in rows], total, number, per_page)


def organization(session, organization_id: str, viewer) -> dict:
    o = session.scalar(select(Organization).where(Organization.id == organization_id, _visible_organization(viewer)))
    if o is None:
        raise NotFound("No such organization.", code="organization_not_found")
    return document(Loader(session, visible_service_fn(viewer)), "organization", o)


def taxonomies(session, params: dict) -> dict:
    conditions = []
    if params.get("search"):
        conditions.append(func.lower(Taxonomy.name).like(like_text(params["search"]), escape="\\"))
    total = session.scalar(select(func.count()).select_from(Taxonomy).where(*conditions))
    query = select(Taxonomy).where(*conditions).order_by(Taxonomy.name, Taxonomy.id)
    number, per_page = (1, max(total, 1)) if params.get("format") == "ndjson" else _paging(params, total)
    rows = list(session.scalars(query.offset((number - 1) * per_page).limit(per_page)))
    loader = Loader(session)
    return page([document(loader, "taxonomy", t) for t in rows], total, number, per_page)


def taxonomy(session, taxonomy_id: str) -> dict:
    t = session.get(Taxonomy, taxonomy_id)
    if t is None:
        raise NotFound("No such taxonomy.", code="taxonomy_not_found")
    return document(Loader(session), "taxonomy", t)


def taxonomy_terms(session, params: dict) -> dict:
    conditions = []
    if params.get("search"):
        conditions.append(func.lower(TaxonomyTerm.name).like(like_text(params["search"]), escape="\\"))
    if params.get("taxonomy_id"):
        conditions.append(TaxonomyTerm.taxonomy_id == params["taxonomy_id"])
    if params.get("parent_id"):
        conditions.append(TaxonomyTerm.parent_id == params["parent_id"])
    if params.get("top_only"):
        conditions.append(TaxonomyTerm.parent_id.is_(None))
    total = session.scalar(select(func.count()).select_from(TaxonomyTerm).where(*conditions))
    query = select(TaxonomyTerm).where(*conditions).order_by(TaxonomyTerm.code, TaxonomyTerm.name, TaxonomyTerm.id)
    number, per_page = (1, max(total, 1)) if params.get("format") == "ndjson" else _paging(params, total)
    rows = list(session.scalars(query.offset((number - 1) * per_page).limit(per_page)))
    loader = Loader(session)
    return page([document(loader, "taxonomy_term", t) for t in rows], total, number, per_page)


def taxonomy_term(session, term_id: str) -> dict:
    t = session.get(TaxonomyTerm, term_id)
    if t is None:
        raise NotFound("No such taxonomy term.", code="taxonomy_term_not_found")
    return document(Loader(session), "taxonomy_term", t)


def service_at_locations(session, params: dict, viewer) -> dict:
    service_conditions = _service_filters(session, params, viewer)
    visible = select(Service.id).where(*service_conditions)
    conditions = [ServiceAtLocation.service_id.in_(visible)]
    total = session.scalar(select(func.count()).select_from(ServiceAtLocation).where(*conditions))
    query = select(ServiceAtLocation).where(*conditions).order_by(ServiceAtLocation.id)
    if params.get("format") == "ndjson":
        rows, number, per_page = list(session.scalars(query.limit(NDJSON_LIMIT))), 1, max(total, 1)
    else:
        number, per_page = _paging(params, total)
        rows = list(session.scalars(query.offset((number - 1) * per_page).limit(per_page)))
    loader = Loader(session, visible_service_fn(viewer))
    shape = "service_at_location" if params.get("full") else "service_at_location_list"
    return page([document(loader, shape, r, kind="service_at_location") for r in rows], total, number, per_page)


def service_at_location(session, sal_id: str, viewer) -> dict:
    r = session.get(ServiceAtLocation, sal_id)
    s = session.get(Service, r.service_id) if r else None
    if r is None or s is None or not visible_service_fn(viewer)(s):
        raise NotFound("No such service at location.", code="service_at_location_not_found")
    return document(Loader(session, visible_service_fn(viewer)), "service_at_location", r)
