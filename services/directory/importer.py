"""Importing directory files row by row into a report; re-importing changes nothing.

:func:`import_path` reads the files with ``layouts.read`` and writes table by
table, parents first. Every row ends up in exactly one bucket of the report:

* created / updated / unchanged (compared field by field with what is stored;
  every created or changed record gets HSDS ``metadata`` history rows);
* skipped, with the file, the row number (header = row 1) and the reason: no
  id, a required field blank, a reference to a record that is neither in the
  files nor in the directory (dangling), an id used twice.

Values are cleaned, never invented: URLs without a scheme get ``http://``,
blank status becomes ``active`` (counted in ``notes``), unreadable numbers and
e-mail addresses are dropped with a note. Columns we do not keep are listed per
file in ``files[].columns_dropped`` (data minimisation).

Example::

    >>> with session_for("directory") as s:
    ...     report = import_path(s, Path("../shared/datasets/ohana-sanmateo"))
    >>> report["totals"]["service"]
    {'created': 23, 'updated': 0, 'unchanged': 0, 'skipped': 0}
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import ftfy
from sqlalchemy import select

from services.directory.archives import unpack_zip
from services.directory.indexing import reindex
from services.directory.layouts import NOT_UNDERSTOOD, OUTCOMES, REFS, FileReport, LayoutError, Row, read
from services.directory.models import HSDS_TABLES, Metadata, Service, ServiceAtLocation
from services.directory.sources import package_source
from services.directory.taxonomy import TermTree
from services.directory.writing import stored_rows, write_changed
from weintervene.config import settings
from weintervene.db import bulk_insert, new_id, utcnow

CHUNK = 500
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
STATUSES = {"active", "inactive", "defunct", "temporarily closed"}
# Rows of these tables need at least one of these references to mean anything.
OWNERS = {
    "program": ("organization_id",), "service": ("organization_id",), "service_at_location": ("service_id", "location_id"),
    "address": ("location_id",), "accessibility": ("location_id",), "attribute": ("link_id", "taxonomy_term_id"), "service_area": None,
    "cost_option": ("service_id",), "phone": None, "schedule": None, "contact": None, "language": None,
    "service_capacity": ("service_id", "unit_id"), "url": None,
}
ANY_OWNER = {
    "phone": ("location_id", "service_id", "organization_id", "contact_id", "service_at_location_id"),
    "schedule": ("service_id", "location_id", "service_at_location_id"),
    "contact": ("organization_id", "service_id", "service_at_location_id", "location_id"),
    "language": ("service_id", "location_id", "phone_id"),
    "service_area": ("service_id", "service_at_location_id"),
    "url": ("service_id", "organization_id"),
}
REQUIRED = {
    "organization": ("name",), "service": ("name",), "program": ("name",), "taxonomy": ("name",),
    "taxonomy_term": ("name",), "phone": ("number",), "unit": ("name",), "url": ("url",), "service_capacity": ("available",),
}
FLOATS = {"latitude", "longitude", "minimum_age", "maximum_age", "amount", "extension", "timezone", "available", "maximum"}
TIMESTAMPS = {"updated"}  # service_capacity.updated (HSDS 3.1 date-time)
INTS = {"year_incorporated", "count", "interval"}
URLS = {"url", "website", "uri", "term_uri", "schedule_link"}
EMAILS = {"email", "assurer_email"}
INT_LIMIT = 2 ** 31  # SQL integer columns (year_incorporated, count, interval)


@dataclasses.dataclass
class Report:
    source: str
    layout: str = ""
    totals: dict = dataclasses.field(default_factory=lambda: defaultdict(Counter))
    skipped: list = dataclasses.field(default_factory=list)
    notes: Counter = dataclasses.field(default_factory=Counter)
    files: list = dataclasses.field(default_factory=list)

    def __post_init__(self):
        self._by_file = {f.file: f for f in self.files}
        for f in self.files:  # rows a reader could not attach to anything (e.g. eligibility of no service)
            for number, raw_id, reason in f.unmatched:
                f.skipped += 1
                self.skipped.append({"file": f.file, "row": number, "table": f.table, "id": raw_id, "reason": reason})

    def count(self, row: Row, outcome: str) -> None:
        """One row's outcome, in the table's totals and in its file's line."""
        self.totals[row.table][outcome] += 1
        report = self._by_file.get(row.file)
        if report is None:
            return
        if row.table == report.table and row.row > 0:
            setattr(report, outcome, getattr(report, outcome) + 1)
        else:  # a row of another table the file's cells gave
            derived = report.derived.setdefault(row.table, dict.fromkeys(OUTCOMES, 0))
            derived[outcome] += 1
        for file, _number in row.riders:  # rows merged into this one share its outcome
            rider = self._by_file.get(file)
            if rider is not None:
                setattr(rider, outcome, getattr(rider, outcome) + 1)

    def skip(self, row: Row, reason: str) -> None:
        self.count(row, "skipped")  # every one listed: the report is whole (import_report.py writes it as CSV)
        self.skipped.append({"file": row.file, "row": row.row, "table": row.table, "id": row.raw_id, "reason": reason})
        for file, number in row.riders:  # e.g. an eligibility.csv row merged into this service: skipped with it
            rider = self._by_file.get(file)
            self.skipped.append({"file": file, "row": number, "table": rider.table if rider else None, "id": None,
                                 "reason": f"merged into {row.file} row {row.row}, which is skipped: {reason}"})

    def as_dict(self) -> dict:
        totals = {t: {k: c.get(k, 0) for k in ("created", "updated", "unchanged", "skipped")} for t, c in self.totals.items()}
        summary = Counter()
        for t in totals.values():
            summary.update(t)
        return {
            "source": self.source, "layout": self.layout,
            "created": summary["created"], "updated": summary["updated"],
            "unchanged": summary["unchanged"], "skipped": summary["skipped"],
            "totals": totals, "skipped_rows": self.skipped, "notes": dict(self.notes),
            "files": [{k: v for k, v in dataclasses.asdict(f).items() if k != "unmatched"} for f in self.files],
            "columns_dropped": {f.file: f.columns_dropped for f in self.files if f.columns_dropped},
        }


