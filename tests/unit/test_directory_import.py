"""Importing the real shared datasets (on SQLite): counts against the files, messy rows
reported with reasons, re-import changes nothing, export round-trips."""
import csv
import filecmp
import json

import pytest

from services.directory.exporter import export_csv, export_json
from services.directory.ids import stable_id
from services.directory.importer import import_path
from services.directory.layouts import LayoutError
from services.directory.models import Location, Service, ServiceSearch
from tests.support.shared_data import dataset, hsds_spec
from tests.unit.directory_fixtures import sqlite_directory


def rows(name, file):
    with (dataset(name) / file).open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def session(tmp_path):
    s = sqlite_directory(tmp_path / "directory.db")
    yield s
    s.close()


def test_ohana_counts_match_the_files(session):
    report = import_path(session, dataset("ohana-sanmateo"), source="ohana-sanmateo")
    assert report["layout"] == "ohana-csv"
    totals = report["totals"]
    assert totals["service"]["created"] == len(rows("ohana-sanmateo", "services.csv")) == 23
    assert totals["organization"]["created"] == len(rows("ohana-sanmateo", "organizations.csv")) == 8
    assert totals["location"]["created"] == len(rows("ohana-sanmateo", "locations.csv")) == 22
    assert totals["phone"]["created"] == len(rows("ohana-sanmateo", "phones.csv"))
    # Its taxonomy.csv is Open Eligibility, which the service carries already.
    assert totals["taxonomy_term"] == {"created": 0, "updated": 0, "unchanged": 290, "skipped": 0}
    # Data minimisation: unlisted columns are dropped and said so (admin e-mails above all).
    assert "admin_emails" in report["columns_dropped"]["locations.csv"]
    assert "keywords" in report["columns_dropped"]["services.csv"]
    assert session.query(Service).count() == 23


def test_dc_counts_match_the_files_and_dangling_rows_are_reported(session):
    report = import_path(session, dataset("dc-orservices"), source="dc-orservices")
    assert report["layout"] == "hsds2-csv"
    services = rows("dc-orservices", "services.csv")
    org_ids = {r["id"] for r in rows("dc-orservices", "organizations.csv")}
    dangling = [r for r in services if r["organization_id"] not in org_ids]
    t = report["totals"]["service"]
    assert t["created"] == len(services) - len(dangling) and t["skipped"] == len(dangling)
    assert report["totals"]["organization"]["created"] == len(org_ids) == 57
    skipped_services = [s for s in report["skipped_rows"] if s["table"] == "service"]
    assert {s["id"] for s in skipped_services} == {r["id"] for r in dangling}
    assert all("dangling reference" in s["reason"] and s["row"] >= 2 for s in skipped_services)
    # Every row of every file is accounted for exactly once.
    for table, file in (("service_at_location", "services_at_location.csv"), ("phone", "phones.csv"), ("schedule", "schedules.csv")):
        t = report["totals"][table]
        assert t["created"] + t["skipped"] == len(rows("dc-orservices", file))
    # Multi-line descriptions survive intact.
    multi = next(r for r in services if "\n" in r["description"] and r["organization_id"] in org_ids)
    stored = session.get(Service, stable_id("dc-orservices", "service", multi["id"]))
    assert stored.description == multi["description"].replace("\r\n", "\n").strip()
    # Locations without coordinates stay without them (no invention) but are placed for
    # distance search by their ZIP centroid.
    assert session.query(Location).filter(Location.latitude.is_(None)).count() > 0
    assert session.query(ServiceSearch).filter(ServiceSearch.latitude.isnot(None)).count() > 0


def test_ilao_blank_status_and_dangling_organizations(session):
    report = import_path(session, dataset("ilao"), source="ilao")
    assert report["layout"] == "hsds1-csv"
    services = rows("ilao", "services.csv")
    org_ids = {r["id"] for r in rows("ilao", "organizations.csv")}
    with_id = [r for r in services if r["id"].strip()]
    good = [r for r in with_id if r["organization_id"] in org_ids]
    t = report["totals"]["service"]
    assert t["created"] == len(good)
    assert t["created"] + t["skipped"] == len(services)
    assert report["notes"]["service.status: blank, read as active"] == len([r for r in with_id if not r["status"].strip()])
    assert {s.status for s in session.query(Service)} == {"active"}


