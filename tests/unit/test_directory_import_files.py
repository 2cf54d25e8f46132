"""Every file of a package accounted for, the HSDS 1.x/2.0 files real 211 exports carry
(weekly and holiday hours, a taxonomy of their own, languages whose ids repeat), and the
layout recognised from the files' content (issue 15, "Import")."""
import csv
import json
import shutil

import pytest

from services.directory.ids import stable_id
from services.directory.importer import import_path
from services.directory.layouts import LayoutError
from services.directory.models import Language, Schedule, Service, TaxonomyTerm
from services.directory.schemas import SearchQuerySchema
from services.directory.search import search
from services.directory.views import cards
from tests.support.shared_data import dataset, hsds_spec
from tests.unit.directory_fixtures import sqlite_directory

VIEWER = {"tenant_id": "00000000-0000-4000-8000-00000000000a", "district_id": None, "kind": "school"}
OUTCOMES = ("created", "updated", "unchanged", "skipped")


@pytest.fixture
def session(tmp_path):
    s = sqlite_directory(tmp_path / "directory.db")
    yield s
    s.close()


def csv_rows(path):
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def find(session, **params):
    params = SearchQuerySchema().load({"per_page": 100, **params})
    params = {k: str(v) if k == "category" else v for k, v in params.items()}
    found = search(session, params, VIEWER, cards=lambda ids: cards(session, ids))
    return {item["id"] for item in found["items"]}


def assert_every_file_accounted_for(report, folder, *more_folders):
    by_file = {f["file"]: f for f in report["files"]}
    assert len(by_file) == len(report["files"]), "a file listed twice"
    present = sorted(p.name for d in (folder, *more_folders) for p in d.iterdir() if p.is_file())
    assert sorted(by_file) == present, "files present but not in the report (or the reverse)"
    for name, f in by_file.items():
        if name.endswith(".csv") and (folder / name).exists():
            assert f["rows"] == csv_rows(folder / name), name
        if f["status"] == "read" and f["table"]:
            assert f["rows"] == sum(f[k] for k in OUTCOMES), f"{name}: rows in != created+updated+unchanged+skipped"
        else:
            assert f["status"] in ("not understood", "read") and sum(f[k] for k in OUTCOMES) == 0, name


@pytest.mark.parametrize("name", ["dc-orservices", "ilao", "ohana-sanmateo"])
def test_every_file_of_the_shared_datasets_is_read_or_reported(session, name):
    report = import_path(session, dataset(name), source=name)
    assert_every_file_accounted_for(report, dataset(name))
    # The table totals are the files' own lines plus what their cells gave (no row counted twice).
    totals = {}
    for f in report["files"]:
        if f["table"]:
            totals.setdefault(f["table"], dict.fromkeys(OUTCOMES, 0))
            for k in OUTCOMES:
                totals[f["table"]][k] += f[k]
        for table, counts in f["derived"].items():
            totals.setdefault(table, dict.fromkeys(OUTCOMES, 0))
            for k in OUTCOMES:
                totals[table][k] += counts[k]
    nonzero = lambda d: {t: c for t, c in d.items() if any(c.values())}  # noqa: E731
    assert nonzero(totals) == nonzero(report["totals"])
    again = import_path(session, dataset(name), source=name)
    assert_every_file_accounted_for(again, dataset(name))
    for f in again["files"]:
        if f["status"] == "read" and f["table"]:
            assert f["created"] == f["updated"] == 0, f["file"]


def test_not_understood_files_are_listed_with_their_rows(session):
    dc = {f["file"]: f for f in import_path(session, dataset("dc-orservices"), source="dc-orservices")["files"]}
    assert dc["taxonomy_types.csv"]["status"] == "not understood"
    assert dc["taxonomy_types.csv"]["rows"] == 433 and "copy" in dc["taxonomy_types.csv"]["note"]
    ilao = {f["file"]: f for f in import_path(session, dataset("ilao"), source="ilao")["files"]}
    assert ilao["LICENSE-hsds-transformer"]["status"] == "not understood"
    assert ilao["LICENSE-hsds-transformer"]["rows"] is None


