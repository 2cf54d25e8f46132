"""The directory's own (non-HSDS) views of a service: the agreed ``get_service`` shape
and the compact card of a search result page.

A card carries only what a result card shows (the web app's search page) and what
sharing needs (id and name); everything else is one click away in the detail.

Example::

    >>> details(session, ["5f0e…"])[0]["hours_text"]
    'Mon-Fri 3:30 PM-6:30 PM'
    >>> cards(session, ["5f0e…"])
    [{"id": "5f0e…", "name": "After-School Math Tutoring", "organization_name": "Reading Partners",
      "description": "Free one-to-one…", "address": "1 Main St, Washington", "hours_text": "Mon-Fri 3:30 PM-6:30 PM",
      "cost": "free", "languages": ["en", "es"], "categories": ["Tutoring"]}]
"""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select

from services.directory.indexing import cost_class, language_code
from services.directory.models import (
    Address, Attribute, CostOption, Language, Location, Organization, Phone, Schedule, Service,
    ServiceAtLocation, ServiceCard, ServiceSearch,
)
from services.directory.schedules import hours_text
from services.directory.taxonomy import TermTree

SCHEDULE_FIELDS = ("id", "service_id", "location_id", "service_at_location_id", "freq", "byday", "opens_at",
                   "closes_at", "description", "valid_from", "valid_to", "wkst", "interval")


def _schedule(s: Schedule) -> dict:
    return {k: getattr(s, k) for k in SCHEDULE_FIELDS if getattr(s, k) is not None}


CARD_DESCRIPTION = 180
CARD_CATEGORIES = 3


def card(item: dict) -> dict:
    """The search result card of a service, from its :func:`details` dict."""
    location = (item.get("locations") or [{}])[0] or {}
    address = location.get("address") or {}
    description = item.get("description") or ""
    if len(description) > CARD_DESCRIPTION:
        description = description[:CARD_DESCRIPTION - 3] + "…"
    return {
        "id": item["id"], "name": item.get("name") or "",
        "organization_name": (item.get("organization") or {}).get("name"),
        "description": description,
        "address": ", ".join(x for x in (address.get("address_1"), address.get("city")) if x) or None,
        "hours_text": item.get("hours_text") or None,
        "cost": item.get("cost"),
        "languages": item.get("languages") or [],
        "categories": [t["name"] for t in (item.get("taxonomy_terms") or [])[:CARD_CATEGORIES]],
    }


def cards(session, ids: list[str]) -> list[dict]:
    """The cards of ``ids`` (in that order): one primary-key lookup; a card missing
    (a row written before cards existed) is built from the HSDS tables."""
    if not ids:
        return []
    stored = dict(session.execute(select(ServiceCard.service_id, ServiceCard.card).where(ServiceCard.service_id.in_(ids))).all())
    missing = [i for i in ids if i not in stored]
    if missing:
        stored.update({item["id"]: card(item) for item in details(session, missing)})
    return [dict(stored[i]) for i in ids if i in stored]