def test_reimport_changes_nothing(session):
    for name in ("ohana-sanmateo", "dc-orservices", "ilao"):
        import_path(session, dataset(name), source=name)
    for name in ("ohana-sanmateo", "dc-orservices", "ilao"):
        again = import_path(session, dataset(name), source=name)
        assert again["created"] == 0 and again["updated"] == 0, (name, again["totals"])
        assert again["unchanged"] > 0


def test_messy_file_rows_are_cleaned_or_skipped_with_reasons(session, tmp_path):
    folder = tmp_path / "messy"
    folder.mkdir()
    (folder / "organizations.csv").write_text(
        "id,name,description,url,secret_notes\n1,Helpers,,www.helpers.example,do not keep\n", encoding="utf-8")
    (folder / "services.csv").write_text(
        "id,organization_id,name,description,url,status\n"
        '10,1,Tutoring,"Line one\nLine two",helpers.example/tutoring,\n'
        "11,99,Orphan,,,active\n"
        "10,1,Tutoring again,,,active\n"
        ",1,No id,,,active\n", encoding="utf-8")
    (folder / "services_at_location.csv").write_text("id,service_id,location_id\n", encoding="utf-8")
    report = import_path(session, folder, source="messy")
    assert report["layout"] == "hsds2-csv"
    assert report["columns_dropped"]["organizations.csv"] == ["secret_notes"]
    reasons = {s["row"]: s["reason"] for s in report["skipped_rows"] if s["table"] == "service"}
    assert "dangling reference" in reasons[3]
    assert "already used by row 2" in reasons[4]
    assert reasons[5] == "no id"
    service = session.get(Service, stable_id("messy", "service", "10"))
    assert service.url == "http://helpers.example/tutoring"
    assert service.description == "Line one\nLine two"
    assert service.status == "active"


def test_not_a_directory_export_is_refused(session, tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(LayoutError):
        import_path(session, tmp_path / "x.txt")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(LayoutError):
        import_path(session, tmp_path / "bad.json")


def test_spec_example_datapackage_imports(session):
    report = import_path(session, hsds_spec() / "examples" / "csv", source="hsds-spec-example")  # its descriptor is a link left as text
    assert report["layout"] == "hsds3-csv"
    assert report["totals"]["service"]["created"] == 1
    assert session.get(Service, "ac148810-d857-441c-9679-408f346de14b").minimum_age == 12


def test_csv_datapackage_round_trip_is_exact(session, tmp_path):
    for name in ("ohana-sanmateo", "dc-orservices"):
        import_path(session, dataset(name), source=name)
    first = tmp_path / "first"
    export_csv(session, first)
    fresh = sqlite_directory(tmp_path / "fresh.db")
    report = import_path(fresh, first)
    assert report["skipped"] == 0 and report["layout"] == "hsds3-csv"
    second = tmp_path / "second"
    export_csv(fresh, second)
    for f in sorted(p.name for p in first.iterdir()):
        assert filecmp.cmp(first / f, second / f, shallow=False), f"{f} differs after a round trip"
    again = import_path(fresh, first)
    assert again["created"] == again["updated"] == 0


def test_json_round_trip_is_exact(session, tmp_path):
    import_path(session, dataset("ohana-sanmateo"), source="ohana-sanmateo")
    export_json(session, tmp_path / "a.json")
    fresh = sqlite_directory(tmp_path / "fresh.db")
    report = import_path(fresh, tmp_path / "a.json", source="round-trip")
    assert report["layout"] == "hsds-json" and report["skipped"] == 0
    assert report["totals"]["service"]["created"] == 23
    export_json(fresh, tmp_path / "b.json")
    assert json.loads((tmp_path / "a.json").read_text()) == json.loads((tmp_path / "b.json").read_text())
    assert import_path(session, tmp_path / "a.json", source="round-trip")["created"] == 0
