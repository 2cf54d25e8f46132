"""Bad input to the directory import (issue 15, "Bad input"): CSVs in the encodings Windows
tools write, decoded right and named in the report; a 50 MB file with one bad row reported
row by row; a malformed package refused with its reason (API 400, CLI exit 2) and nothing
of it written. Every file here is made by the test from the shared DC data."""
import base64
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from sqlalchemy import func, select

from services.directory.csv_files import decode, read_table
from services.directory.ids import stable_id
from services.directory.importer import import_path
from services.directory.layouts import LayoutError
from services.directory.models import ImportJob, Organization, Service
from tests.support.shared_data import dataset
from tests.unit.directory_fixtures import sqlite_directory

OPERATOR = {"user_id": "op", "tenant_id": None, "role": "operator", "district_id": None}


@pytest.fixture
def session(tmp_path):
    s = sqlite_directory(tmp_path / "directory.db")
    yield s
    s.close()


def dc_copy(tmp_path, name="dc"):
    folder = tmp_path / name
    shutil.copytree(dataset("dc-orservices"), folder)
    return folder


def reencode(path, encoding, bom=b""):
    """Rewrite a file as a Windows tool would save it: characters the encoding lacks become "?".
    Returns how many records held such a character."""
    text = path.read_text(encoding="utf-8-sig")
    path.write_bytes(bom + text.encode(encoding, errors="replace"))
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return sum(1 for row in csv.reader(io.StringIO(text)) if any(c.encode(encoding, "replace").decode(encoding) != c for c in row))


def by_file(report):
    return {f["file"]: f for f in report["files"]}


def test_windows_1252_utf16_and_utf8_bom_files_read_as_the_same_records(tmp_path, session):
    folder = dc_copy(tmp_path)
    lossy = reencode(folder / "services.csv", "cp1252")  # "“Socking” It to Winter", "A’sia": 0x93 0x94 0x92
    reencode(folder / "organizations.csv", "utf-16-le", b"\xff\xfe")  # "La Clínica del Pueblo"
    reencode(folder / "locations.csv", "utf-8", b"\xef\xbb\xbf")
    reencode(folder / "programs.csv", "utf-16-be", b"\xfe\xff")

    report = import_path(session, folder, source="dc-orservices")

    files = by_file(report)
    assert files["services.csv"]["encoding"] == "windows-1252"
    assert files["organizations.csv"]["encoding"] == "utf-16-le (BOM)"
    assert files["programs.csv"]["encoding"] == "utf-16-be (BOM)"
    assert files["locations.csv"]["encoding"] == "utf-8 (BOM)"
    assert files["phones.csv"]["encoding"] == "utf-8"
    names = set(session.scalars(select(Service.name)))
    assert "“Socking” It to Winter" in names and "Free Smoke Alarms (A’sia Sutton Program)" in names
    assert "La Clínica del Pueblo" in set(session.scalars(select(Organization.name)))
    assert report["totals"]["service"]["created"] == 501 - report["totals"]["service"]["skipped"]
    assert not [s for s in report["skipped_rows"] if "not text" in s["reason"]]
    # The original UTF-8 files land on the same records, value for value, but for the services
    # whose text held a character Windows-1252 has not (U+202F, emoji…, saved as "?").
    again = import_path(session, dataset("dc-orservices"), source="dc-orservices")
    assert again["created"] == 0 and again["updated"] == again["totals"]["service"]["updated"] <= lossy, again["totals"]


def test_decoding_rules():
    assert decode("Niños".encode("cp1252"), "x.csv") == ("Niños", "windows-1252")
    assert decode("Niños".encode("utf-8"), "x.csv") == ("Niños", "utf-8")
    assert decode(b"\xff\xfe" + "Niños".encode("utf-16-le"), "x.csv") == ("Niños", "utf-16-le (BOM)")
    assert decode("id,name\n".encode("utf-16-le"), "x.csv") == ("id,name\n", "utf-16-le (no BOM, told by its NUL bytes)")
    # Mostly UTF-8 with one stray Windows-1252 byte: UTF-8, the stray byte marks its row damaged.
    text, label = decode("Niños, Café, Señal\n".encode("utf-8") + b"caf\xe9\n", "x.csv")
    assert label == "utf-8 (with invalid bytes)" and text.startswith("Niños")
    with pytest.raises(LayoutError, match="utf-16-le byte-order mark"):
        decode(b"\xff\xfe" + "id".encode("utf-16-le") + b"\x00\xd8", "x.csv")  # a lone surrogate