def clean(table: str, values: dict, report: Report, row: Row) -> dict:
    """Type and tidy one row's values (no invention; problems become notes)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, str):
            value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
            if value == "" and key not in ("description", "address_1", "city", "state_province", "postal_code", "country"):
                value = None
            elif key not in URLS and key not in EMAILS:
                value = repair_text(table, key, value, report)
        if value is None:
            out[key] = None
            continue
        if key in FLOATS:
            try:
                value = float(re.sub(r"[^\d.\-]", "", str(value)) if key == "extension" else value)
                if value != value or value in (float("inf"), float("-inf")):
                    raise ValueError("not a finite number")
            except (TypeError, ValueError):
                report.notes[f"{table}.{key}: unreadable number dropped"] += 1
                value = None
            if key == "latitude" and value is not None and not -90 <= value <= 90 or key == "longitude" and value is not None and not -180 <= value <= 180:
                report.notes[f"{table}.{key}: out of range, dropped"] += 1
                value = None
            if key in ("latitude", "longitude") and value == 0:
                report.notes[f"{table}.{key}: 0 treated as missing"] += 1
                value = None
        elif key in TIMESTAMPS:
            parsed = _timestamp(value)
            if parsed is None:
                report.notes[f"{table}.{key}: unreadable date-time dropped"] += 1
            value = parsed
        elif key in INTS:
            try:
                value = int(float(value))
            except (TypeError, ValueError, OverflowError):
                report.notes[f"{table}.{key}: unreadable number dropped"] += 1
                value = None
            if value is not None and not -INT_LIMIT <= value < INT_LIMIT:  # PostgreSQL's integer would refuse the whole import
                report.notes[f"{table}.{key}: out of range, dropped"] += 1
                value = None
        elif key in URLS:
            value = value.split()[0] if value.split() else None
            if value and not re.match(r"^[a-z][a-z0-9+.\-]*://", value, re.I):
                value = "http://" + value.lstrip("/")
                report.notes[f"{table}.{key}: scheme added"] += 1
        elif key in EMAILS:
            if not EMAIL.match(value):
                report.notes[f"{table}.{key}: invalid e-mail dropped"] += 1
                value = None
        elif key == "status":
            value = value.lower()
            if value not in STATUSES:
                report.notes[f"{table}.status: unknown value '{value}' read as active"] += 1
                value = "active"
        elif key == "country":
            value = value.upper()[:2] if len(value) <= 3 else ("US" if value.lower() in ("united states", "usa") else "")
        out[key] = value
    if table == "service" and not out.get("status"):
        out["status"] = "active"
        report.notes["service.status: blank, read as active"] += 1
    if table == "location" and not out.get("location_type"):
        out["location_type"] = "physical"
    return out


LITERAL_BREAK = re.compile(r"\\r\\n|\\n|\\r")


def repair_text(table: str, key: str, value: str, report: Report) -> str:
    """Undo two damages exports carry, each counted in ``notes``: line breaks written as the
    two characters ``\\n`` (a JSON or SQL dump escaped twice), and mojibake — UTF-8 read as
    Windows-1252 somewhere upstream (``CafÃ©`` → ``Café``), repaired with ``ftfy.fix_encoding``
    only: curly quotes, ligatures and widths are the source's and stay as written.

    Example: repair_text("service", "name", "NiÃ±os\\nTutoring", report) -> "Niños\nTutoring"
    """
    if "\\" in value and LITERAL_BREAK.search(value):
        value = LITERAL_BREAK.sub("\n", value).strip()
        report.notes[f"{table}.{key}: literal \\n turned into line breaks"] += 1
    if not value.isascii():  # mojibake needs non-ASCII characters; ASCII text costs nothing
        fixed = ftfy.fix_encoding(value)
        if fixed != value:
            value = fixed
            report.notes[f"{table}.{key}: mojibake repaired"] += 1
    return value


def _columns(model) -> list[str]:
    from services.directory.hsds import PRIVATE

    return [c.key for c in model.__table__.columns if c.key not in PRIVATE and c.key not in ("id", "last_modified")]


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return a is not None and b is not None and abs(float(a) - float(b)) < 1e-9 or a is b is None
        except (TypeError, ValueError):
            return False
    return a == b


def import_path(session, path: Path, source: str | None = None, progress=None, updated_by: str = "import",
                layout: str | None = None) -> dict:
    """Import the directory files at ``path`` (folder, datapackage.json, .json or .zip); returns the report.

    ``progress(done, total)`` is called as rows are written.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        tmp = Path(tempfile.mkdtemp(prefix="wi-import-"))
        try:
            caps = settings()
            unpack_zip(path, tmp, caps.directory_import_max_unpacked_bytes, caps.directory_import_max_ratio)
            jsons = [p for p in tmp.iterdir() if p.suffix == ".json" and p.name != "datapackage.json"]
            target = jsons[0] if jsons and not any(p.suffix == ".csv" for p in tmp.iterdir()) else tmp
            source = package_source(tmp, source)  # the descriptor in the zip, not the zip's file name
            report = import_path(session, target, source=source, progress=progress, updated_by=updated_by, layout=layout)
            listed = {f["file"] for f in report["files"]}
            for name in _members_left_packed(path):  # a README, a licence: listed, never unmentioned
                if name not in listed:
                    report["files"].append(dataclasses.asdict(FileReport(
                        file=name, table=None, rows=None, status=NOT_UNDERSTOOD, note="not a CSV table (left in the archive)")))
            return report
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    from services.directory.layouts import detect_layout

    layout = layout or detect_layout(path)  # "not a directory export" before "name the source"
    source = package_source(path, source)  # from the package or the operator, never the path
    layout, rows, files = read(path, source, layout)
    report = Report(source=source, layout=layout, files=files)
    write_rows(session, rows, report, progress=progress, updated_by=updated_by)
    return report.as_dict()


