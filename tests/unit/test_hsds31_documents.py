"""Every /hsds/ answer (list and item, each shape) on the demo directory and the imported
shared DC data validates strictly against the local HSDS 3.1 compiled schemas, and against
3.0's requirements; the root says 3.1; organizations filter by taxonomy (new in 3.1)."""
import pytest

from services.directory import hsds_api
from services.directory.demo import load_demo
from services.directory.importer import import_path
from services.directory.models import Attribute, Organization, Service
from services.directory.taxonomy import OPEN_ELIGIBILITY_ID
from tests.support.hsds_schema import assert_valid, assert_valid_page
from tests.support.shared_data import dataset
from tests.unit.directory_fixtures import sqlite_directory


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    s = sqlite_directory(tmp_path_factory.mktemp("hsds31") / "directory.db")
    load_demo(s, count=60)
    import_path(s, dataset("dc-orservices"), source="dc-orservices")
    yield s
    s.close()


def page(**params):
    return {"page": 1, "per_page": 500, "format": "json", **params}


def test_root_reports_hsds_3_1_and_its_profile():
    root = hsds_api.root("http://localhost")
    assert root["version"] == "3.1"
    assert root["profile"].startswith("https://") and "3.1" in root["openapi_url"]


def test_every_list_and_item_validates_strictly_against_3_1(session):
    services = hsds_api.services(session, page(), None)
    assert services["total_items"] > 100  # demo and DC both
    assert_valid_page("service_list", services)
    assert_valid_page("service", hsds_api.services(session, page(full=True), None))
    assert_valid_page("service_list", hsds_api.services(session, page(minimal=True), None))
    for item in services["contents"][:150]:
        assert_valid("service", hsds_api.service(session, item["id"], None))

    organizations = hsds_api.organizations(session, page(), None)
    assert_valid_page("organization_list", organizations)
    assert_valid_page("organization", hsds_api.organizations(session, page(full=True), None))
    for item in organizations["contents"]:
        assert_valid("organization", hsds_api.organization(session, item["id"], None))

    sals = hsds_api.service_at_locations(session, page(), None)
    assert sals["total_items"] > 0
    assert_valid_page("service_at_location_list", sals)
    assert_valid_page("service_at_location", hsds_api.service_at_locations(session, page(full=True), None))
    for item in sals["contents"][:150]:
        assert_valid("service_at_location", hsds_api.service_at_location(session, item["id"], None))

    taxonomies = hsds_api.taxonomies(session, page())
    assert_valid_page("taxonomy", taxonomies)
    for item in taxonomies["contents"]:
        assert_valid("taxonomy", hsds_api.taxonomy(session, item["id"]))
    terms = hsds_api.taxonomy_terms(session, page())
    assert_valid_page("taxonomy_term", terms)
    for item in terms["contents"][:100]:
        assert_valid("taxonomy_term", hsds_api.taxonomy_term(session, item["id"]))


def test_organizations_filter_by_taxonomy_term_and_taxonomy(session):
    term = session.query(Attribute).filter(Attribute.link_entity.in_(["service", None])).first().taxonomy_term_id
    filed = hsds_api.organizations(session, page(taxonomy_term_id=term), None)
    everyone = hsds_api.organizations(session, page(), None)
    assert 0 < filed["total_items"] < everyone["total_items"]
    expected = {s.organization_id for s in session.query(Service).filter(
        Service.id.in_(session.query(Attribute.link_id).filter(Attribute.taxonomy_term_id == term)))}
    assert {o["id"] for o in filed["contents"]} == expected
    assert_valid_page("organization_list", filed)
    by_taxonomy = hsds_api.organizations(session, page(taxonomy_id=OPEN_ELIGIBILITY_ID), None)
    assert filed["total_items"] <= by_taxonomy["total_items"] <= session.query(Organization).count()


def test_attribute_label_is_imported_exported_and_served(tmp_path):
    """HSDS 3.1's ``attribute.label``: read from a package, written back, served strictly valid."""
    import csv

    from services.directory.exporter import export_csv

    source = sqlite_directory(tmp_path / "source.db")
    load_demo(source, count=5)
    export_csv(source, tmp_path / "package")
    source.close()
    attributes = tmp_path / "package" / "attributes.csv"
    with attributes.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows[0]["label"] = "Ages served (years)"
    with attributes.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    target = sqlite_directory(tmp_path / "target.db")
    import_path(target, tmp_path / "package", source="label-check")
    stored = target.get(Attribute, rows[0]["id"]) or target.query(Attribute).filter(Attribute.label.is_not(None)).one()
    assert stored.label == "Ages served (years)"
    served = hsds_api.service(target, stored.link_id, None)
    assert {"label": "Ages served (years)"}.items() <= next(a for a in served["attributes"] if a.get("label")).items()
    assert_valid("service", served)
    export_csv(target, tmp_path / "again")
    with (tmp_path / "again" / "attributes.csv").open(newline="", encoding="utf-8") as handle:
        assert "Ages served (years)" in {r["label"] for r in csv.DictReader(handle)}
    target.close()