def test_damaged_rows_are_reported_each_and_the_others_read(tmp_path):
    path = tmp_path / "services.csv"
    path.write_bytes(
        "id,organization_id,name,description\n"
        "1,9,Niños tutoring,fine\n".encode("utf-8")
        + b"2,9,Caf\xe9 shifted,bad byte\n"
        + b"3,9,Food, clothing,unquoted comma\n"
        + b"4,9,Nul\x00name,nul\n"
        + b"5,9,Short row\n"
        + ('6,9,Big,"' + "x" * (csv.field_size_limit() + 10) + '"\n').encode()
        + b"7,9,After all that,fine\n")
    table = read_table(path)
    assert table.encoding == "utf-8 (with invalid bytes)"
    assert [n for n, _ in table.records] == [2, 6, 8]
    assert [r["id"] for _, r in table.records] == ["1", "5", "7"]
    assert table.records[1][1]["description"] == ""  # a short row: missing cells blank
    problems = {n: (raw_id, reason) for n, raw_id, reason in table.problems}
    assert sorted(problems) == [3, 4, 5, 7] and table.rows == 7
    assert "0xE9" in problems[3][1] and problems[3][0] == "2"
    assert "has 5 cells, the header names 4" in problems[4][1]
    assert "NUL" in problems[5][1]
    assert "field limit" in problems[7][1] and problems[7][1].startswith("line 7")