def _members_left_packed(path: Path) -> list[str]:
    """The archive's files the import does not unpack (not .csv or .json), by their own names."""
    import zipfile

    from services.directory.archives import READ_SUFFIXES

    with zipfile.ZipFile(path) as archive:
        return [Path(i.filename).name for i in archive.infolist()
                if not i.is_dir() and Path(i.filename).name and not Path(i.filename).name.endswith(READ_SUFFIXES)]


def recognise(path: Path, source: str | None = None) -> tuple[str, str]:
    """The layout of an upload (a .zip is unpacked within the caps to look at its files),
    or ``LayoutError`` saying why none fits: an upload no reader knows is refused before
    a job starts, never a job that "completes" with nothing created.

    Returns (layout, source): a package that names no source and is given none is refused
    the same way (``SourceRequired``), before a job starts.

    Example: recognise(Path("budget.zip")) -> LayoutError("no services.csv in the folder (found: budget.csv)…")
    """
    from services.directory.layouts import detect_layout

    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        tmp = Path(tempfile.mkdtemp(prefix="wi-recognise-"))
        try:
            caps = settings()
            unpack_zip(path, tmp, caps.directory_import_max_unpacked_bytes, caps.directory_import_max_ratio)
            jsons = [p for p in tmp.iterdir() if p.suffix == ".json" and p.name != "datapackage.json"]
            target = jsons[0] if jsons and not any(p.suffix == ".csv" for p in tmp.iterdir()) else tmp
            return _recognised(target, source, named_by=tmp)  # the descriptor in the zip names it
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _recognised(path, source)