def test_capacity_unit_urls_and_areas_at_a_location_are_imported_served_and_exported(tmp_path):
    """HSDS 3.1's ``service_capacity`` + ``unit``, ``url`` (``service.additional_urls``,
    ``organization.additional_websites``) and ``service_at_location.service_areas``: read from a
    3.1 package, stored, served strictly valid, written back to the datapackage."""
    import csv
    import json

    from frictionless import Package

    from services.directory.exporter import export_csv
    from services.directory.models import ServiceArea, ServiceAtLocation, ServiceCapacity, Unit, Url

    source = sqlite_directory(tmp_path / "source.db")
    load_demo(source, count=5)
    export_csv(source, tmp_path / "package")
    service = source.query(Service).order_by(Service.id).first()
    sal = source.query(ServiceAtLocation).order_by(ServiceAtLocation.id).first()
    org_id = service.organization_id
    source.close()
    unit_id, capacity_id = "187a37a2-7b40-11ef-9790-dbf7623d4407", "8896b788-7b3e-11ef-8db9-7f3d040352b3"
    service_url, org_url, area_id = ("0a5b4c1e-0000-4000-8000-000000000001", "0a5b4c1e-0000-4000-8000-000000000002",
                                     "0a5b4c1e-0000-4000-8000-000000000003")

    def write(name, header, rows, append=False):
        path = tmp_path / "package" / name
        existing = []
        if append:
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                header, existing = reader.fieldnames, list(reader)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            writer.writerows(existing + rows)

    write("units.csv", ["id", "name", "scheme", "identifier", "uri"], [{"id": unit_id, "name": "Seat", "scheme": "", "identifier": "", "uri": ""}])
    write("service_capacity.csv", ["id", "service_id", "unit_id", "available", "maximum", "description", "updated"],
          [{"id": capacity_id, "service_id": service.id, "unit_id": unit_id, "available": "12", "maximum": "20",
            "description": "Seats in the spring tutoring group", "updated": "2026-11-30T14:23:06.5+01:00"}])
    write("url.csv", ["id", "label", "url", "organization_id", "service_id"],
          [{"id": service_url, "label": "Sign-up form", "url": "https://example.org/sign-up", "organization_id": "", "service_id": service.id},
           {"id": org_url, "label": "Annual report", "url": "https://example.org/report", "organization_id": org_id, "service_id": ""}])
    write("service_areas.csv", None, [{"id": area_id, "service_id": "", "service_at_location_id": sal.id, "name": "Ward 7",
                                        "description": "", "extent": "", "extent_type": "", "uri": ""}], append=True)

    target = sqlite_directory(tmp_path / "target.db")
    report = import_path(target, tmp_path / "package", source="hsds31-tables")
    for table in ("unit", "service_capacity", "url"):
        assert report["totals"][table]["created"] >= 1 and report["totals"][table]["skipped"] == 0, (table, report["skipped_rows"])
    capacity = target.get(ServiceCapacity, capacity_id)
    assert (capacity.available, capacity.maximum, capacity.unit_id) == (12, 20, unit_id)
    assert capacity.updated.isoformat().startswith("2026-11-30T13:23:06.5")
    assert target.get(Unit, unit_id).name == "Seat" and target.get(Url, org_url).organization_id == org_id
    assert target.get(ServiceArea, area_id).service_at_location_id == sal.id

    served = hsds_api.service(target, service.id, None)
    assert_valid("service", served)
    assert served["capacities"][0]["available"] == 12 and served["capacities"][0]["unit"]["name"] == "Seat"
    assert {"label": "Sign-up form", "url": "https://example.org/sign-up"}.items() <= served["additional_urls"][0].items()
    organization = hsds_api.organization(target, org_id, None)
    assert_valid("organization", organization)
    assert [u["url"] for u in organization["additional_websites"]] == ["https://example.org/report"]
    at_location = hsds_api.service_at_location(target, sal.id, None)
    assert_valid("service_at_location", at_location)
    assert [a["name"] for a in at_location["service_areas"]] == ["Ward 7"]

    problems = []
    counts = export_csv(target, tmp_path / "again", problems=problems)
    assert counts["service_capacity"] == counts["unit"] == 1 and counts["url"] == 2
    with (tmp_path / "again" / "service_capacity.csv").open(newline="", encoding="utf-8") as handle:
        assert [(r["available"], r["unit_id"]) for r in csv.DictReader(handle)] == [("12", unit_id)]
    # frictionless on the whole package (foreign keys need every resource): the new resources
    # pass outright, and any other error is a row the export reported (as in test_hsds_export_datapackage).
    descriptor = json.loads((tmp_path / "again" / "datapackage.json").read_text())
    checked = Package.from_descriptor(descriptor, basepath=str(tmp_path / "again")).validate()
    paths = {r["name"]: r["path"] for r in descriptor["resources"]}
    reported = {(p["file"], p["row"], p["field"]) for p in problems}
    for task in checked.tasks:
        for row, field, kind in task.flatten(["rowNumber", "fieldName", "type"]):
            assert task.name not in ("unit", "service_capacity", "url"), (task.name, row, field, kind)
            assert (paths[task.name], row, field) in reported, (task.name, row, field, kind)
    again = import_path(target, tmp_path / "again", source="hsds31-tables")
    assert again["created"] == 0 and again["updated"] == 0, again["totals"]
    target.close()
