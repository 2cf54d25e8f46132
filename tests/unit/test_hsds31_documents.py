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