def details(session, ids: list[str], full: bool = True, cost_override: dict | None = None) -> list[dict]:
    """Service dicts for ``ids`` (in that order), loaded in a few queries.

    ``full=False`` trims the description and leaves out the schedule rows.
    """
    if not ids:
        return []
    tree = TermTree.load(session)
    services = {s.id: s for s in session.scalars(select(Service).where(Service.id.in_(ids)))}
    org_ids = {s.organization_id for s in services.values() if s.organization_id}
    orgs = {o.id: o for o in session.scalars(select(Organization).where(Organization.id.in_(org_ids)))} if org_ids else {}
    sals = defaultdict(list)
    for sal in session.scalars(select(ServiceAtLocation).where(ServiceAtLocation.service_id.in_(ids)).order_by(ServiceAtLocation.id)):
        sals[sal.service_id].append(sal)
    loc_ids = {sal.location_id for v in sals.values() for sal in v}
    sal_ids = {sal.id for v in sals.values() for sal in v}
    locations = {l.id: l for l in session.scalars(select(Location).where(Location.id.in_(loc_ids)))} if loc_ids else {}
    addresses = defaultdict(list)
    if loc_ids:
        for a in session.scalars(select(Address).where(Address.location_id.in_(loc_ids)).order_by(Address.address_type, Address.id)):
            addresses[a.location_id].append(a)
    phones = defaultdict(list)
    for p in session.scalars(select(Phone).where(Phone.service_id.in_(ids)).order_by(Phone.id)):
        phones[p.service_id].append(p)
    if loc_ids:
        for p in session.scalars(select(Phone).where(Phone.location_id.in_(loc_ids), Phone.service_id.is_(None)).order_by(Phone.id)):
            phones[("loc", p.location_id)].append(p)
    if org_ids:
        for p in session.scalars(select(Phone).where(Phone.organization_id.in_(org_ids), Phone.service_id.is_(None), Phone.location_id.is_(None)).order_by(Phone.id)):
            phones[("org", p.organization_id)].append(p)
    schedules = defaultdict(list)
    for s in session.scalars(select(Schedule).where(Schedule.service_id.in_(ids)).order_by(Schedule.id)):
        schedules[s.service_id].append(s)
    if sal_ids:
        for s in session.scalars(select(Schedule).where(Schedule.service_at_location_id.in_(sal_ids), Schedule.service_id.is_(None))):
            schedules[("sal", s.service_at_location_id)].append(s)
    if loc_ids:
        for s in session.scalars(select(Schedule).where(Schedule.location_id.in_(loc_ids), Schedule.service_id.is_(None), Schedule.service_at_location_id.is_(None))):
            schedules[("loc", s.location_id)].append(s)
    attrs = defaultdict(list)
    for a in session.scalars(select(Attribute).where(Attribute.link_id.in_(ids))):
        attrs[a.link_id].append(a.taxonomy_term_id)
    langs = defaultdict(set)
    for l in session.scalars(select(Language).where(Language.service_id.in_(ids))):
        langs[l.service_id].add(language_code(l.name, l.code))
    if loc_ids:
        for l in session.scalars(select(Language).where(Language.location_id.in_(loc_ids))):
            langs[("loc", l.location_id)].add(language_code(l.name, l.code))
    costs = defaultdict(list)
    for c in session.scalars(select(CostOption).where(CostOption.service_id.in_(ids))):
        costs[c.service_id].append(c)
    docs = {d.service_id: d for d in session.scalars(select(ServiceSearch).where(ServiceSearch.service_id.in_(ids)))}

    out = []
    for sid in ids:
        s = services.get(sid)
        if s is None:
            continue
        locs, loc_langs = [], set()
        service_schedules = list(schedules.get(sid, []))
        service_phones = list(phones.get(sid, []))
        for sal in sals.get(sid, []):
            loc = locations.get(sal.location_id)
            if loc is None:
                continue
            addr = next((a for a in addresses.get(loc.id, []) if a.address_type == "physical"), None) or next(iter(addresses.get(loc.id, [])), None)
            locs.append({
                "id": loc.id, "name": loc.name or "",
                "address": {
                    "address_1": addr.address_1 if addr else "", "address_2": addr.address_2 if addr else None,
                    "city": addr.city if addr else "", "state_province": addr.state_province if addr else "",
                    "postal_code": addr.postal_code if addr else "",
                } if addr else None,
                "latitude": loc.latitude, "longitude": loc.longitude,
            })
            loc_langs |= langs.get(("loc", loc.id), set())
            service_schedules += schedules.get(("sal", sal.id), []) + schedules.get(("loc", loc.id), [])
            service_phones += phones.get(("loc", loc.id), [])
        if not service_phones and s.organization_id:
            service_phones = phones.get(("org", s.organization_id), [])
        rows = [_schedule(x) for x in service_schedules]
        term_ids = sorted(set(attrs.get(sid, [])))
        org = orgs.get(s.organization_id)
        doc = docs.get(sid)
        service_costs = costs.get(sid, [])
        item = {
            "id": s.id, "name": s.name, "alternate_name": s.alternate_name, "description": s.description or "",
            "url": s.url, "email": s.email, "status": s.status,
            "organization": {"id": org.id, "name": org.name} if org else None,
            "locations": locs,
            "phones": [{"number": p.number, "extension": p.extension, "type": p.type} for p in service_phones[:5]],
            "schedules": rows, "hours_text": hours_text(rows),
            "eligibility_description": s.eligibility_description, "application_process": s.application_process,
            "fees": s.fees, "minimum_age": s.minimum_age, "maximum_age": s.maximum_age,
            "languages": sorted(l for l in (langs.get(sid, set()) | loc_langs) if l),
            "cost": (cost_override or {}).get(sid) or (doc.cost if doc else cost_class([c.amount for c in service_costs], [s.fees or ""])),
            "taxonomy_term_ids": term_ids,
            "taxonomy_terms": [{"id": t, "name": tree.terms[t]["name"], "code": tree.terms[t]["code"]} for t in term_ids if t in tree.terms],
            "owner_tenant_id": s.owner_tenant_id, "published_to": s.published_to or "tenant",
            "last_modified": s.last_modified.isoformat() if s.last_modified else None,
        }
        if not full:
            item["description"] = (item["description"][:280] + "…") if len(item["description"]) > 280 else item["description"]
            item.pop("schedules")
        out.append(item)
    return out
