"""The report is whole (issue 15): every skipped row listed, written by ``--report FILE`` as CSV."""
import csv
import json
import os
import subprocess
import sys

import pytest

from services.directory.import_report import COLUMNS
from services.directory.importer import import_path
from tests.support.shared_data import ROOT
from tests.unit.directory_fixtures import sqlite_directory

ORPHANS = 2100  # more than the 2000 the report used to list


@pytest.fixture
def session(tmp_path):
    s = sqlite_directory(tmp_path / "directory.db")
    yield s
    s.close()


def orphan_package(folder, orphans=ORPHANS):
    """One good service and ``orphans`` whose organization is in no file (skipped, each with its reason)."""
    folder.mkdir()
    (folder / "datapackage.json").write_text(json.dumps({"name": "orphans-211", "resources": []}))
    (folder / "organizations.csv").write_text("id,name,description\n1,Agency,\n", encoding="utf-8")
    lines = ["id,organization_id,name,description,status", "1,1,Kept,,active"]
    lines += [f"{n},999,=HYPERLINK(\"x\") {n},,active" for n in range(2, orphans + 2)]
    (folder / "services.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "services_at_location.csv").write_text("id,service_id,location_id\n", encoding="utf-8")
    return folder


def test_every_skipped_row_is_listed_none_cut(session, tmp_path):
    report = import_path(session, orphan_package(tmp_path / "export"))
    listed = [s for s in report["skipped_rows"] if s["file"] == "services.csv"]
    assert len(listed) == report["totals"]["service"]["skipped"] == ORPHANS
    assert sorted(s["row"] for s in listed) == list(range(3, ORPHANS + 3))


def test_cli_report_file_holds_every_skipped_row_with_file_row_and_reason(tmp_path):
    folder = orphan_package(tmp_path / "export")
    env = {**os.environ, "WEINTERVENE_DATA_DIR": str(tmp_path / "data"), "PYTHONWARNINGS": "ignore"}
    env.pop("WEINTERVENE_DATABASE_URL_TEMPLATE", None)
    env.pop("WEINTERVENE_DIRECTORY_DATABASE_URL", None)
    out = tmp_path / "skipped.csv"
    done = subprocess.run([sys.executable, "-m", "weintervene.cli", "import-directory", str(folder), "--report", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"and {ORPHANS - 20} more skipped rows" in done.stdout  # the terminal says what it does not show
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == COLUMNS
    body = [dict(zip(COLUMNS, r)) for r in rows[1:]]
    assert len(body) == ORPHANS
    assert {r["file"] for r in body} == {"services.csv"} and sorted(int(r["row"]) for r in body) == list(range(3, ORPHANS + 3))
    assert all("organization_id 999" in r["reason"] and "dangling" in r["reason"] for r in body)