def test_ohana_holiday_hours_are_kept_apart_from_weekly_hours(session):
    report = import_path(session, dataset("ohana-sanmateo"), source="ohana-sanmateo")
    holidays = {f["file"]: f for f in report["files"]}["holiday_schedules.csv"]
    assert holidays["status"] == "read" and holidays["created"] == 4
    stored = session.query(Schedule).filter(Schedule.description.like("Holiday%")).all()
    by_start = {s.valid_from: s for s in stored}
    assert by_start["2015-12-24"].opens_at == "10:00" and by_start["2015-12-24"].closes_at == "16:00"
    assert by_start["2015-12-24"].valid_to == "2015-12-24"
    closed = [s for s in stored if s.description.startswith("Holiday: closed")]
    assert closed and all(s.opens_at is None and s.byday is None for s in closed)
    # Weekly hours are unchanged by the holidays: Monday 08:00-17:00 at location 22.
    weekly = session.query(Schedule).filter(Schedule.byday == "MO",
                                            Schedule.location_id == stable_id("ohana-sanmateo", "location", "22")).one()
    assert (weekly.opens_at, weekly.closes_at, weekly.freq) == ("08:00", "17:00", "WEEKLY")


def write_csv(path, header, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def miami_export(tmp_path):
    """A small 211 export in the HSDS 2.0 CSV layout with the HSDS 1.x files real ones carry:
    AIRS codes in taxonomy.csv, regular and holiday schedules, a languages.csv whose row id
    repeats the service id, a contact with a phone column."""
    folder = tmp_path / "export-2026-12"
    folder.mkdir()
    write_csv(folder / "organizations.csv", ["id", "name", "description"], [["o1", "Little Haiti Center", "A center"]])
    write_csv(folder / "services.csv", ["id", "organization_id", "name", "description", "status"], [
        ["s1", "o1", "Pantry", "Groceries every week", "active"],
        ["s2", "o1", "Youth Mentoring", "After school", "active"],
        ["s3", "o1", "Tax Clinic", "Free tax preparation", "active"],
    ])
    write_csv(folder / "locations.csv", ["id", "organization_id", "name", "latitude", "longitude"],
              [["l1", "o1", "Main office", "25.83", "-80.19"]])
    write_csv(folder / "services_at_location.csv", ["id", "service_id", "location_id"],
              [["sl1", "s1", "l1"], ["sl2", "s2", "l1"], ["sl3", "s3", "l1"]])
    write_csv(folder / "regular_schedules.csv", ["id", "service_id", "location_id", "service_at_location_id", "weekday",
                                                 "opens_at", "closes_at"], [
        ["r1", "s1", "", "", "Monday", "9:00 AM", "5:00 PM"],
        ["r2", "s1", "", "", "Wednesday", "9:00 AM", "12:00 PM"],
        ["r3", "s2", "", "", "Saturday", "10:00", "14:00"],
    ])
    write_csv(folder / "holiday_schedules.csv", ["id", "service_id", "location_id", "service_at_location_id", "closed",
                                                 "opens_at", "closes_at", "start_date", "end_date"],
              [["h1", "s1", "", "", "true", "", "", "12/25/2026", "12/25/2026"]])
    write_csv(folder / "taxonomy.csv", ["id", "name", "parent_id", "parent_name", "vocabulary"], [
        ["BD", "Basic Needs", "", "", "AIRS"],
        ["BD-1800", "Food", "BD", "Basic Needs", "AIRS"],
        ["BD-1800.2000", "Food Pantries", "BD-1800", "Food", "AIRS"],
        ["PH-1000", "Youth Development", "", "", "AIRS"],
    ])
    write_csv(folder / "services_taxonomy.csv", ["id", "service_id", "taxonomy_id", "taxonomy_detail"],
              [["1", "s1", "BD-1800.2000", ""], ["2", "s2", "PH-1000", ""], ["3", "s3", "NO-SUCH", ""]])
    write_csv(folder / "languages.csv", ["id", "service_id", "location_id", "language"], [
        ["s1", "s1", "", "English"], ["s1", "s1", "", "Spanish"], ["s1", "s1", "", "Haitian Creole"],
        ["s2", "s2", "", "English"],
    ])
    write_csv(folder / "contacts.csv", ["id", "organization_id", "service_id", "name", "title", "phone_number"],
              [["c1", "o1", "s1", "Marie", "Coordinator", "305-555-0100"]])
    write_csv(folder / "eligibility.csv", ["id", "service_id", "eligibility"],
              [["e1", "s2", "Ages 12-18"], ["e2", "s2", "Miami-Dade residents"], ["e3", "s9", "Seniors"]])
    write_csv(folder / "funding.csv", ["id", "service_id", "source"], [["f1", "s1", "County"], ["f2", "s2", "United Way"]])
    return folder


def test_a_211_export_keeps_hours_taxonomy_languages_and_contact_phones(session, miami_export):
    report = import_path(session, miami_export, source="miami")
    assert_every_file_accounted_for(report, miami_export)
    files = {f["file"]: f for f in report["files"]}
    assert files["funding.csv"]["status"] == "not understood" and files["funding.csv"]["rows"] == 2
    s1, s2, s3 = (stable_id("miami", "service", s) for s in ("s1", "s2", "s3"))

    # Weekly hours as the model keeps them, and "open Monday 10:00" finds the pantry only.
    monday = session.query(Schedule).filter(Schedule.service_id == s1, Schedule.byday == "MO").one()
    assert (monday.freq, monday.opens_at, monday.closes_at) == ("WEEKLY", "09:00", "17:00")
    assert find(session, open_day="MO", open_time="10:00") == {s1}
    assert find(session, open_day="SA", open_time="11:00") == {s2}
    assert session.query(Schedule).filter(Schedule.valid_from == "2026-12-25", Schedule.service_id == s1).count() == 1

    # Every languages.csv row kept though the id repeats; the language filter finds them.
    assert files["languages.csv"]["created"] == 4 and files["languages.csv"]["skipped"] == 0
    assert {l.code for l in session.query(Language).filter(Language.service_id == s1)} == {"en", "es", "ht"}
    assert find(session, language="es") == {s1}

    # The export's taxonomy is one of its own, with its codes and parents, filterable with descendants.
    food = session.get(TaxonomyTerm, stable_id("miami", "taxonomy_term", "BD-1800"))
    assert (food.code, food.name, food.taxonomy) == ("BD-1800", "Food", "AIRS")
    assert food.parent_id == stable_id("miami", "taxonomy_term", "BD")
    assert find(session, category=stable_id("miami", "taxonomy_term", "BD")) == {s1}
    assert find(session, category=stable_id("miami", "taxonomy_term", "PH-1000")) == {s2}
    links = files["services_taxonomy.csv"]
    assert (links["created"], links["skipped"]) == (2, 1)
    assert any(s["file"] == "services_taxonomy.csv" and "dangling" in s["reason"] for s in report["skipped_rows"])

    # eligibility.csv (a table HSDS 3.0 dropped) lands in the service's eligibility_description.
    assert session.get(Service, s2).eligibility_description == "Ages 12-18; Miami-Dade residents"
    eligibility = files["eligibility.csv"]
    assert (eligibility["status"], eligibility["created"], eligibility["skipped"]) == ("read", 2, 1)
    assert any(s["file"] == "eligibility.csv" and s["row"] == 4 and "s9" in s["reason"] for s in report["skipped_rows"])

    # A contact's phone column becomes the contact's phone.
    assert files["contacts.csv"]["derived"]["phone"]["created"] == 1
    assert session.get(Service, s3) is not None
    again = {f["file"]: f for f in import_path(session, miami_export, source="miami")["files"]}
    assert again["eligibility.csv"]["unchanged"] == 2 and again["languages.csv"]["unchanged"] == 4


def test_a_datapackage_with_its_csvs_under_data_is_read(session, tmp_path):
    package = tmp_path / "package"
    shutil.copytree(hsds_spec() / "examples" / "csv", package / "data")
    (package / "data" / "datapackage.json").unlink()  # the descriptor sits beside data/, as published
    meta = json.loads((hsds_spec() / "datapackage.json").read_text())
    for resource in meta["resources"]:
        resource["path"] = "data/" + resource["path"].split("/")[-1]
    (package / "datapackage.json").write_text(json.dumps(meta))
    report = import_path(session, package)
    assert report["layout"] == "hsds3-csv"
    assert report["totals"]["service"]["created"] == 1
    assert_every_file_accounted_for(report, package / "data", package)
    assert {f["file"] for f in report["files"]} >= {"datapackage.json", "services.csv"}
    by_descriptor = import_path(session, package / "datapackage.json")  # the descriptor's path given instead
    assert_every_file_accounted_for(by_descriptor, package / "data", package)
    assert by_descriptor["totals"]["service"]["unchanged"] == 1


def test_a_folder_without_a_directory_table_is_an_error_not_created_0(session, tmp_path):
    folder = tmp_path / "not-a-directory"
    folder.mkdir()
    (folder / "datapackage.json").write_text(json.dumps({"name": "budget", "resources": [{"path": "budget.csv"}]}))
    write_csv(folder / "budget.csv", ["year", "amount"], [["2026", "10"]])
    with pytest.raises(LayoutError, match="services.csv"):
        import_path(session, folder)
    write_csv(folder / "services.csv", ["year", "amount"], [["2026", "10"]])
    with pytest.raises(LayoutError):
        import_path(session, folder)


def test_an_upload_no_reader_knows_is_refused_before_a_job_starts(tmp_path):
    """The API (``start_import``): 400 ``unrecognised_layout``, never a job that completes with 0 created."""
    import base64
    import io
    import zipfile

    from nameko.testing.services import worker_factory

    from services.directory.models import ImportJob
    from services.directory.service import DirectoryService
    from weintervene.errors import BadRequest

    session = sqlite_directory(tmp_path / "directory.db")
    try:
        worker = worker_factory(DirectoryService, db=session)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("budget/budget.csv", "year,amount\n2026,10\n")
        operator = {"user_id": "op", "tenant_id": None, "role": "operator", "district_id": None}
        with pytest.raises(BadRequest) as refused:
            worker.start_import(operator, "budget.zip", base64.b64encode(buffer.getvalue()).decode())
        assert refused.value.code == "unrecognised_layout" and "services.csv" in str(refused.value)
        assert session.query(ImportJob).count() == 0
    finally:
        session.close()


def test_cli_lists_every_file_and_fails_on_an_unrecognised_folder(tmp_path, miami_export):
    import os
    import subprocess
    import sys

    env = {**os.environ, "WEINTERVENE_DATA_DIR": str(tmp_path / "data"), "PYTHONWARNINGS": "ignore"}
    env.pop("WEINTERVENE_DATABASE_URL_TEMPLATE", None)
    env.pop("WEINTERVENE_DIRECTORY_DATABASE_URL", None)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "weintervene.cli", "import-directory", *args], env=env,
                              capture_output=True, text=True, timeout=300)

    done = cli(str(miami_export), "--source", "miami")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "regular_schedules.csv" in done.stdout and "read as schedule: 3 rows in, created 3" in done.stdout
    assert "funding.csv" in done.stdout and "NOT UNDERSTOOD, 2 rows not imported" in done.stdout
    other = tmp_path / "not-a-directory"
    other.mkdir()
    (other / "datapackage.json").write_text(json.dumps({"name": "budget", "resources": [{"path": "budget.csv"}]}))
    write_csv(other / "budget.csv", ["year", "amount"], [["2026", "10"]])
    refused = cli(str(other))
    assert refused.returncode == 2 and "cannot import" in refused.stderr and "services.csv" in refused.stderr


