"""Readers for the directory files real exports come in, each giving HSDS 3.0 rows.

Supported layouts (detected by :func:`detect_layout`):

* ``hsds3-csv``: an HSDS 3.0 tabular datapackage (``datapackage.json`` + CSVs);
* ``hsds-json``: HSDS 3.0 JSON, a list (or ``Page``) of nested service documents;
* ``hsds2-csv``: the HSDS 2.0-style CSVs of ORServices exports (``services_at_location.csv``,
  ``physical_addresses.csv``, ``service_attributes.csv``; e.g. dc-orservices);
* ``hsds1-csv``: HSDS 1.x (``regular_schedules.csv``, ``postal_addresses.csv``; e.g. ilao);
* ``ohana-csv``: Ohana API CSVs (services carry ``location_id`` and ``taxonomy_ids``).

Each reader yields :class:`Row` objects: the HSDS table, the file and record
number it came from (the header is row 1), the stable id and the values under
HSDS 3.0 names. Only the columns a reader maps are kept; the others are listed
as dropped (data minimisation). Nothing here writes to the database.

Example::

    >>> layout = detect_layout(Path("../shared/datasets/ilao"))
    'hsds1-csv'
    >>> rows, files = read(Path("../shared/datasets/ilao"), source="ilao")
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from services.directory.csv_files import CsvTable, read_header, read_table
from services.directory.exceptions import LayoutError
from services.directory.ids import as_uuid, stable_id
from services.directory.indexing import language_code
from services.directory.schedules import parse_days, parse_time
from services.directory.taxonomy import OPEN_ELIGIBILITY_ID, term_id
from weintervene.bounded_json import JsonRefused, loads_bounded
from weintervene.config import settings


@dataclasses.dataclass
class Row:
    table: str
    file: str
    row: int
    raw_id: str
    values: dict
    id: str | None = None
    raw: dict | None = None  # the source record, for messages naming its own ids
    riders: list = dataclasses.field(default_factory=list)  # (file, row) merged into this row: same outcome
    nested: bool = False  # from a nested JSON document, where repeats of one record are normal


READ = "read"
NOT_UNDERSTOOD = "not understood"
OUTCOMES = ("created", "updated", "unchanged", "skipped")


@dataclasses.dataclass
class FileReport:
    """One file of the package: ``read`` (its ``rows`` each end in exactly one of created,
    updated, unchanged, skipped) or ``not understood`` (its rows counted, none imported).

    ``derived`` counts the rows of other tables a file's cells gave (e.g. Ohana's
    ``services.csv`` ``languages`` column -> ``language`` rows), by table and outcome.
    """
    file: str
    table: str | None
    rows: int | None = 0
    columns_kept: list = dataclasses.field(default_factory=list)
    columns_dropped: list = dataclasses.field(default_factory=list)
    note: str = ""
    status: str = READ
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    derived: dict = dataclasses.field(default_factory=dict)
    encoding: str | None = None  # what the file was read in (csv_files.decode), e.g. "windows-1252"
    unmatched: list = dataclasses.field(default_factory=list)  # (row, id, reason): skipped before writing


HSDS3_FILES = {
    "taxonomies.csv": "taxonomy", "taxonomy_terms.csv": "taxonomy_term",
    "organizations.csv": "organization", "programs.csv": "program", "services.csv": "service",
    "locations.csv": "location", "service_at_location.csv": "service_at_location",
    "service_at_locations.csv": "service_at_location", "addresses.csv": "address", "accessibility.csv": "accessibility",
    "contacts.csv": "contact", "phones.csv": "phone", "schedules.csv": "schedule",
    "attributes.csv": "attribute", "languages.csv": "language", "service_areas.csv": "service_area",
    "cost_options.csv": "cost_option",
    # HSDS 3.1 (the spec's datapackage names them so)
    "units.csv": "unit", "unit.csv": "unit", "service_capacity.csv": "service_capacity",
    "service_capacities.csv": "service_capacity", "url.csv": "url", "urls.csv": "url",
}
# Foreign keys per table: column -> referenced table.
REFS = {
    "taxonomy_term": {"parent_id": "taxonomy_term", "taxonomy_id": "taxonomy"},
    "organization": {"parent_organization_id": "organization"},
    "program": {"organization_id": "organization"},
    "service": {"organization_id": "organization", "program_id": "program"},
    "location": {"organization_id": "organization"},
    "service_at_location": {"service_id": "service", "location_id": "location"},
    "address": {"location_id": "location"},
    "accessibility": {"location_id": "location"},
    "contact": {"organization_id": "organization", "service_id": "service",
                "service_at_location_id": "service_at_location", "location_id": "location"},
    "phone": {"location_id": "location", "service_id": "service", "organization_id": "organization",
              "contact_id": "contact", "service_at_location_id": "service_at_location"},
    "schedule": {"service_id": "service", "location_id": "location", "service_at_location_id": "service_at_location"},
    "attribute": {"link_id": "service", "taxonomy_term_id": "taxonomy_term"},
    "language": {"service_id": "service", "location_id": "location", "phone_id": "phone"},
    "service_area": {"service_id": "service", "service_at_location_id": "service_at_location"},
    "cost_option": {"service_id": "service"},
    "service_capacity": {"service_id": "service", "unit_id": "unit"},
    "url": {"organization_id": "organization", "service_id": "service"},
}


def _read_csv(path: Path) -> CsvTable:
    """The file's rows, its encoding and its damaged rows (``csv_files.read_table``)."""
    return read_table(path)


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def data_folder(path: Path) -> Path:
    """The folder holding the CSV files: the folder itself, or the one its
    ``datapackage.json`` resources point into (e.g. ``data/``)."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    descriptor = folder / "datapackage.json"
    if any(p.suffix.lower() == ".csv" for p in folder.iterdir() if p.is_file()) or not descriptor.exists():
        return folder
    try:
        resources = json.loads(descriptor.read_text(encoding="utf-8-sig")).get("resources") or []
    except (ValueError, AttributeError, UnicodeDecodeError):
        resources = []
    for resource in resources:
        where = resource.get("path") if isinstance(resource, dict) else None
        if isinstance(where, str) and where.lower().endswith(".csv"):
            candidate = (folder / where).resolve().parent
            if candidate.is_dir() and folder.resolve() in (candidate, *candidate.parents):
                return candidate
    if (folder / "data").is_dir():
        return folder / "data"
    return folder


def detect_layout(path: Path) -> str:
    """The layout of the files at ``path``, from their names and headers (content, not
    the folder's name); ``LayoutError`` naming what was found when none fits.

    Example: detect_layout(Path("../shared/datasets/ilao")) -> "hsds1-csv"
    """
    path = Path(path)
    if path.is_file():
        if path.name == "datapackage.json":
            return detect_layout(path.parent)
        if path.suffix.lower() in (".json", ".ndjson"):
            return "hsds-json"
        raise LayoutError(f"{path.name}: give a folder of CSV files, a datapackage.json, a .zip or an HSDS .json file")
    if not path.is_dir():
        raise LayoutError(f"{path}: no such file or folder")
    folder = data_folder(path)
    names = {p.name for p in folder.iterdir() if p.is_file()}
    has_descriptor = (path / "datapackage.json").exists() or "datapackage.json" in names
    if "services.csv" not in names:
        found = ", ".join(sorted(names)[:12]) or "nothing"
        raise LayoutError(f"no services.csv in the folder (found: {found}); not a directory export we know")
    check_package(path, folder)
    header = _header(folder / "services.csv")
    if "name" not in header:
        raise LayoutError("services.csv has no name column; not a directory export we know")
    if "taxonomy_ids" in header or ("location_id" in header and "keywords" in header):
        return "ohana-csv"
    if "services_at_location.csv" in names or "service_attributes.csv" in names or "physical_addresses.csv" in names:
        return "hsds2-csv"
    if names & {"regular_schedules.csv", "postal_addresses.csv", "services_taxonomy.csv", "holiday_schedules.csv",
                "eligibility.csv"}:
        return "hsds1-csv"
    if "minimum_age" in header or "service_at_location.csv" in names or "attributes.csv" in names or has_descriptor:
        return "hsds3-csv"
    raise LayoutError("services.csv does not match HSDS 3.0, HSDS 2.0/1.x or Ohana columns")


# Every CSV a reader of some layout maps to a table (a damaged header in one of these makes
# the package malformed; any other file is only listed as not understood).
KNOWN_FILES = frozenset(HSDS3_FILES) | {
    "accessibility_for_disabilities.csv", "eligibility.csv", "holiday_schedules.csv", "mail_addresses.csv",
    "physical_addresses.csv", "postal_addresses.csv", "regular_schedules.csv", "services_at_location.csv",
    "service_attributes.csv", "services_taxonomy.csv", "taxonomy.csv",
}


def check_package(path: Path, folder: Path) -> None:
    """Refuse (``LayoutError``, the API's 400 before any job) a package one of whose table
    files has an unreadable header (a BOM that lies, a column named twice, bytes that are no
    text, such as a workbook saved under a .csv name): reading it would fail or mix up columns.
    Damage inside a file's rows is not refused here: each damaged row is reported on its own.
    A descriptor that is no JSON is not refused either (the spec's own example ships one):
    the files are found by their names and the report says the descriptor was ignored.

    Example: check_package(Path("export"), Path("export")) -> LayoutError("phones.csv: the header names the column 'id' twice…")
    """
    for item in sorted(folder.iterdir()):
        if item.is_file() and item.name in KNOWN_FILES:
            read_header(item)


def _header(path: Path) -> list[str]:
    return read_header(path)


def not_understood(path: Path, why: str) -> FileReport:
    """A file we do not import, listed with its row count (``None`` when it is not a table)."""
    rows, header, encoding = None, [], None
    if path.suffix.lower() == ".csv":
        try:
            table = _read_csv(path)
            rows, header, encoding = table.rows, table.header, table.encoding
        except LayoutError as exc:
            why = f"{why}; {exc}"
    return FileReport(file=path.name, table=None, rows=rows, columns_dropped=header, note=why, status=NOT_UNDERSTOOD,
                      encoding=encoding)


def _valid_descriptor(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_bytes().decode("utf-8-sig")), dict)
    except (UnicodeDecodeError, ValueError):
        return False


def account_for_every_file(path: Path, files: list[FileReport]) -> None:
    """Append a ``not understood`` entry for each file at ``path`` no reader reported."""
    path = Path(path)
    if path.is_file() and path.name == "datapackage.json":
        path = path.parent
    if path.is_file():
        return  # one HSDS .json file: the report's one line
    folders = [path] + ([data_folder(path)] if data_folder(path) != path else [])
    seen = {f.file for f in files}
    for folder in folders:
        for item in sorted(folder.iterdir()):
            if not item.is_file() or item.name in seen or item.name.startswith("."):
                continue
            seen.add(item.name)
            if item.name == "datapackage.json" and not _valid_descriptor(item):
                files.append(FileReport(file=item.name, table=None, rows=None, status=NOT_UNDERSTOOD,
                                        note="not a JSON object: ignored, the files were found by their names"))
            elif item.name == "datapackage.json":
                files.append(FileReport(file=item.name, table=None, rows=None, note="the package's descriptor (read to find the files)"))
            else:
                why = "not a file of this layout" if item.suffix.lower() == ".csv" else "not a CSV table"
                files.append(not_understood(item, why))


def read(path: Path, source: str, layout: str | None = None) -> tuple[str, list[Row], list[FileReport]]:
    """(layout, rows, per-file report) for the files at ``path``; every file present is in the report."""
    layout = layout or detect_layout(path)
    reader = {
        "hsds3-csv": _read_hsds3_csv, "hsds-json": _read_hsds_json, "hsds2-csv": _read_hsds2,
        "hsds1-csv": _read_hsds1, "ohana-csv": _read_ohana,
    }.get(layout)
    if reader is None:
        raise LayoutError(f"unknown layout {layout!r}")
    path = Path(path)
    rows, files = reader(path if path.is_file() and layout == "hsds-json" else data_folder(path), source)
    if not any(f.status == READ and f.table for f in files):
        raise LayoutError(f"no file at {path.name} is a {layout} table we can read")
    account_for_every_file(path, files)
    return layout, rows, files


# --- a mapping engine shared by the CSV layouts -------------------------------------------

# Rows of these tables may come without ids (their content is their identity);
# organizations, services, locations... without an id are skipped.
CONTENT_ID_TABLES = {"accessibility", "phone", "schedule", "address", "language", "contact", "service_area", "cost_option", "attribute"}


class Mapper:
    """Reads one CSV file into rows of one table through a column map.

    ``columns`` maps source column -> HSDS field (or to None: read by ``fix`` only).
    ``refs`` maps HSDS field -> referenced table, for source ids that need a stable id.
    ``id_parts`` names extra source columns that make an id unique where the source
    reuses ids across parents (e.g. one schedule id for several services).
    """

    def __init__(self, source: str, folder: Path, rows: list, files: list):
        self.source, self.folder, self.rows, self.files = source, folder, rows, files
        self._refs: dict[tuple[str, str], str] = {}  # an organization's id is referred to by each of its rows

    def ref(self, table: str, raw) -> str | None:
        if _blank(raw):
            return None
        raw = str(raw).strip()
        known = self._refs.get((table, raw))
        if known is None:
            known = self._refs[(table, raw)] = as_uuid(raw) or stable_id(self.source, table, raw)
        return known

    def file(self, name: str, table: str, columns: dict, refs: dict | None = None, fix=None,
             id_parts: tuple = (), id_column: str = "id", derive_blank_id: bool | None = None):
        path = self.folder / name
        if not path.exists():
            return []
        if derive_blank_id is None:
            derive_blank_id = table in CONTENT_ID_TABLES
        csv_table = _read_csv(path)
        header = csv_table.header
        kept = [c for c in header if c in columns or c == id_column]
        report = FileReport(file=name, table=table, rows=csv_table.rows, columns_kept=kept,
                            columns_dropped=[c for c in header if c not in kept], encoding=csv_table.encoding,
                            unmatched=list(csv_table.problems))
        self.files.append(report)
        out = []
        for number, raw in csv_table.records:
            values = {}
            for src, dst in columns.items():
                if dst is not None and src in raw:
                    values[dst] = None if _blank(raw[src]) else raw[src].strip()
            for field, target in (refs or {}).items():
                if field in values:
                    values[field] = self.ref(target, values[field])
            raw_id = (raw.get(id_column) or "").strip()
            if fix is not None:
                fix(values, raw)
            row = Row(table=table, file=name, row=number, raw_id=raw_id, values=values, raw=raw)
            if raw_id:
                parts = [raw.get(p, "").strip() for p in id_parts]
                row.id = as_uuid(raw_id) if not id_parts else None
                if row.id is None:
                    row.id = stable_id(self.source, table, raw_id, *parts)
            elif derive_blank_id:
                # No id in the file: the content is the identity (stable across re-imports).
                row.id = stable_id(self.source, table, "content", json.dumps(values, sort_keys=True))
            out.append(row)
        self.rows.extend(out)
        return out

    def ignore(self, name: str, why: str):
        path = self.folder / name
        if path.exists():
            self.files.append(not_understood(path, why))


def _schedule_fix(values: dict, raw: dict) -> None:
    """Weekday text and clock times, wherever the export put them."""
    day_text = raw.get("byday") or raw.get("weekday") or ""
    days = parse_days(day_text)
    opens = parse_time(raw.get("opens_at")) or parse_time(raw.get("valid_from")) or parse_time(raw.get("dtstart"))
    closes = parse_time(raw.get("closes_at")) or parse_time(raw.get("valid_to")) or parse_time(raw.get("until"))
    values["byday"] = ",".join(days) if days else None
    values["freq"] = "WEEKLY" if days else None
    values["opens_at"], values["closes_at"] = opens, closes
    notes = [x.strip() for x in (raw.get("name"), raw.get("description")) if x and x.strip()]
    if day_text.strip() and not days:
        notes.append(day_text.strip())
    values["description"] = "; ".join(notes) or None
    for key in ("valid_from", "valid_to", "dtstart", "until"):
        values.pop(key, None)


def _address_fix(kind: str):
    def fix(values: dict, raw: dict) -> None:
        extra = [raw.get(k, "").strip() for k in ("address_3", "address_4") if raw.get(k, "").strip()]
        if extra:
            values["address_2"] = ", ".join(filter(None, [values.get("address_2")] + extra))
        for field in ("address_1", "city", "state_province", "postal_code", "country"):
            if values.get(field) is None:
                values[field] = ""
        values["address_type"] = kind
    return fix


ORG_COLUMNS = {"name": "name", "alternate_name": "alternate_name", "description": "description", "email": "email",
               "url": "website", "website": "website", "tax_status": "tax_status", "tax_id": "tax_id",
               "year_incorporated": "year_incorporated", "legal_status": "legal_status"}
SERVICE_COLUMNS = {"organization_id": "organization_id", "program_id": "program_id", "name": "name",
                   "alternate_name": "alternate_name", "description": "description", "url": "url",
                   "email": "email", "status": "status", "interpretation_services": "interpretation_services",
                   "application_process": "application_process", "wait_time": "wait_time", "fees": "fees",
                   "accreditations": "accreditations", "licenses": "licenses"}
LOCATION_COLUMNS = {"organization_id": "organization_id", "name": "name", "alternate_name": "alternate_name",
                    "description": "description", "transportation": "transportation",
                    "latitude": "latitude", "longitude": "longitude"}
ADDRESS_COLUMNS = {"location_id": "location_id", "attention": "attention", "address_1": "address_1",
                   "address_2": "address_2", "address_3": None, "address_4": None, "city": "city",
                   "region": "region", "state_province": "state_province", "postal_code": "postal_code",
                   "country": "country"}
CONTACT_COLUMNS = {"organization_id": "organization_id", "service_id": "service_id",
                   "service_at_location_id": "service_at_location_id", "name": "name", "title": "title",
                   "department": "department", "email": "email"}
PHONE_REFS = {"location_id": "location", "service_id": "service", "organization_id": "organization",
              "contact_id": "contact", "service_at_location_id": "service_at_location"}


def _org_fix(values, raw):
    if values.get("description") is None:
        values["description"] = ""


def _program_fix(values, raw):
    if values.get("description") is None:
        values["description"] = ""


def _read_hsds2(folder: Path, source: str):
    rows, files = [], []
    m = Mapper(source, folder, rows, files)
    m.file("organizations.csv", "organization", ORG_COLUMNS, fix=_org_fix)
    m.file("programs.csv", "program", {"organization_id": "organization_id", "name": "name", "alternate_name": "alternate_name"},
           refs={"organization_id": "organization"}, fix=_program_fix)
    m.file("services.csv", "service", SERVICE_COLUMNS, refs={"organization_id": "organization", "program_id": "program"})
    m.file("locations.csv", "location", LOCATION_COLUMNS, refs={"organization_id": "organization"})
    m.file("services_at_location.csv", "service_at_location", {"service_id": "service_id", "location_id": "location_id", "description": "description"},
           refs={"service_id": "service", "location_id": "location"})
    m.file("physical_addresses.csv", "address", ADDRESS_COLUMNS, refs={"location_id": "location"},
           fix=_address_fix("physical"), id_parts=("location_id",))
    contacts = m.file("contacts.csv", "contact", {**CONTACT_COLUMNS, "phone_number": None, "phone": None,
                                                  "phone_extension": None},
                      refs={"organization_id": "organization", "service_id": "service",
                            "service_at_location_id": "service_at_location"})
    _contact_phones(m, contacts, "contacts.csv")
    m.file("phones.csv", "phone", {"location_id": "location_id", "service_id": "service_id", "organization_id": "organization_id",
                                   "contact_id": "contact_id", "service_at_location_id": "service_at_location_id",
                                   "number": "number", "extension": "extension", "type": "type", "description": "description"},
           refs=PHONE_REFS, id_parts=("location_id", "service_id", "organization_id"))
    m.file("schedules.csv", "schedule", {"service_id": "service_id", "location_id": "location_id",
                                         "service_at_location_id": "service_at_location_id", "name": None,
                                         "weekday": None, "byday": None, "valid_from": None, "valid_to": None,
                                         "dtstart": None, "until": None, "opens_at": None, "closes_at": None,
                                         "description": None},
           refs={"service_id": "service", "location_id": "location", "service_at_location_id": "service_at_location"},
           fix=_schedule_fix, id_parts=("service_id", "location_id", "service_at_location_id"))
    m.file("taxonomy_terms.csv", "taxonomy_term", {"term": "name", "description": "description", "parent_id": "parent_id",
                                                   "taxonomy": "taxonomy", "language": "language"},
           refs={"parent_id": "taxonomy_term"}, fix=_term_fix(m))
    m.ignore("taxonomy_types.csv", "a copy of taxonomy_terms.csv")
    m.file("service_attributes.csv", "attribute", {"service_id": "link_id", "taxonomy_term_id": "taxonomy_term_id"},
           refs={"link_id": "service", "taxonomy_term_id": "taxonomy_term"}, fix=_attribute_fix)
    # Miami-style files repeat the service id as the row id: the row is its service, place and language.
    m.file("languages.csv", "language", {"service_id": "service_id", "location_id": "location_id", "language": "name"},
           refs={"service_id": "service", "location_id": "location"}, fix=_language_fix,
           id_parts=("service_id", "location_id", "language"))
    m.file("service_areas.csv", "service_area", {"service_id": "service_id", "service_area": "name", "description": "description"},
           refs={"service_id": "service"})
    _accessibility(m)
    _taxonomies_for_terms(m)
    # Files of HSDS 1.x that many 2.0-style exports (211s) still carry.
    m.file("postal_addresses.csv", "address", {**ADDRESS_COLUMNS, "organization_id": None}, refs={"location_id": "location"},
           fix=_address_fix("postal"), id_parts=("location_id",))
    m.file("regular_schedules.csv", "schedule", {"service_id": "service_id", "location_id": "location_id",
                                                 "service_at_location_id": "service_at_location_id",
                                                 "weekday": None, "opens_at": None, "closes_at": None},
           refs=SCHEDULE_REFS, fix=_schedule_fix, id_parts=("regular",))
    _hsds1_extras(m, folder)
    return rows, files


def _term_fix(mapper):
    def fix(values, raw):
        if values.get("description") is None:
            values["description"] = ""
        name = values.get("taxonomy") or "Imported"
        values["taxonomy_id"] = stable_id(mapper.source, "taxonomy", name)
        values["taxonomy"] = name
    return fix


def _taxonomies_for_terms(m: Mapper):
    """One HSDS taxonomy row per taxonomy name the imported terms use."""
    names = sorted({r.values["taxonomy"] for r in m.rows if r.table == "taxonomy_term" and r.values.get("taxonomy")})
    for name in names:
        m.rows.insert(0, Row(table="taxonomy", file="taxonomy_terms.csv", row=0, raw_id=name,
                             values={"name": name, "description": f"{name} ({m.source})"},
                             id=stable_id(m.source, "taxonomy", name)))


def _attribute_fix(values, raw):
    values["link_entity"] = "service"
    values["link_type"] = "taxonomy"


def _language_fix(values, raw):
    values["code"] = language_code(values.get("name"))


def _parse_date(text: str | None) -> str | None:
    """``2015-12-24``, ``12/24/2015``, ``12/24/15``, ``December 24, 2015`` -> ``2015-12-24``; None if unreadable."""
    from datetime import datetime

    text = (text or "").strip()
    for form in ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y", "%B %d, %Y", "%b %d, %Y", "%d %B %Y"):
        try:
            return datetime.strptime(text, form).date().isoformat()
        except ValueError:
            continue
    return None


def _holiday_fix(values: dict, raw: dict) -> None:
    """A holiday row as an HSDS 3.0 schedule valid for its dates only (no weekday: it
    never counts as weekly opening hours). Closed days keep no times."""
    start, end = _parse_date(raw.get("start_date")), _parse_date(raw.get("end_date"))
    closed = (raw.get("closed") or "").strip().lower() in ("true", "t", "yes", "y", "1", "closed")
    values["valid_from"], values["valid_to"] = start, end or start
    values["dtstart"] = start
    values["opens_at"] = None if closed else parse_time(raw.get("opens_at"))
    values["closes_at"] = None if closed else parse_time(raw.get("closes_at"))
    unread = [raw[k].strip() for k in ("start_date", "end_date") if (raw.get(k) or "").strip() and not _parse_date(raw[k])]
    label = "Holiday: closed" if closed else "Holiday hours"
    values["description"] = "; ".join([label, *(f"date as written: {d}" for d in unread)])
    values["freq"] = values["byday"] = None


HOLIDAY_COLUMNS = {"service_id": "service_id", "location_id": "location_id",
                   "service_at_location_id": "service_at_location_id", "start_date": None, "end_date": None,
                   "closed": None, "opens_at": None, "closes_at": None}
SCHEDULE_REFS = {"service_id": "service", "location_id": "location", "service_at_location_id": "service_at_location"}


def _own_taxonomy(m: Mapper, file: str, id_column: str, parent_column: str, vocabulary_column: str | None):
    """An HSDS 1.x ``taxonomy.csv`` as a taxonomy of its own (AIRS, 211 LA, a region's
    list...): one ``taxonomy`` row per vocabulary, terms keeping their codes and parents."""
    def fix(values, raw):
        code = (raw.get(id_column) or "").strip()
        parent = (raw.get(parent_column) or "").strip()
        name = ((raw.get(vocabulary_column) or "").strip() if vocabulary_column else "") or f"{m.source} taxonomy"
        values.update({"code": code, "description": values.get("description") or "",
                       "parent_id": m.ref("taxonomy_term", parent) if parent else None,
                       "taxonomy": name, "taxonomy_id": stable_id(m.source, "taxonomy", name)})
    terms = m.file(file, "taxonomy_term", {"name": "name", "description": None, parent_column: None,
                                           **({vocabulary_column: None} if vocabulary_column else {})},
                   id_column=id_column, fix=fix)
    for term in terms:  # the id other files use to name it: the source's code
        term.id = m.ref("taxonomy_term", term.raw_id) if term.raw_id else None
    names = sorted({t.values["taxonomy"] for t in terms})
    for name in names:
        m.rows.insert(0, Row(table="taxonomy", file=file, row=0, raw_id=name,
                             values={"name": name, "description": f"{name} ({m.source})"},
                             id=stable_id(m.source, "taxonomy", name)))
    return terms


def _contact_phones(m: Mapper, contacts: list, file: str):
    """Contacts with phone columns (``phone``, ``phone_number``, ``phone_extension``): a phone row each."""
    for contact in contacts:
        raw = contact.raw or {}
        number = next(((raw.get(k) or "").strip() for k in ("phone_number", "phone", "phone_1") if (raw.get(k) or "").strip()), "")
        if not number or not contact.id:
            continue
        values = {"contact_id": contact.id, "number": number,
                  "extension": (raw.get("phone_extension") or raw.get("extension") or "").strip() or None,
                  "type": (raw.get("phone_type") or "").strip() or "voice"}
        m.rows.append(Row(table="phone", file=file, row=contact.row, raw_id=f"{contact.raw_id}:phone", values=values,
                          id=stable_id(m.source, "phone", "contact", contact.raw_id, number), raw=raw))


def _read_hsds1(folder: Path, source: str):
    rows, files = [], []
    m = Mapper(source, folder, rows, files)
    m.file("organizations.csv", "organization", ORG_COLUMNS, fix=_org_fix)
    m.file("services.csv", "service", SERVICE_COLUMNS, refs={"organization_id": "organization", "program_id": "program"},
           derive_blank_id=False)
    m.file("locations.csv", "location", LOCATION_COLUMNS, refs={"organization_id": "organization"})
    m.file("postal_addresses.csv", "address", {**ADDRESS_COLUMNS, "organization_id": None}, refs={"location_id": "location"},
           fix=_address_fix("postal"), id_parts=("location_id",))
    m.file("physical_addresses.csv", "address", ADDRESS_COLUMNS, refs={"location_id": "location"},
           fix=_address_fix("physical"), id_parts=("location_id",))
    m.file("phones.csv", "phone", {"location_id": "location_id", "service_id": "service_id", "organization_id": "organization_id",
                                   "contact_id": "contact_id", "service_at_location_id": "service_at_location_id",
                                   "number": "number", "extension": "extension", "type": "type", "description": "description"},
           refs=PHONE_REFS)
    m.file("regular_schedules.csv", "schedule", {"service_id": "service_id", "location_id": "location_id",
                                                 "service_at_location_id": "service_at_location_id",
                                                 "weekday": None, "opens_at": None, "closes_at": None},
           refs={"service_id": "service", "location_id": "location", "service_at_location_id": "service_at_location"},
           fix=_schedule_fix)
    contacts = m.file("contacts.csv", "contact", {**CONTACT_COLUMNS, "phone_number": None, "phone": None,
                                                  "phone_extension": None},
                      refs={"organization_id": "organization", "service_id": "service",
                            "service_at_location_id": "service_at_location"})
    _contact_phones(m, contacts, "contacts.csv")
    _hsds1_extras(m, folder)
    m.file("languages.csv", "language", {"service_id": "service_id", "location_id": "location_id", "language": "name"},
           refs={"service_id": "service", "location_id": "location"}, fix=_language_fix,
           id_parts=("service_id", "location_id", "language"))
    _accessibility(m)
    return rows, files


def _accessibility(m: Mapper) -> None:
    """HSDS 1.x/2.0 ``accessibility_for_disabilities.csv`` (location_id, accessibility, details)
    as HSDS 3.0 ``accessibility`` rows, the text kept as written."""
    m.file("accessibility_for_disabilities.csv", "accessibility",
           {"location_id": "location_id", "accessibility": "description", "details": "details", "url": "url"},
           refs={"location_id": "location"}, id_parts=("location_id",))


def _hsds1_extras(m: Mapper, folder: Path) -> None:
    """Holiday hours, a taxonomy of the export's own and its links, eligibility (HSDS 1.x files)."""
    m.file("holiday_schedules.csv", "schedule", HOLIDAY_COLUMNS, refs=SCHEDULE_REFS, fix=_holiday_fix, id_parts=("holiday",))
    if (folder / "taxonomy.csv").exists():
        header = _header(folder / "taxonomy.csv")
        id_column = "id" if "id" in header else "taxonomy_id"
        _own_taxonomy(m, "taxonomy.csv", id_column, "parent_id", "vocabulary" if "vocabulary" in header else None)
    m.file("services_taxonomy.csv", "attribute", {"service_id": "link_id", "taxonomy_id": "taxonomy_term_id",
                                                  "taxonomy_detail": "value"},
           refs={"link_id": "service", "taxonomy_term_id": "taxonomy_term"}, fix=_attribute_fix, id_parts=("service_id",))
    _merge_eligibility(m, [r for r in m.rows if r.table == "service"])


ELIGIBILITY_TARGET = "service.eligibility_description"


def _merge_eligibility(m: Mapper, services: list) -> None:
    """HSDS 1.x ``eligibility.csv`` (id, service_id, eligibility) into its service's
    ``eligibility_description`` (HSDS 3.0 dropped the table). Each row shares the outcome of
    the service it was merged into; a row naming no service of the files is skipped."""
    path = m.folder / "eligibility.csv"
    if not path.exists():
        return
    csv_table = _read_csv(path)
    header = csv_table.header
    kept = [c for c in header if c in ("id", "service_id", "eligibility")]
    report = FileReport(file=path.name, table=ELIGIBILITY_TARGET, rows=csv_table.rows, columns_kept=kept,
                        columns_dropped=[c for c in header if c not in kept], encoding=csv_table.encoding,
                        note="merged into each service's eligibility_description", unmatched=list(csv_table.problems))
    m.files.append(report)
    by_raw_id = {r.raw_id: r for r in services if r.raw_id}
    for number, raw in csv_table.records:
        text, service_id = (raw.get("eligibility") or "").strip(), (raw.get("service_id") or "").strip()
        service = by_raw_id.get(service_id)
        if not text or service is None:
            why = "eligibility is blank" if not text else f"service_id {service_id or '(blank)'} is not a service of the files"
            report.unmatched.append((number, (raw.get("id") or "").strip(), why))
            continue
        service.values["eligibility_description"] = "; ".join(filter(None, [service.values.get("eligibility_description"), text]))
        service.riders.append((path.name, number))


def _read_ohana(folder: Path, source: str):
    rows, files = [], []
    m = Mapper(source, folder, rows, files)
    m.file("organizations.csv", "organization", {"name": "name", "alternate_name": "alternate_name", "description": "description",
                                                 "email": "email", "website": "website", "legal_status": "legal_status",
                                                 "tax_id": "tax_id", "tax_status": "tax_status"}, fix=_org_fix)
    m.file("programs.csv", "program", {"organization_id": "organization_id", "name": "name", "alternate_name": "alternate_name"},
           refs={"organization_id": "organization"}, fix=_program_fix)
    locations = m.file("locations.csv", "location", {"organization_id": "organization_id", "name": "name",
                                                     "alternate_name": "alternate_name", "description": "description",
                                                     "transportation": "transportation", "latitude": "latitude",
                                                     "longitude": "longitude", "website": "url", "languages": None},
                       refs={"organization_id": "organization"})
    org_of_location = {r.id: r.values.get("organization_id") for r in locations}
    records = [raw for _, raw in _read_csv(folder / "locations.csv").records] if (folder / "locations.csv").exists() else []
    for loc, raw in zip(locations, records):
        for name in filter(None, (x.strip() for x in (raw.get("languages") or "").split(","))):
            rows.append(Row(table="language", file="locations.csv", row=loc.row, raw_id=f"{loc.raw_id}:{name}",
                            values={"location_id": loc.id, "name": name, "code": language_code(name)},
                            id=stable_id(source, "language", "location", loc.raw_id, name)))
    m.file("addresses.csv", "address", {"location_id": "location_id", "address_1": "address_1", "address_2": "address_2",
                                        "city": "city", "state_province": "state_province", "postal_code": "postal_code",
                                        "country": "country"},
           refs={"location_id": "location"}, fix=_address_fix("physical"))
    mail = m.file("mail_addresses.csv", "address", {"location_id": "location_id", "attention": "attention",
                                                    "address_1": "address_1", "address_2": "address_2", "city": "city",
                                                    "state_province": "state_province", "postal_code": "postal_code",
                                                    "country": "country"},
                  refs={"location_id": "location"}, fix=_address_fix("postal"), id_parts=("mail",))
    del mail

    def service_fix(values, raw):
        loc = m.ref("location", raw.get("location_id"))
        values["organization_id"] = org_of_location.get(loc)
        if values.get("status") is None:
            values["status"] = None

    services = m.file("services.csv", "service", {"program_id": "program_id", "name": "name", "alternate_name": "alternate_name",
                                                  "description": "description", "email": "email", "status": "status",
                                                  "interpretation_services": "interpretation_services",
                                                  "application_process": "application_process", "wait_time": "wait_time",
                                                  "fees": "fees", "eligibility": "eligibility_description", "website": "url",
                                                  "location_id": None, "languages": None, "service_areas": None,
                                                  "taxonomy_ids": None},
                      refs={"program_id": "program"}, fix=service_fix)
    records = [raw for _, raw in _read_csv(folder / "services.csv").records]
    for svc, raw in zip(services, records):
        loc = m.ref("location", raw.get("location_id"))
        if loc:
            rows.append(Row(table="service_at_location", file="services.csv", row=svc.row, raw_id=svc.raw_id,
                            values={"service_id": svc.id, "location_id": loc},
                            id=stable_id(source, "service_at_location", svc.raw_id, raw.get("location_id"))))
        for name in filter(None, (x.strip() for x in (raw.get("languages") or "").split(","))):
            rows.append(Row(table="language", file="services.csv", row=svc.row, raw_id=name,
                            values={"service_id": svc.id, "name": name, "code": language_code(name)},
                            id=stable_id(source, "language", "service", svc.raw_id, name)))
        for area in filter(None, (x.strip() for x in (raw.get("service_areas") or "").split(","))):
            rows.append(Row(table="service_area", file="services.csv", row=svc.row, raw_id=area,
                            values={"service_id": svc.id, "name": area},
                            id=stable_id(source, "service_area", svc.raw_id, area)))
        for code in filter(None, (x.strip() for x in (raw.get("taxonomy_ids") or "").split(","))):
            rows.append(Row(table="attribute", file="services.csv", row=svc.row, raw_id=code,
                            values={"link_id": svc.id, "taxonomy_term_id": term_id(code), "link_entity": "service",
                                    "link_type": "taxonomy"},
                            id=stable_id(source, "attribute", svc.raw_id, code)))
    m.file("phones.csv", "phone", {"location_id": "location_id", "service_id": "service_id", "organization_id": "organization_id",
                                   "contact_id": "contact_id", "number": "number", "extension": "extension",
                                   "number_type": "type"}, refs=PHONE_REFS)
    m.file("contacts.csv", "contact", {"location_id": "location_id", "organization_id": "organization_id",
                                       "service_id": "service_id", "name": "name", "title": "title",
                                       "email": "email", "department": "department"},
           refs={"location_id": "location", "organization_id": "organization", "service_id": "service"})
    m.file("regular_schedules.csv", "schedule", {"location_id": "location_id", "service_id": "service_id",
                                                 "weekday": None, "opens_at": None, "closes_at": None},
           refs={"location_id": "location", "service_id": "service"}, fix=_schedule_fix)
    m.file("holiday_schedules.csv", "schedule", HOLIDAY_COLUMNS, refs=SCHEDULE_REFS, fix=_holiday_fix, id_parts=("holiday",))
    # taxonomy.csv is the Open Eligibility list, which the service carries already.
    m.file("taxonomy.csv", "taxonomy_term", {"name": "name", "parent_id": None},
           id_column="taxonomy_id", fix=_open_eligibility_fix)
    for r in rows:
        if r.table == "taxonomy_term" and r.file == "taxonomy.csv":
            r.id = term_id(r.raw_id)
    return rows, files


def _open_eligibility_fix(values, raw):
    code = (raw.get("taxonomy_id") or "").strip()
    parent = (raw.get("parent_id") or "").strip()
    values.update({"code": code, "description": values.get("name") or "", "parent_id": term_id(parent) if parent else None,
                   "taxonomy": "Open Eligibility", "taxonomy_id": OPEN_ELIGIBILITY_ID, "language": "en"})


# --- HSDS 3.0 ---------------------------------------------------------------------------

def _read_hsds3_csv(path: Path, source: str):
    folder = path.parent if path.is_file() else path
    rows, files = [], []
    m = Mapper(source, folder, rows, files)
    from services.directory.models import HSDS_TABLES

    present = {p.name for p in folder.iterdir() if p.suffix == ".csv"}
    order = list(HSDS_TABLES)
    for name in sorted(present, key=lambda n: order.index(HSDS3_FILES[n]) if n in HSDS3_FILES else 99):
        table = HSDS3_FILES.get(name)
        if table is None:
            m.ignore(name, "not an HSDS table we keep")
            continue
        columns = {c: c for c in _columns_of(table)}
        m.file(name, table, columns, refs=_ref_targets(table), fix=_hsds3_fix(table))
    return rows, files


def _columns_of(table: str) -> list[str]:
    from services.directory.models import HSDS_TABLES

    from services.directory.hsds import PRIVATE

    model = HSDS_TABLES[table]
    return [c.key for c in model.__table__.columns if c.key != "id" and c.key not in PRIVATE]


def _ref_targets(table: str) -> dict:
    return dict(REFS.get(table, {}))


def _hsds3_fix(table: str):
    def fix(values, raw):
        if table in ("organization", "program", "taxonomy", "taxonomy_term") and values.get("description") is None:
            values["description"] = ""
        if table == "address":
            _address_fix(values.get("address_type") or "physical")(values, raw)
        if table == "attribute" and values.get("link_entity") is None:
            values["link_entity"] = "service"
    return fix


def _read_hsds_json(path: Path, source: str):
    max_depth = settings().directory_import_json_max_depth
    try:
        data = loads_bounded(path.read_text(encoding="utf-8-sig"), max_depth=max_depth, unique_keys=False)
    except JsonRefused as exc:  # nesting past the cap, numbers no column holds, NaN...
        cap = " (WEINTERVENE_DIRECTORY_IMPORT_JSON_MAX_DEPTH)" if "nested" in str(exc) else ""
        raise LayoutError(f"{path.name} is refused: {exc}{cap}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LayoutError(f"{path.name} is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("contents") or data.get("services") or ([data] if data.get("id") else [])
    if not isinstance(data, list):
        raise LayoutError("HSDS JSON must be a list of services, or a Page with contents")
    rows: list[Row] = []
    files = [FileReport(file=path.name, table="service", rows=len(data))]
    dropped: set[str] = set()
    for number, doc in enumerate(data, start=1):
        if not isinstance(doc, dict):
            rows.append(Row(table="service", file=path.name, row=number, raw_id="", values={"_invalid": True}))
            continue
        _flatten(doc, "service", {}, rows, path.name, number, source, dropped)
    files[0].columns_dropped = sorted(dropped)
    files[0].columns_kept = ["(nested HSDS 3.0 service documents)"]
    return rows, files


NESTED = {
    "organization": "organization", "program": "program", "location": "location", "service": "service",
    "taxonomy_term": "taxonomy_term", "taxonomy_detail": "taxonomy", "phones": "phone", "schedules": "schedule",
    "service_areas": "service_area", "service_at_locations": "service_at_location", "languages": "language",
    "cost_options": "cost_option", "contacts": "contact", "addresses": "address", "locations": "location",
    "programs": "program", "services": "service", "attributes": "attribute", "accessibility": "accessibility",
    "capacities": "service_capacity", "unit": "unit", "additional_urls": "url", "additional_websites": "url",
}
PARENT_FIELD = {"service": "service_id", "location": "location_id", "organization": "organization_id",
                "service_at_location": "service_at_location_id", "contact": "contact_id", "phone": "phone_id"}


def _flatten(doc: dict, table: str, inherited: dict, rows: list, file: str, number: int, source: str, dropped: set):
    columns = set(_columns_of(table))
    values, children = {}, []
    for key, value in doc.items():
        if key == "id":
            continue
        if key in NESTED and isinstance(value, (dict, list)):
            children.append((key, value))
        elif key in columns:
            values[key] = None if _blank(value) else (value.strip() if isinstance(value, str) else value)
        else:
            dropped.add(f"{table}.{key}")
    for field, target in REFS.get(table, {}).items():
        if values.get(field) is not None:
            values[field] = as_uuid(values[field]) or stable_id(source, target, values[field])
    for field, value in inherited.items():
        if field in columns and values.get(field) is None:
            values[field] = value
    _hsds3_fix(table)(values, {})
    raw_id = str(doc.get("id") or "")
    ident = as_uuid(raw_id) or (stable_id(source, table, raw_id) if raw_id else None)
    # A nested parent must be written before this row: parents go first.
    for key, value in children:
        child_table = NESTED[key]
        if isinstance(value, dict) and key in ("organization", "program", "location", "taxonomy_term", "taxonomy_detail", "service", "unit"):
            if key == "service":
                continue  # back-reference inside a service_at_location: already the parent
            child_id = _flatten(value, child_table, {}, rows, file, number, source, dropped)
            field = {"taxonomy_detail": "taxonomy_id"}.get(key, f"{key}_id")
            if field in columns and child_id:
                values[field] = child_id
    rows.append(Row(table=table, file=file, row=number, raw_id=raw_id, values=values, id=ident, nested=True))
    for key, value in children:
        if isinstance(value, list):
            child_table = NESTED[key]
            link = {"attribute": {"link_id": ident, "link_entity": table}}.get(child_table, {PARENT_FIELD.get(table, "_"): ident})
            for item in value:
                if isinstance(item, dict):
                    _flatten(item, child_table, link, rows, file, number, source, dropped)
    return ident
