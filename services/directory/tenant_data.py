"""What the directory holds about a tenant (its own services), and deleting it.

Example::

    >>> delete_tenant_services(session, ["school-id", "district-id"])
    {"services": 2, "organizations": 1, "locations": 1, "phones": 1, ...}
"""
from __future__ import annotations

from sqlalchemy import delete, select, text

from services.directory.models import (
    Accessibility, Address, Attribute, Contact, CostOption, Language, Location, Metadata, Organization, Phone, Program,
    Schedule, Service, ServiceArea, ServiceAtLocation, ServiceCapacity, ServiceCard, ServiceHours, ServiceSearch, Url,
)


def delete_tenant_services(session, tenant_ids: list[str]) -> dict[str, int]:
    """Delete every service, organization and row under them owned by ``tenant_ids``."""
    counts: dict[str, int] = {}
    service_ids = list(session.scalars(select(Service.id).where(Service.owner_tenant_id.in_(tenant_ids))))
    org_ids = list(session.scalars(select(Organization.id).where(Organization.owner_tenant_id.in_(tenant_ids))))
    sal_ids = list(session.scalars(select(ServiceAtLocation.id).where(ServiceAtLocation.service_id.in_(service_ids)))) if service_ids else []
    loc_ids = list(session.scalars(select(ServiceAtLocation.location_id).where(ServiceAtLocation.service_id.in_(service_ids)))) if service_ids else []
    if org_ids:
        loc_ids += list(session.scalars(select(Location.id).where(Location.organization_id.in_(org_ids))))
    loc_ids = sorted(set(filter(None, loc_ids)))

    def run(kind, statement):
        n = session.execute(statement).rowcount or 0
        if n:
            counts[kind] = counts.get(kind, 0) + n

    if service_ids:
        docs = list(session.scalars(select(ServiceSearch.id).where(ServiceSearch.service_id.in_(service_ids))))
        if docs and session.bind.dialect.name == "sqlite":
            session.execute(text("DELETE FROM service_fts WHERE rowid IN (%s)" % ",".join(str(int(d)) for d in docs)))
        run("search_rows", delete(ServiceSearch).where(ServiceSearch.service_id.in_(service_ids)))
        run("search_cards", delete(ServiceCard).where(ServiceCard.service_id.in_(service_ids)))
        run("opening_hours", delete(ServiceHours).where(ServiceHours.service_id.in_(service_ids)))
        run("attributes", delete(Attribute).where(Attribute.link_id.in_(service_ids)))
        for kind, model in (("phones", Phone), ("schedules", Schedule), ("languages", Language),
                            ("service_areas", ServiceArea), ("cost_options", CostOption), ("contacts", Contact),
                            ("capacities", ServiceCapacity), ("urls", Url)):
            run(kind, delete(model).where(model.service_id.in_(service_ids)))
        if sal_ids:  # HSDS lets a phone, schedule, contact or (3.1) area hang from a service-at-location alone
            for kind, model in (("phones", Phone), ("schedules", Schedule), ("contacts", Contact), ("service_areas", ServiceArea)):
                run(kind, delete(model).where(model.service_at_location_id.in_(sal_ids)))
        run("service_at_locations", delete(ServiceAtLocation).where(ServiceAtLocation.service_id.in_(service_ids)))
    if loc_ids:
        run("addresses", delete(Address).where(Address.location_id.in_(loc_ids)))
        run("accessibility", delete(Accessibility).where(Accessibility.location_id.in_(loc_ids)))
        for kind, model in (("phones", Phone), ("schedules", Schedule), ("languages", Language), ("contacts", Contact)):
            run(kind, delete(model).where(model.location_id.in_(loc_ids)))
        run("locations", delete(Location).where(Location.id.in_(loc_ids)))
    if org_ids:
        run("phones", delete(Phone).where(Phone.organization_id.in_(org_ids)))
        run("contacts", delete(Contact).where(Contact.organization_id.in_(org_ids)))
        run("urls", delete(Url).where(Url.organization_id.in_(org_ids)))
        run("programs", delete(Program).where(Program.organization_id.in_(org_ids)))
    resources = service_ids + org_ids + loc_ids
    if resources:
        run("history", delete(Metadata).where(Metadata.resource_id.in_(resources)))
    if service_ids:
        run("services", delete(Service).where(Service.id.in_(service_ids)))
    if org_ids:
        run("organizations", delete(Organization).where(Organization.id.in_(org_ids)))
    return counts