def test_the_zip_as_published_is_read_with_every_member_accounted_for(session, tmp_path):
    """A zip holding one folder (as a 211 publishes it), its licence file included."""
    import zipfile

    archive_path = tmp_path / "ohana-export.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        for path in dataset("ohana-sanmateo").iterdir():
            archive.write(path, f"ohana-sanmateo-2026/{path.name}")
    report = import_path(session, archive_path, source="ohana-sanmateo")
    assert report["layout"] == "ohana-csv" and report["totals"]["service"]["created"] == 23
    assert_every_file_accounted_for(report, dataset("ohana-sanmateo"))


def test_accessibility_for_disabilities_is_kept_on_its_location(session):
    """dc-orservices' accessibility_for_disabilities.csv -> HSDS 3.0 accessibility rows, served with the location."""
    from services.directory.hsds import Loader, document
    from services.directory.models import Accessibility

    report = import_path(session, dataset("dc-orservices"), source="dc-orservices")
    line = {f["file"]: f for f in report["files"]}["accessibility_for_disabilities.csv"]
    with (dataset("dc-orservices") / "accessibility_for_disabilities.csv").open(newline="", encoding="utf-8-sig") as handle:
        records = list(csv.DictReader(handle))
    known = {stable_id("dc-orservices", "location", r["id"]) for r in csv.DictReader(
        (dataset("dc-orservices") / "locations.csv").open(newline="", encoding="utf-8-sig"))}
    placed = [r for r in records if stable_id("dc-orservices", "location", r["location_id"]) in known]
    assert (line["status"], line["created"], line["skipped"]) == ("read", len(placed), len(records) - len(placed))
    assert placed, "the dataset has accessibility rows for known locations"
    first = placed[0]
    location_id = stable_id("dc-orservices", "location", first["location_id"])
    stored = session.query(Accessibility).filter(Accessibility.location_id == location_id).one()
    assert (stored.description, stored.details) == (first["accessibility"] or None, first["details"] or None)
    doc = document(Loader(session), "service_at_location", _a_service_at(session, location_id))
    assert doc["location"]["accessibility"][0]["id"] == stored.id


def _a_service_at(session, location_id):
    from services.directory.models import ServiceAtLocation

    found = session.query(ServiceAtLocation).filter(ServiceAtLocation.location_id == location_id).first()
    assert found is not None, "the shared data has a service at that location"
    return found