def _recognised(path: Path, source: str | None, named_by: Path | None = None) -> tuple[str, str]:
    """Detect, name, and for an HSDS JSON file parse it (a malformed document is the caller's
    400 now, not a job that fails later); CSV rows are read by the job, each reported."""
    from services.directory.layouts import detect_layout

    layout = detect_layout(path)  # "not a directory export" before "name the source"
    source = package_source(named_by or path, source)
    if layout == "hsds-json":
        read(path, source, layout)
    return layout, source


def write_rows(session, rows: list[Row], report: Report, progress=None, updated_by: str = "import") -> None:
    total = len(rows)
    done = 0
    by_table = defaultdict(list)
    for r in rows:
        by_table[r.table].append(r)
    known: dict[str, set] = {}

    def ids_of(table: str) -> set:
        if table not in known:
            model = HSDS_TABLES[table]
            known[table] = set(session.scalars(select(model.id)))
        return known[table]

    changed = defaultdict(set)
    for table in HSDS_TABLES:
        table_rows = by_table.get(table, [])
        if not table_rows:
            continue
        model = HSDS_TABLES[table]
        columns = _columns(model)
        pending_ids = {r.id for r in table_rows if r.id}
        first_seen: dict[str, tuple[int, dict]] = {}
        accepted: list[tuple[Row, dict]] = []
        for row in table_rows:
            if row.values.get("_invalid"):
                report.skip(row, "not a JSON object")
                continue
            if not row.id:
                report.skip(row, "no id")
                continue
            values = clean(table, {k: v for k, v in row.values.items() if k in columns}, report, row)
            reason = _too_long(model, values) or _check(table, row, values, ids_of, pending_ids, report)
            if reason:
                report.skip(row, reason)
                continue
            if row.id in first_seen:
                first_row, first_values = first_seen[row.id]
                same = first_values == values
                if same and row.nested:
                    continue  # the same organization nested under each of its services
                report.skip(row, f"duplicate of row {first_row}" if same else f"id {row.raw_id} already used by row {first_row}")
                continue
            first_seen[row.id] = (row.row, values)
            accepted.append((row, values))
        ids_of(table).update(r.id for r, _ in accepted)
        for start in range(0, len(accepted), CHUNK):
            chunk = accepted[start:start + CHUNK]
            existing = stored_rows(session, model, [r.id for r, _ in chunk])
            new_rows, changed_rows, history = [], [], []
            now = utcnow()
            dated = "last_modified" in model.__table__.columns
            for row, values in chunk:
                current = existing.get(row.id)
                if current is None:
                    data = {c: values.get(c) for c in columns if c in values}
                    data["id"] = row.id
                    if dated:
                        data["last_modified"] = _timestamp(row.values.get("last_modified")) or now
                    new_rows.append(data)
                    history.append(_history(row.id, table, "create", "", "", "", updated_by, now))
                    report.count(row, "created")
                    changed[table].add(row.id)
                    continue
                diffs = [(c, current[c], values[c]) for c in columns if c in values and not _same(current[c], values[c])]
                if not diffs:
                    report.count(row, "unchanged")
                    continue
                for c, old, new in diffs:
                    current[c] = new
                    history.append(_history(row.id, table, "update", c, old, new, updated_by, now))
                if dated:
                    current["last_modified"] = now
                changed_rows.append(current)
                report.count(row, "updated")
                changed[table].add(row.id)
            write_changed(session, model, changed_rows, columns + (["last_modified"] if dated else []))
            if new_rows:
                bulk_insert(session, model, new_rows)
            if history:
                bulk_insert(session, Metadata, history)
            done += len(chunk)
            session.flush()
            if progress:
                progress(min(done, total), total)
        skipped_here = len(table_rows) - len(accepted)
        done += skipped_here
        if progress:
            progress(min(done, total), total)
    if changed:
        if changed.get("taxonomy_term") or changed.get("taxonomy"):
            TermTree.invalidate()
        reindex(session, affected_services(session, changed))
    session.commit()
    if progress:
        progress(total, total)


def _too_long(model, values: dict) -> str | None:
    """Why a row's values cannot be stored as they are (too long for the column, a NUL byte,
    which PostgreSQL text refuses), or None: such a row is skipped, never the whole import."""
    for key, value in values.items():
        if isinstance(value, str) and "\x00" in value:
            return f"{key} holds a NUL byte"
        length = getattr(model.__table__.columns[key].type, "length", None) if key in model.__table__.columns else None
        if length and isinstance(value, str) and len(value) > length:
            return f"{key} is longer than {length} characters"
    return None


