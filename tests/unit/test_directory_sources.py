"""One source, one set of records (issue 15): the source is the package's own
(``datapackage.json`` id/name) or the operator's (``--source``), never a folder or file name."""
import json
import shutil
import subprocess
import sys
import zipfile

import pytest
from sqlalchemy import func, select

from services.directory.importer import import_path
from services.directory.models import HSDS_TABLES, Service
from services.directory.sources import SourceRequired
from tests.support.shared_data import ROOT, dataset
from tests.unit.directory_fixtures import sqlite_directory

DATASETS = ["dc-orservices", "ilao", "ohana-sanmateo"]


@pytest.fixture
def session(tmp_path):
    s = sqlite_directory(tmp_path / "directory.db")
    yield s
    s.close()


def row_counts(session) -> dict:
    return {table: session.scalar(select(func.count()).select_from(model)) for table, model in HSDS_TABLES.items()}


def zip_folder(folder, archive_path, top):
    """The zip as a 211 publishes it: the files under one folder of its own name."""
    with zipfile.ZipFile(archive_path, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"{top}/{path.name}")
    return archive_path


@pytest.mark.parametrize("name", DATASETS)
def test_folder_then_zip_then_renamed_upload_is_one_set_of_records(session, tmp_path, name):
    """The package names itself in datapackage.json; the folder, the zip and a renamed copy
    of the zip all have other names, and every import lands on the same records."""
    folder = tmp_path / "unpacked" / f"{name}-2026-12"
    shutil.copytree(dataset(name), folder)
    (folder / "datapackage.json").write_text(json.dumps({"name": f"{name}-211", "resources": []}))
    first = import_path(session, folder)
    assert first["created"] > 0
    before = row_counts(session)
    as_zip = import_path(session, zip_folder(folder, tmp_path / f"{name}.zip", folder.name))
    renamed = tmp_path / "upload (2).zip"
    shutil.copy(tmp_path / f"{name}.zip", renamed)
    again = import_path(session, renamed)
    assert row_counts(session) == before, "a re-import as zip or under another name duplicated rows"
    assert [r["source"] for r in (first, as_zip, again)] == [f"{name}-211"] * 3
    for report in (as_zip, again):
        assert report["created"] == 0 and report["updated"] == 0


@pytest.mark.parametrize("name", DATASETS)
def test_a_bare_folder_is_one_source_by_the_name_the_operator_gives(session, tmp_path, name):
    """No descriptor: ``--source`` names it, and the zip under another name is the same source."""
    import_path(session, dataset(name), source=name)
    before = row_counts(session)
    archive = zip_folder(dataset(name), tmp_path / "export-final.zip", "export")
    again = import_path(session, archive, source=name)
    assert row_counts(session) == before and again["created"] == again["updated"] == 0
    with pytest.raises(SourceRequired, match="--source"):
        import_path(session, archive)  # no name at all: refused, nothing written
    assert row_counts(session) == before


def write_package(folder, package_name, service_name):
    folder.mkdir(parents=True)
    (folder / "datapackage.json").write_text(json.dumps({"name": package_name, "resources": []}))
    (folder / "organizations.csv").write_text(f"id,name,description\n1,{package_name} agency,\n", encoding="utf-8")
    (folder / "services.csv").write_text(f"id,organization_id,name,description,status\n1,1,{service_name},,active\n",
                                         encoding="utf-8")
    (folder / "services_at_location.csv").write_text("id,service_id,location_id\n", encoding="utf-8")
    return folder


def test_two_packages_sharing_a_folder_name_never_overwrite_each_other(session, tmp_path):
    """Both unpack into ``export/`` and both number their service 1: two services, both kept."""
    miami = write_package(tmp_path / "miami" / "export", "miami-211", "Food pantry")
    broward = write_package(tmp_path / "broward" / "export", "broward-211", "Legal aid")
    assert import_path(session, miami)["totals"]["service"]["created"] == 1
    second = import_path(session, broward)
    assert second["totals"]["service"]["created"] == 1 and second["updated"] == 0
    assert sorted(session.scalars(select(Service.name))) == ["Food pantry", "Legal aid"]


def test_the_cli_asks_for_a_source_when_the_package_names_none(tmp_path):
    import os

    env = {**os.environ, "WEINTERVENE_DATA_DIR": str(tmp_path / "data"), "PYTHONWARNINGS": "ignore"}
    env.pop("WEINTERVENE_DATABASE_URL_TEMPLATE", None)
    env.pop("WEINTERVENE_DIRECTORY_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "weintervene.cli", "import-directory", str(dataset("ilao"))],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "names no source" in done.stderr and "--source" in done.stderr