def write_big_services(folder, target_bytes):
    """DC's services copied under new ids, descriptions lengthened, until the file is
    ``target_bytes``; the record in the middle has its name split by an unquoted comma (one
    cell too many). Returns (records written, the bad row's number, the id of the row after it)."""
    with (dataset("dc-orservices") / "services.csv").open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header, originals = reader.fieldnames, list(reader)
    records, copy, size = [], 0, 0
    while size < target_bytes:
        for row in originals:
            text = row["description"] or row["name"]
            row = dict(row, id=f"{row['id']}-{copy}", description=(text + " ") * max(1, 10_000 // len(text)))
            records.append([row[h] for h in header])
            size += sum(len(c) for c in records[-1]) + 2 * len(header)
        copy += 1
    middle, name = len(records) // 2, header.index("name")
    bad = records[middle]
    records[middle] = bad[:name] + bad[name].split(" ", 1) + bad[name + 1:] if " " in bad[name] else bad + ["extra"]
    with (folder / "services.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *records])
    return len(records), middle + 2, records[middle + 1][0]


def test_a_50_mb_file_with_one_bad_row_gives_a_per_row_report(tmp_path, session):
    folder = dc_copy(tmp_path)
    count, bad_number, after_id = write_big_services(folder, 50 * 1024 * 1024)
    assert (folder / "services.csv").stat().st_size >= 50 * 1024 * 1024

    report = import_path(session, folder, source="dc-big")

    line = by_file(report)["services.csv"]
    assert line["rows"] == count
    assert line["rows"] == line["created"] + line["updated"] + line["unchanged"] + line["skipped"]
    shifted = [s for s in report["skipped_rows"] if s["file"] == "services.csv" and "cells" in s["reason"]]
    assert len(shifted) == 1 and shifted[0]["row"] == bad_number, shifted
    assert "header names 15 columns" in shifted[0]["reason"]
    others = [s for s in report["skipped_rows"] if s["file"] == "services.csv" and s is not shifted[0]]
    assert line["created"] == count - 1 - len(others)
    assert session.get(Service, stable_id("dc-big", "service", after_id)) is not None  # the row after it is read
    assert session.scalar(select(func.count()).select_from(Service)) == line["created"]


def test_a_package_with_a_damaged_file_writes_nothing(tmp_path, session):
    folder = dc_copy(tmp_path)
    # phones.csv claims UTF-16 but is cut inside a character: found while reading, before any write.
    data = b"\xff\xfe" + (folder / "phones.csv").read_text(encoding="utf-8").encode("utf-16-le")
    (folder / "phones.csv").write_bytes(data + b"\x00\xdc")
    with pytest.raises(LayoutError, match="phones.csv starts with a utf-16-le byte-order mark"):
        import_path(session, folder, source="dc-orservices")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Service)) == 0
    assert session.scalar(select(func.count()).select_from(Organization)) == 0


def malformed_packages(tmp_path):
    """(name, folder, the reason's words) for packages no import should start on."""
    cases = []
    twice = dc_copy(tmp_path, "twice")
    text = (twice / "phones.csv").read_text(encoding="utf-8")
    header, rest = text.split("\n", 1)
    (twice / "phones.csv").write_text(header.replace("number", "id") + "\n" + rest, encoding="utf-8")
    cases.append(("column twice", twice, "names the column 'id' twice"))
    workbook = dc_copy(tmp_path, "workbook")  # an Excel workbook saved under a .csv name
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as xlsx:
        xlsx.writestr("[Content_Types].xml", "<Types/>")
    (workbook / "locations.csv").write_bytes(buffer.getvalue())
    cases.append(("workbook", workbook, "locations.csv: the header holds bytes that are not text"))
    lying_bom = dc_copy(tmp_path, "bom")
    (lying_bom / "organizations.csv").write_bytes(b"\xff\xfe" + "id,name\n".encode("utf-16-le") + b"\x00\xdc")
    cases.append(("lying BOM", lying_bom, "organizations.csv starts with a utf-16-le byte-order mark"))
    return cases


def test_a_malformed_package_is_a_400_before_any_job(tmp_path, session):
    from nameko.testing.services import worker_factory

    from services.directory.service import DirectoryService
    from weintervene.errors import BadRequest

    worker = worker_factory(DirectoryService, db=session)
    for name, folder, reason in malformed_packages(tmp_path):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for item in folder.iterdir():
                archive.write(item, f"export/{item.name}")
        with pytest.raises(BadRequest) as refused:
            worker.start_import(OPERATOR, f"{name}.zip", base64.b64encode(buffer.getvalue()).decode(), source="dc")
        assert refused.value.code == "unrecognised_layout" and reason in str(refused.value), (name, str(refused.value))
    with pytest.raises(BadRequest) as refused:
        worker.start_import(OPERATOR, "dc.json", base64.b64encode(b'[{"id": "1", "name": "x"').decode(), source="dc")
    assert refused.value.code == "unrecognised_layout" and "not valid JSON" in str(refused.value)
    assert session.scalar(select(func.count()).select_from(ImportJob)) == 0
    assert session.scalar(select(func.count()).select_from(Service)) == 0


def test_the_cli_exits_2_with_the_reason(tmp_path):
    env = {**os.environ, "WEINTERVENE_DATA_DIR": str(tmp_path / "data"), "PYTHONWARNINGS": "ignore"}
    env.pop("WEINTERVENE_DATABASE_URL_TEMPLATE", None)
    env.pop("WEINTERVENE_DIRECTORY_DATABASE_URL", None)
    for name, folder, reason in malformed_packages(tmp_path):
        done = subprocess.run([sys.executable, "-m", "weintervene.cli", "import-directory", str(folder), "--source", "dc"],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and reason in done.stderr, (name, done.stderr[-1500:])
    ok = dc_copy(tmp_path, "cp1252")
    reencode(ok / "services.csv", "cp1252")
    done = subprocess.run([sys.executable, "-m", "weintervene.cli", "import-directory", str(ok), "--source", "dc", "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-1500:]
    assert by_file(json.loads(done.stdout))["services.csv"]["encoding"] == "windows-1252"


def test_a_descriptor_that_is_no_json_is_reported_not_trusted(tmp_path, session):
    folder = dc_copy(tmp_path)
    (folder / "datapackage.json").write_text('{"name": "dc", "resources": [', encoding="utf-8")
    report = import_path(session, folder, source="dc-orservices")
    line = by_file(report)["datapackage.json"]
    assert line["status"] == "not understood" and "not a JSON object" in line["note"]
    assert report["totals"]["service"]["created"] > 0


def test_a_large_import_looks_up_what_it_changed_in_chunks(session):
    """A 100,000-service import changes ~1.4 million rows; one ``IN`` of all their ids is more
    parameters than PostgreSQL's drivers bind (65,535: pg8000 raised struct.error at the very end
    of the 100k bench's import). ``affected_services`` asks in chunks: no statement it sends
    binds more than 65,535 parameters (counted on SQLite, whose build here allows more)."""
    from sqlalchemy import event

    from services.directory.importer import affected_services

    import_path(session, dataset("ohana-sanmateo"), source="ohana-sanmateo")
    services = [s for s in session.scalars(select(Service.id))]
    changed = {"phone": {stable_id("x", "phone", n) for n in range(70000)}, "service": set(services)}
    most = []

    def count(conn, cursor, statement, parameters, context, executemany):
        most.append(len(parameters) if not executemany else max(len(p) for p in parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert affected_services(session, changed) == set(services)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert most and max(most) <= 65535, max(most)


def test_a_changed_row_is_written_back_with_its_history_and_nothing_of_ours_lost(tmp_path, session):
    """The set-based update (``writing.write_changed``): the changed fields are stored, each in the
    edit history, the row's other columns (ownership is ours, not the file's) stay as they were."""
    from services.directory.models import Metadata, Phone

    folder = tmp_path / "ohana"
    shutil.copytree(dataset("ohana-sanmateo"), folder)
    import_path(session, folder, source="ohana")
    service_id = stable_id("ohana", "service", "1")
    service = session.get(Service, service_id)
    service.owner_district_id = "00000000-0000-4000-8000-0000000000d1"  # a column no file writes
    session.commit()
    for name, column, value in (("services.csv", "name", "Older Adults Center (renamed)"), ("phones.csv", "number", "650 555 0199")):
        with (folder / name).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header, rows = reader.fieldnames, list(reader)
        rows[0][column] = value
        with (folder / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)

    again = import_path(session, folder, source="ohana")

    assert again["updated"] == 2 and again["created"] == 0, again["totals"]
    session.expire_all()
    service = session.get(Service, service_id)
    assert service.name == "Older Adults Center (renamed)" and service.owner_district_id == "00000000-0000-4000-8000-0000000000d1"
    assert session.scalar(select(func.count()).select_from(Phone).where(Phone.number == "650 555 0199")) == 1
    history = session.scalars(select(Metadata).where(Metadata.resource_id == service_id, Metadata.last_action_type == "update")).all()
    assert [(h.field_name, h.replacement_value) for h in history] == [("name", "Older Adults Center (renamed)")]
