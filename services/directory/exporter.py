"""Export the global directory (or part of it) as an HSDS 3.1 CSV datapackage or HSDS JSON.

The CSV package follows the spec's own ``datapackage.json`` (shipped as
``data/hsds_3_1_datapackage.json``): each file has exactly the spec's columns in the
spec's order (a column we do not keep, e.g. ``organizations.logo``, is written empty; one
the spec lacks, ``organizations.last_modified``, is left out), times as ``HH:MM:SS``, and the
descriptor written is the spec's, for the resources exported. A row breaking one of the
spec's constraints (a ``required`` value we do not have, e.g. Open Eligibility terms have no
``description``; a ``unique`` one repeated) is still written, so nothing is lost and the
package re-imports whole, and is reported: :data:`export_csv`'s ``problems`` list.

An exported package re-imports to the same content: ids are kept, values are
written as stored. Only the global directory is exported (the visibility rule of
``services.directory.visibility`` for a caller of no tenant): services owned by a
tenant are that tenant's data, published or not; the edit history stays behind too.

Example::

    export_csv(session, Path("out/"))                    # datapackage.json + services.csv, ...
    export_json(session, Path("out/directory.json"))     # [ {service document}, ... ]
"""
from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select

from services.directory import visibility
from services.directory.hsds import HSDS_VERSION, PRIVATE, Loader, document
from services.directory.models import (
    Accessibility, Address, Attribute, Contact, CostOption, HSDS_TABLES, Language, Location, Organization, Phone, Program,
    Schedule, Service, ServiceArea, ServiceAtLocation, ServiceCapacity, Taxonomy, TaxonomyTerm, Unit, Url,
)
from services.directory.taxonomy import TermTree
from weintervene import spreadsheets

FILE_NAMES = {
    "taxonomy": "taxonomies.csv", "taxonomy_term": "taxonomy_terms.csv", "organization": "organizations.csv",
    "program": "programs.csv", "service": "services.csv", "location": "locations.csv",
    "service_at_location": "service_at_location.csv", "address": "addresses.csv",
    "accessibility": "accessibility.csv", "contact": "contacts.csv",
    "phone": "phones.csv", "schedule": "schedules.csv", "attribute": "attributes.csv", "language": "languages.csv",
    "service_area": "service_areas.csv", "cost_option": "cost_options.csv",
    "unit": "units.csv", "service_capacity": "service_capacity.csv", "url": "url.csv",
}
SPEC_DESCRIPTOR = Path(__file__).resolve().parent / "data" / "hsds_3_1_datapackage.json"


def _columns(model) -> list[str]:
    return [c.key for c in model.__table__.columns if c.key not in PRIVATE]


@lru_cache(maxsize=1)
def spec_resources() -> dict[str, dict]:
    """The HSDS 3.1 datapackage's resource descriptors, by table name."""
    return {r["name"]: r for r in json.loads(SPEC_DESCRIPTOR.read_text(encoding="utf-8"))["resources"]}


def _spec_cell(field: dict, value):
    """A cell as the spec's field type reads it: ``time`` as ``HH:MM:SS`` (we keep ``HH:MM``)."""
    if field["type"] == "time" and isinstance(value, str) and len(value) == 5:
        return value + ":00"
    return _cell(value)


