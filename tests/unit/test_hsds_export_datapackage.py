"""The CSV export is an HSDS 3.1 datapackage: frictionless validates it against the spec's
own datapackage.json (exact headers, HH:MM:SS times, types, foreign keys), and every row
breaking one of the spec's constraints (a required value we do not have, a repeated unique
one) is in the export's report — no error frictionless finds goes unreported, and the
report names nothing frictionless does not."""
import copy
import csv
import json

import pytest
from frictionless import Package

from services.directory.demo import load_demo
from services.directory.exporter import export_csv
from services.directory.importer import import_path
from tests.support.shared_data import dataset, hsds_spec
from tests.unit.directory_fixtures import sqlite_directory


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("export31")
    session = sqlite_directory(base / "directory.db")
    load_demo(session, count=60)
    import_path(session, dataset("dc-orservices"), source="dc-orservices")
    problems = []
    counts = export_csv(session, base / "out", problems=problems)
    session.close()
    return base / "out", counts, problems


# The spec's service_capacity and unit resources lack fields (see services/directory/data/NOTICE.md):
# for those two the export writes our copy's, completed from the spec's table schemas.
COMPLETED = {"service_capacity", "unit"}


def spec_descriptor() -> dict:
    """The spec's datapackage.json, with our completed service_capacity and unit resources."""
    from services.directory.exporter import SPEC_DESCRIPTOR

    spec = json.loads((hsds_spec("3.1") / "datapackage.json").read_text())
    ours = {r["name"]: r for r in json.loads(SPEC_DESCRIPTOR.read_text())["resources"]}
    for n, resource in enumerate(spec["resources"]):
        if resource["name"] in COMPLETED:
            spec_fields = {f["name"]: f for f in resource["schema"]["fields"]}
            completed = ours[resource["name"]]
            # Completed, not changed: every field the spec names is there as the spec has it.
            assert all(spec_fields[f["name"]] == f for f in completed["schema"]["fields"] if f["name"] in spec_fields)
            assert set(spec_fields) <= {f["name"] for f in completed["schema"]["fields"]}
            spec["resources"][n] = completed
    return spec


def spec_package(folder):
    """The spec's datapackage.json, for the resources the export wrote, read from ``folder``."""
    spec = spec_descriptor()
    written = {r["name"] for r in json.loads((folder / "datapackage.json").read_text())["resources"]}
    descriptor = copy.deepcopy(spec)
    descriptor["resources"] = [r for r in spec["resources"] if r["name"] in written]
    return Package.from_descriptor(descriptor, basepath=str(folder)), spec


def test_export_validates_against_the_spec_datapackage(exported):
    folder, counts, problems = exported
    assert counts["service"] > 100 and counts["schedule"] > 0
    package, spec = spec_package(folder)
    spec_by_name = {r["name"]: r for r in spec["resources"]}
    report = package.validate()
    found = set()
    for task in report.tasks:
        for row, field, kind in task.flatten(["rowNumber", "fieldName", "type"]):
            # Only constraint errors on rows, never a header, type, time or foreign-key error.
            assert kind in ("constraint-error", "unique-error"), (task.name, row, field, kind)
            found.add((spec_by_name[task.name]["path"], row, field, "required" if kind == "constraint-error" else "unique"))
    assert found == {(p["file"], p["row"], p["field"], p["reason"]) for p in problems}
    # The descriptor written is the spec's, resource for resource.
    written = json.loads((folder / "datapackage.json").read_text())
    assert written["version"] == "3.1"
    for resource in written["resources"]:
        assert resource["schema"] == spec_by_name[resource["name"]]["schema"]


def test_export_headers_and_times_are_the_specs(exported):
    folder, _, _ = exported
    spec = {r["path"]: r for r in spec_descriptor()["resources"]}
    written = json.loads((folder / "datapackage.json").read_text())["resources"]
    for resource in written:
        with (folder / resource["path"]).open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle))
        assert header == [f["name"] for f in spec[resource["path"]]["schema"]["fields"]], resource["path"]
    with (folder / "schedules.csv").open(newline="", encoding="utf-8") as handle:
        times = [r["opens_at"] for r in csv.DictReader(handle) if r["opens_at"]]
    assert times and all(len(t) == 8 and t[2] == t[5] == ":" for t in times)


def test_a_package_whose_rows_are_complete_validates_with_no_error(exported, tmp_path):
    """Leave out the reported rows: what remains passes frictionless outright."""
    folder, _, problems = exported
    drop: dict[str, set] = {}
    for p in problems:
        drop.setdefault(p["file"], set()).add(p["id"])
    clean = tmp_path / "clean"
    clean.mkdir()
    for path in folder.iterdir():
        if path.suffix != ".csv":
            (clean / path.name).write_bytes(path.read_bytes())
            continue
        with path.open(newline="", encoding="utf-8") as src, (clean / path.name).open("w", newline="", encoding="utf-8") as dst:
            reader = csv.reader(src)
            writer = csv.writer(dst)
            header = next(reader)
            writer.writerow(header)
            for row in reader:
                if row[header.index("id")] not in drop.get(path.name, set()):
                    writer.writerow(row)
    package, _ = spec_package(clean)
    report = package.validate()
    errors = [e for t in report.tasks for e in t.flatten(["rowNumber", "fieldName", "type"])]
    # Dropping terms leaves attributes pointing at them: those are the only foreign-key misses.
    assert all(kind in ("foreign-key",) for _, _, kind in errors), errors[:5]
