"""Messy rows cleaned and the cleaning counted (issue 15): literal ``\\n`` escapes and mojibake."""
import json

import pytest

from services.directory.ids import stable_id
from services.directory.importer import import_path
from services.directory.models import Organization, Service
from tests.unit.directory_fixtures import sqlite_directory


@pytest.fixture
def session(tmp_path):
    s = sqlite_directory(tmp_path / "directory.db")
    yield s
    s.close()


def test_mojibake_and_literal_line_breaks_are_repaired_and_counted(session, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "datapackage.json").write_text(json.dumps({"name": "messy-211", "resources": []}))
    # What a UTF-8 export looks like after one pass through Windows-1252, and a dump escaped twice.
    (folder / "organizations.csv").write_text("id,name,description\n1,Centro HispÃ¡nico,\n", encoding="utf-8")
    (folder / "services.csv").write_text(
        "id,organization_id,name,description,status\n"
        '1,1,Tutoría para niÃ±os,"Monday: homework help\\nFriday: reading club",active\n'
        '2,1,“Quoted” as written,Plain text,active\n', encoding="utf-8")
    (folder / "services_at_location.csv").write_text("id,service_id,location_id\n", encoding="utf-8")
    report = import_path(session, folder)
    tutoring = session.get(Service, stable_id("messy-211", "service", "1"))
    assert tutoring.name == "Tutoría para niños"
    assert tutoring.description == "Monday: homework help\nFriday: reading club"
    assert session.get(Organization, stable_id("messy-211", "organization", "1")).name == "Centro Hispánico"
    # Only mojibake is repaired: the source's curly quotes are not "fixed".
    assert session.get(Service, stable_id("messy-211", "service", "2")).name == "“Quoted” as written"
    assert report["notes"]["service.name: mojibake repaired"] == 1
    assert report["notes"]["organization.name: mojibake repaired"] == 1
    assert report["notes"]["service.description: literal \\n turned into line breaks"] == 1
    again = import_path(session, folder)  # the cleaning is the same every time: nothing changes
    assert again["created"] == again["updated"] == 0


def test_the_shared_dc_data_is_cleaned_where_it_is_broken(session):
    """dc-orservices has Mac-Roman mojibake ("¬†" for a no-break space) in a service description
    and literal ``\\n`` in its taxonomy descriptions: repaired, and counted."""
    from sqlalchemy import select

    from services.directory.models import TaxonomyTerm
    from tests.support.shared_data import dataset

    report = import_path(session, dataset("dc-orservices"), source="dc-orservices")
    assert report["notes"]["service.description: mojibake repaired"] == 1
    assert report["notes"]["taxonomy_term.description: literal \\n turned into line breaks"] == 11
    assert not any("¬†" in (d or "") for d in session.scalars(select(Service.description)))
    assert not any("\\n" in (d or "") for d in session.scalars(select(TaxonomyTerm.description)))