def _timestamp(value):
    """A stored modification time from the file (kept, so a round trip is exact)."""
    from datetime import datetime, timezone

    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _history(resource_id, table, action, field, old, new, by, when) -> dict:
    return {
        "id": new_id(), "resource_id": resource_id, "resource_type": table, "last_action_date": when,
        "last_action_type": action, "field_name": field,
        "previous_value": "" if old is None else str(old)[:2000],
        "replacement_value": "" if new is None else str(new)[:2000], "updated_by": by,
    }


# References that may be dropped when dangling (the row still means something without them).
OPTIONAL_REFS = {
    "service": {"program_id"}, "location": {"organization_id"}, "taxonomy_term": {"parent_id"},
    "organization": {"parent_organization_id"},
    "phone": set(ANY_OWNER["phone"]), "schedule": set(ANY_OWNER["schedule"]),
    "contact": set(ANY_OWNER["contact"]), "language": set(ANY_OWNER["language"]),
    "service_area": set(ANY_OWNER["service_area"]), "url": set(ANY_OWNER["url"]),
}


def _source_value(row: Row, field: str) -> str:
    if row.raw:
        for key, value in row.raw.items():
            if key == field or (field == "link_id" and key == "service_id"):
                return str(value).strip()
    return str(row.values.get(field) or "")


def _check(table: str, row: Row, values: dict, ids_of, pending_ids: set, report=None) -> str | None:
    for field in REQUIRED.get(table, ()):
        if not values.get(field):
            return f"{field} is blank"
    refs = REFS.get(table, {})
    for field, target in refs.items():
        value = values.get(field)
        if value is None:
            continue
        if table == "attribute" and field == "link_id" and (values.get("link_entity") or "service") != "service":
            target = values.get("link_entity")
            if target not in HSDS_TABLES:
                continue
        exists = value in ids_of(target) or (target == table and value in pending_ids)
        if not exists:
            if field in OPTIONAL_REFS.get(table, ()):
                values[field] = None
                if report is not None:
                    report.notes[f"{table}.{field}: dangling reference dropped"] += 1
                continue
            return (f"{field} {_source_value(row, field)} refers to a {target} that is in neither "
                    f"the files nor the directory (dangling reference)")
    required = OWNERS.get(table)
    if required:
        missing = [f for f in required if not values.get(f)]
        if missing:
            return f"{', '.join(missing)} is blank"
    any_owner = ANY_OWNER.get(table)
    if any_owner and not any(values.get(f) for f in any_owner):
        return f"belongs to nothing (each of {', '.join(any_owner)} is blank or dangling)"
    return None


IN_CHUNK = 10000  # ids per IN (...): PostgreSQL drivers bind at most 65,535 parameters a statement


def _where_in(session, selected, key, ids) -> set:
    """``selected`` of the rows whose ``key`` is among ``ids``, in chunks of :data:`IN_CHUNK`
    (a 100,000-service import changes ~1.4 million rows: one IN of them all is refused)."""
    ids, found = list(ids), set()
    for start in range(0, len(ids), IN_CHUNK):
        found.update(v for v in session.scalars(select(selected).where(key.in_(ids[start:start + IN_CHUNK]))) if v)
    return found


def affected_services(session, changed: dict) -> set:
    """Services whose search document depends on the changed rows."""
    services = set(changed.get("service", ()))
    for table in ("phone", "schedule", "language", "service_area", "cost_option", "contact", "service_at_location"):
        if changed.get(table):
            model = HSDS_TABLES[table]
            services |= _where_in(session, model.service_id, model.id, changed[table])
    attribute = HSDS_TABLES["attribute"]
    if changed.get("attribute"):
        services |= _where_in(session, attribute.link_id, attribute.id, changed["attribute"])
    location_ids = set(changed.get("location", ()))
    for table in ("address", "language", "schedule", "phone"):
        if changed.get(table):
            model = HSDS_TABLES[table]
            location_ids |= _where_in(session, model.location_id, model.id, changed[table])
    if location_ids:
        services |= _where_in(session, ServiceAtLocation.service_id, ServiceAtLocation.location_id, location_ids)
    if changed.get("organization"):
        services |= _where_in(session, Service.id, Service.organization_id, changed["organization"])
    if changed.get("taxonomy_term"):
        services |= _where_in(session, attribute.link_id, attribute.taxonomy_term_id, changed["taxonomy_term"])
    return _where_in(session, Service.id, Service.id, services)