def _cell(value):
    """A CSV cell: numbers stay numbers (never escaped as formulas, ``-77.03`` included);
    everything else as :func:`_text`, which the writer escapes where it starts a formula."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return value
    return _text(value)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def selected_rows(session, service_ids=None) -> dict[str, list]:
    """Every HSDS row belonging to the chosen global services (all global ones by default)."""
    query = select(Service).where(visibility.clause(Service, None)).order_by(Service.id)
    if service_ids is not None:
        query = query.where(Service.id.in_(list(service_ids)))
    services = list(session.scalars(query))
    sids = {s.id for s in services}
    org_ids = {s.organization_id for s in services if s.organization_id}
    sals = [x for x in session.scalars(select(ServiceAtLocation).order_by(ServiceAtLocation.id)) if x.service_id in sids]
    loc_ids = {x.location_id for x in sals}
    locations = [l for l in session.scalars(select(Location).where(Location.organization_id.in_(org_ids)).order_by(Location.id))] if org_ids else []
    loc_ids |= {l.id for l in locations}
    locations = [l for l in session.scalars(select(Location).order_by(Location.id)) if l.id in loc_ids]
    sal_ids = {x.id for x in sals}
    orgs = [o for o in session.scalars(select(Organization).order_by(Organization.id)) if o.id in org_ids]
    programs = [p for p in session.scalars(select(Program).order_by(Program.id)) if p.organization_id in org_ids]
    contacts = [c for c in session.scalars(select(Contact).order_by(Contact.id))
                if c.service_id in sids or c.organization_id in org_ids or c.location_id in loc_ids or c.service_at_location_id in sal_ids]
    contact_ids = {c.id for c in contacts}

    def owned(rows, *fields):
        out = []
        for r in rows:
            refs = [getattr(r, f) for f in fields if getattr(r, f, None)]
            if refs and all(_owned_ref(f, getattr(r, f), sids, loc_ids, org_ids, sal_ids, contact_ids) for f in fields if getattr(r, f, None)):
                out.append(r)
        return out

    phones = owned(session.scalars(select(Phone).order_by(Phone.id)), "service_id", "location_id", "organization_id", "contact_id", "service_at_location_id")
    phone_ids = {p.id for p in phones}
    rows = {
        "taxonomy": list(session.scalars(select(Taxonomy).order_by(Taxonomy.id))),
        "taxonomy_term": list(session.scalars(select(TaxonomyTerm).order_by(TaxonomyTerm.id))),
        "organization": orgs, "program": programs, "service": services, "location": locations,
        "service_at_location": sals,
        "address": [a for a in session.scalars(select(Address).order_by(Address.id)) if a.location_id in loc_ids],
        "accessibility": [a for a in session.scalars(select(Accessibility).order_by(Accessibility.id)) if a.location_id in loc_ids],
        "contact": contacts, "phone": phones,
        "schedule": owned(session.scalars(select(Schedule).order_by(Schedule.id)), "service_id", "location_id", "service_at_location_id"),
        "attribute": [a for a in session.scalars(select(Attribute).order_by(Attribute.id)) if a.link_id in sids],
        "language": [l for l in owned(session.scalars(select(Language).order_by(Language.id)), "service_id", "location_id")
                     if not l.phone_id or l.phone_id in phone_ids],
        "service_area": [a for a in session.scalars(select(ServiceArea).order_by(ServiceArea.id))
                         if a.service_id in sids or (not a.service_id and a.service_at_location_id in sal_ids)],
        "cost_option": [c for c in session.scalars(select(CostOption).order_by(CostOption.id)) if c.service_id in sids],
        "url": owned(session.scalars(select(Url).order_by(Url.id)), "service_id", "organization_id"),
    }
    capacities = [c for c in session.scalars(select(ServiceCapacity).order_by(ServiceCapacity.id)) if c.service_id in sids]
    unit_ids = {c.unit_id for c in capacities}
    rows["service_capacity"] = capacities
    rows["unit"] = [u for u in session.scalars(select(Unit).order_by(Unit.id)) if u.id in unit_ids]
    return rows


def _owned_ref(field, value, sids, loc_ids, org_ids, sal_ids, contact_ids) -> bool:
    return value in {"service_id": sids, "location_id": loc_ids, "organization_id": org_ids,
                     "service_at_location_id": sal_ids, "contact_id": contact_ids}.get(field, set())


def export_csv(session, folder: Path, service_ids=None, problems: list | None = None) -> dict:
    """Write the datapackage into ``folder``; returns {table: rows written}.

    ``problems`` (when given) receives one dict per row breaking a constraint of the spec:
    ``{"file": "taxonomy_terms.csv", "row": 3, "id": "…", "field": "description", "reason": "required"}``
    (``row`` counts the header as 1, as frictionless does).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = selected_rows(session, service_ids)
    problems = problems if problems is not None else []
    counts, resources = {}, []
    for table in HSDS_TABLES:
        resource = spec_resources()[table]
        fields = resource["schema"]["fields"]
        seen: dict[str, set] = {f["name"]: set() for f in fields if f.get("constraints", {}).get("unique")}
        with (folder / resource["path"]).open("w", newline="", encoding="utf-8") as handle:
            writer = spreadsheets.writer(handle)
            writer.writerow([f["name"] for f in fields])
            for number, obj in enumerate(rows[table], start=2):
                cells = [_spec_cell(f, getattr(obj, f["name"], None)) for f in fields]
                writer.writerow(cells)
                for f, cell in zip(fields, cells):
                    empty = cell in ("", None)
                    reason = None
                    if empty and f.get("constraints", {}).get("required"):
                        reason = "required"
                    elif not empty and f["name"] in seen:
                        reason = "unique" if cell in seen[f["name"]] else None
                        seen[f["name"]].add(cell)
                    if reason:
                        problems.append({"file": resource["path"], "row": number, "id": obj.id, "field": f["name"], "reason": reason})
        counts[table] = len(rows[table])
        resources.append(resource)
    package = {"name": "weintervene-directory", "title": "WeIntervene directory export", "profile": "tabular-data-package",
               "version": HSDS_VERSION, "resources": resources}
    (folder / "datapackage.json").write_text(json.dumps(package, indent=2), encoding="utf-8")
    return counts


def export_json(session, path: Path, service_ids=None) -> int:
    """Write a JSON list of fully nested HSDS service documents; returns how many."""
    query = select(Service).where(visibility.clause(Service, None)).order_by(Service.id)
    if service_ids is not None:
        query = query.where(Service.id.in_(list(service_ids)))
    services = list(session.scalars(query))
    loader = Loader(session, visible_service=lambda s: visibility.allows(None, s)).prefetch()
    docs = []
    for s in services:
        doc = document(loader, "service", s)
        doc.pop("metadata", None)
        docs.append(doc)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(docs, indent=1, sort_keys=True), encoding="utf-8")
    return len(docs)


def services_in_category(session, term: str) -> list[str]:
    """Ids of services tagged with ``term`` or any term below it (for a filtered export)."""
    tree = TermTree.load(session)
    terms = tree.descendants(term)
    return sorted(set(session.scalars(select(Attribute.link_id).where(Attribute.taxonomy_term_id.in_(terms)))))
