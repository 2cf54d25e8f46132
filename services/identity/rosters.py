"""Roster CSV import: students, their family contacts and the staff who serve them.

Only the columns in ``ALLOWED_COLUMNS`` are ever read into memory beyond the
header: any other column (home address, ethnicity, IEP flag...) is dropped while
parsing, before anything is stored, and listed in ``columns_dropped``.

One row is one student, optionally with one family contact and the staff who
serve them (``staff_email``, several separated by ``;``). A student on several
rows (one per contact) is updated, not duplicated: students are keyed by
``student_key`` within the school, contacts by their name within the student.

The import is one transaction: every valid row is applied, every invalid row is
skipped and reported with its row number (the header is row 1), and the result
says exactly which rows were applied. A preview runs the same code and rolls back.

Example::

    >>> import_roster(db, admin_auth, b"student_key,first_name,last_name,ethnicity\\n"
    ...                               b"S1,Diego,Ramos,x\\n", preview=False)
    {"columns_kept": ["student_key", "first_name", "last_name"],
     "columns_dropped": ["ethnicity"], "rows_total": 1, "created": 1, "updated": 0,
     "unchanged": 0, "applied_rows": [2], "skipped_rows": [], "errors": [], "warnings": []}
"""
from __future__ import annotations

import csv
import dataclasses
import io
import re
from datetime import date, datetime

from marshmallow import ValidationError, validate
from sqlalchemy import select

from services.identity.exceptions import RosterRejected
from services.identity.models import (
    FamilyContact, RosterColumnMapping, ServesLink, Student, SubjectFence, Tenant, User,
)
from services.identity.schemas import ROSTER_FIELDS
from services.identity.students import STAFF_ROLES_BY_KIND, age_on, ADULT_AGE
from weintervene.auth import AuthContext, Role, TenantKind
from weintervene.config import settings
from weintervene.db import new_id
from weintervene.errors import BadRequest, PayloadTooLarge
from weintervene.hashing import keyed_hash, keyed_hashes

ALLOWED_COLUMNS = ROSTER_FIELDS
REQUIRED_COLUMNS = ("student_key", "first_name", "last_name")
CONTACT_COLUMNS = ("contact_name", "contact_relationship", "contact_email", "contact_mobile",
                   "contact_language", "contact_authorised")
ADULT_ONLY_COLUMNS = ("student_email", "student_mobile")
IMPORTER_ROLES = (Role.SCHOOL_ADMIN, Role.PROGRAM_ADMIN)

GRADES = {"PK", "TK", "K"} | {str(n) for n in range(1, 13)}
GRADE_ALIASES = {"KG": "K", "KINDERGARTEN": "K", "PRE-K": "PK", "PREK": "PK"}
MAX_LENGTHS = {
    "student_key": 64, "first_name": 100, "last_name": 100, "student_number": 32,
    "contact_name": 200, "contact_relationship": 50, "contact_email": 254, "student_email": 254,
    "staff_email": 1000,
}
DEFAULT_MAX_CELL = 254
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z]{2,4})?$")
TRUE_WORDS = {"yes", "y", "true", "1", "authorised", "authorized"}
FALSE_WORDS = {"no", "n", "false", "0"}
EMAIL = validate.Email()


@dataclasses.dataclass
class RowError:
    row: int
    column: str | None
    message: str

    def to_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "message": self.message}


@dataclasses.dataclass
class ParsedFile:
    columns_kept: list[str]
    columns_dropped: list[str]
    rows: list[tuple[int, dict]]  # (row number, {allowed column: value})
    # Each header as the file has it, and the field it was read as (None: dropped).
    headers: list[dict] = dataclasses.field(default_factory=list)


def decode(raw: bytes) -> str:
    """UTF-8 (with or without a byte-order mark), or a 400 that says why."""
    if not raw or not raw.strip():
        raise RosterRejected("The file is empty.", code="empty_file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RosterRejected(
            f"The file is not UTF-8 text (byte {exc.start} is not valid UTF-8). "
            "Export it as 'CSV UTF-8' and try again.",
            code="bad_encoding", details={"byte_offset": exc.start},
        ) from None
    if "\x00" in text:
        raise RosterRejected("The file holds NUL bytes: it is not a CSV text file.", code="bad_encoding")
    return text


def normalise_header(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", (name or "").strip().lower())


def field_of(header: str, mapping: dict[str, str | None]) -> str | None:
    """The roster field a header is read as: the school's saved mapping first (None there
    drops the column), else the header itself when it names a field (case, spaces and
    hyphens aside). Example: field_of("Student ID", {"Student ID": "student_key"}) -> "student_key"."""
    label = (header or "").strip()
    if label in mapping:
        return mapping[label]
    name = normalise_header(label)
    return name if name in ALLOWED_COLUMNS else None


def parse(raw: bytes, mapping: dict[str, str | None] | None = None) -> ParsedFile:
    """Read the header and rows, keeping only allowed columns (read through ``mapping``)."""
    cfg = settings()
    if len(raw) > cfg.roster_max_bytes:
        raise PayloadTooLarge(f"The file is larger than {cfg.roster_max_bytes} bytes.", code="roster_too_large")
    text = decode(raw)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise RosterRejected(f"The header row cannot be read: {exc}", code="malformed_csv") from None
    names = [field_of(h, mapping or {}) for h in header]
    kept_positions = {}
    dropped = []
    for position, name in enumerate(names):
        if name is not None:
            if name in kept_positions:
                raise RosterRejected(f"The column {name} appears twice.", code="duplicate_column",
                                     details={"field": name, "headers": [h.strip() for h in header]})
            kept_positions[name] = position
        else:
            dropped.append(header[position].strip() or f"(unnamed column {position + 1})")
    headers = [{"header": h.strip(), "field": n} for h, n in zip(header, names)]
    missing = [c for c in REQUIRED_COLUMNS if c not in kept_positions]
    if missing:
        raise RosterRejected(
            "Required columns are missing: " + ", ".join(missing) + ". Map your file's headers to them.",
            code="missing_columns", details={"missing": missing, "allowed": list(ALLOWED_COLUMNS), "headers": headers},
        )
    rows = []
    row_number = 1
    try:
        for record in reader:
            row_number += 1
            if not any(cell.strip() for cell in record):
                continue  # blank line
            if len(rows) >= cfg.roster_max_rows:
                raise PayloadTooLarge(f"The file has more than {cfg.roster_max_rows} rows.", code="too_many_rows")
            values = {
                name: (record[pos].strip() if pos < len(record) else "")
                for name, pos in kept_positions.items()
            }
            if len(record) > len(header):
                values["__extra_cells__"] = "1"
            # ``record`` (with the dropped columns' values) goes out of scope here.
            rows.append((row_number, values))
    except csv.Error as exc:
        raise RosterRejected(f"Row {row_number} cannot be read as CSV: {exc}", code="malformed_csv") from None
    if not rows:
        raise RosterRejected("The file has a header but no rows.", code="empty_file")
    kept = [c for c in ALLOWED_COLUMNS if c in kept_positions]
    return ParsedFile(columns_kept=kept, columns_dropped=dropped, rows=rows, headers=headers)


# -- the school's saved column mapping -----------------------------------------

def _mapping_tenant(db, auth: AuthContext) -> Tenant:
    auth.require(*IMPORTER_ROLES)
    tenant = db.get(Tenant, auth.tenant_id)
    if tenant is None or tenant.kind not in (TenantKind.SCHOOL.value, TenantKind.PROGRAM.value):
        raise BadRequest("Rosters are imported into a school or program.", code="invalid_tenant")
    return tenant


def saved_mapping(db, tenant_id: str) -> dict[str, str | None]:
    row = db.get(RosterColumnMapping, tenant_id)
    return dict(row.mapping) if row else {}


def get_mapping(db, auth: AuthContext) -> dict:
    """Example: -> {"mapping": {"Student ID": "student_key"}, "fields": ["student_key", ...]}."""
    tenant = _mapping_tenant(db, auth)
    return {"mapping": saved_mapping(db, tenant.id), "fields": list(ALLOWED_COLUMNS)}


def save_mapping(db, auth: AuthContext, mapping: dict[str, str | None]) -> dict:
    """Replace the school's mapping; two headers may not map to one field."""
    tenant = _mapping_tenant(db, auth)
    mapping = {k.strip(): v for k, v in mapping.items() if k.strip()}
    targets = [v for v in mapping.values() if v]
    doubled = sorted({v for v in targets if targets.count(v) > 1})
    if doubled:
        raise BadRequest("Two headers are mapped to the same field.", code="invalid_input",
                         details={"mapping": [f"{f} is mapped from more than one header" for f in doubled]})
    row = db.get(RosterColumnMapping, tenant.id)
    if row is None:
        db.add(RosterColumnMapping(tenant_id=tenant.id, mapping=mapping, updated_by=auth.user_id))
    else:
        row.mapping = mapping
        row.updated_by = auth.user_id
    db.commit()
    return {"mapping": mapping, "fields": list(ALLOWED_COLUMNS)}


# -- one row ----------------------------------------------------------------

def normalise_mobile(value: str) -> str:
    digits = re.sub(r"[\s\-().]", "", value)
    if re.fullmatch(r"\d{10}", digits):
        return "+1" + digits
    if re.fullmatch(r"1\d{10}", digits):
        return "+" + digits
    if re.fullmatch(r"\+\d{8,15}", digits):
        return digits
    raise ValueError("not a phone number (use 10 digits or +country code)")


def parse_date(value: str) -> date:
    for fmt in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            parsed = datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        if not date(1900, 1, 1) <= parsed <= date.today():
            raise ValueError("must be between 1900 and today")
        return parsed
    raise ValueError("use YYYY-MM-DD (or MM/DD/YYYY)")


def parse_email(value: str) -> str:
    try:
        EMAIL(value)
    except ValidationError:
        raise ValueError("not a valid email address") from None
    return value.lower()


def parse_language(value: str) -> str:
    value = value.lower() or "en"
    if not LANGUAGE.match(value):
        raise ValueError("use a language code such as en, es, zh, pt-br")
    return value


def parse_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered == "" or lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ValueError("use yes or no")


def parse_grade(value: str) -> str | None:
    if not value:
        return None
    upper = value.upper()
    upper = GRADE_ALIASES.get(upper, upper.lstrip("0") or "0")
    if upper not in GRADES:
        raise ValueError("use PK, TK, K or 1 to 12")
    return upper


def validate_row(row: int, values: dict) -> tuple[dict | None, list[RowError], list[RowError]]:
    """(clean values or None, errors, warnings) for one row."""
    errors: list[RowError] = []
    warnings: list[RowError] = []
    clean: dict = {}

    def field(column, parser=None, required=False):
        value = values.get(column, "")
        if len(value) > MAX_LENGTHS.get(column, DEFAULT_MAX_CELL):
            errors.append(RowError(row, column, f"longer than {MAX_LENGTHS.get(column, DEFAULT_MAX_CELL)} characters"))
            return
        if not value:
            if required:
                errors.append(RowError(row, column, "is required"))
            clean[column] = None if parser is not parse_language and parser is not parse_bool else parser("")
            return
        try:
            clean[column] = parser(value) if parser else value
        except ValueError as exc:
            errors.append(RowError(row, column, str(exc)))

    if values.get("__extra_cells__"):
        errors.append(RowError(row, None, "the row has more cells than the header has columns"))
    field("student_key", required=True)
    field("first_name", required=True)
    field("last_name", required=True)
    field("grade", parse_grade)
    field("date_of_birth", parse_date)
    field("student_number")
    field("student_email", parse_email)
    field("student_mobile", normalise_mobile)
    field("student_language", parse_language)
    has_contact = any(values.get(c) for c in CONTACT_COLUMNS if c != "contact_authorised")
    field("contact_name", required=has_contact)
    field("contact_relationship", required=has_contact)
    field("contact_email", parse_email)
    field("contact_mobile", normalise_mobile)
    field("contact_language", parse_language)
    field("contact_authorised", parse_bool)
    if has_contact and not values.get("contact_email") and not values.get("contact_mobile"):
        errors.append(RowError(row, "contact_email", "a contact needs an email or a mobile number"))
    staff = []
    raw_staff = values.get("staff_email", "")
    if len(raw_staff) <= MAX_LENGTHS["staff_email"]:
        for part in filter(None, (p.strip() for p in raw_staff.split(";"))):
            try:
                staff.append(parse_email(part))
            except ValueError as exc:
                errors.append(RowError(row, "staff_email", f"{part}: {exc}"))
    else:
        errors.append(RowError(row, "staff_email", f"longer than {MAX_LENGTHS['staff_email']} characters"))
    clean["staff_emails"] = staff
    clean["has_contact"] = has_contact
    if not errors:
        age = age_on(clean.get("date_of_birth"))
        if age is None or age < ADULT_AGE:
            for column in ADULT_ONLY_COLUMNS:
                if clean.get(column):
                    clean[column] = None
                    warnings.append(RowError(row, column, "kept only for students 18 or older; not stored"))
    return (None if errors else clean), errors, warnings


# -- the import -------------------------------------------------------------

def roster_key_hash(tenant_id: str, roster_key: str) -> str:
    """Keyed, so a fence cannot be matched against guessed student numbers (current key)."""
    return keyed_hash("identity-roster-key", f"{tenant_id}:{roster_key}")


def roster_key_hashes(tenant_id: str, roster_key: str) -> list[str]:
    """The roster key's hash under every key still accepted: a fence keeps the one it was made with."""
    return keyed_hashes("identity-roster-key", f"{tenant_id}:{roster_key}")


def _assign(obj, values: dict) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def import_roster(db, auth: AuthContext, raw: bytes, preview: bool) -> dict:
    """Apply (or, with ``preview``, only try) a roster file for the caller's own tenant."""
    auth.require(*IMPORTER_ROLES)
    tenant = db.get(Tenant, auth.tenant_id)
    if tenant is None or tenant.kind not in (TenantKind.SCHOOL.value, TenantKind.PROGRAM.value):
        raise BadRequest("Rosters are imported into a school or program.", code="invalid_tenant")
    parsed = parse(raw, saved_mapping(db, tenant.id))
    dropped = list(parsed.columns_dropped)
    kept = list(parsed.columns_kept)
    if not tenant.student_ids_enabled and "student_number" in kept:
        # The school has student IDs off: the column is treated as not allowed.
        kept.remove("student_number")
        dropped.append("student_number")

    staff_roles = STAFF_ROLES_BY_KIND[tenant.kind]
    staff_by_email = {
        u.email: u for u in db.scalars(
            select(User).where(User.tenant_id == tenant.id, User.is_active.is_(True), User.role.in_(staff_roles))
        )
    }
    fenced_keys = set(db.scalars(
        select(SubjectFence.roster_key_hash).where(SubjectFence.tenant_id == tenant.id, SubjectFence.roster_key_hash.is_not(None))
    ))
    students = {s.roster_key: s for s in db.scalars(select(Student).where(Student.tenant_id == tenant.id))}

    result = {"created": 0, "updated": 0, "unchanged": 0}
    applied, skipped, errors, warnings = [], [], [], []
    for row, values in parsed.rows:
        clean, row_errors, row_warnings = validate_row(row, values)
        if clean is not None:
            unknown_staff = [e for e in clean["staff_emails"] if e not in staff_by_email]
            for email in unknown_staff:
                row_errors.append(RowError(row, "staff_email", f"{email} is not active staff of {tenant.name}"))
            if not fenced_keys.isdisjoint(roster_key_hashes(tenant.id, clean["student_key"])):
                row_errors.append(RowError(row, "student_key", "a deletion was requested for this student; not imported"))
        if row_errors:
            skipped.append(row)
            errors.extend(e.to_dict() for e in row_errors)
            continue
        warnings.extend(w.to_dict() for w in row_warnings)
        outcome = apply_row(db, tenant, students, staff_by_email, clean, "student_number" in kept)
        result[outcome] += 1
        applied.append(row)

    if preview:
        db.rollback()
    else:
        db.commit()
    return {
        "preview": preview,
        "columns_kept": kept,
        "columns_dropped": dropped,
        "headers": parsed.headers,
        "rows_total": len(parsed.rows),
        **result,
        "applied_rows": applied,
        "skipped_rows": skipped,
        "errors": errors,
        "warnings": warnings,
    }


def apply_row(db, tenant: Tenant, students: dict, staff_by_email: dict, clean: dict, keep_number: bool) -> str:
    """Create or update one row's student, contact and serves links; the outcome."""
    fields = {
        "first_name": clean["first_name"],
        "last_name": clean["last_name"],
        "grade": clean.get("grade"),
        "date_of_birth": clean.get("date_of_birth"),
        "email": clean.get("student_email"),
        "mobile": clean.get("student_mobile"),
        "preferred_language": clean.get("student_language") or "en",
    }
    if keep_number:
        fields["student_number"] = clean.get("student_number")
    student = students.get(clean["student_key"])
    if student is None:
        # Its id now, not at a flush: a row without staff needs no round trip of its own.
        student = Student(id=new_id(), tenant_id=tenant.id, roster_key=clean["student_key"], **fields)
        student.contacts = []
        db.add(student)
        if clean["staff_emails"]:
            db.flush()  # the serves links below reference it
        students[student.roster_key] = student
        outcome = "created"
    else:
        outcome = "updated" if _assign(student, fields) else "unchanged"

    if clean["has_contact"]:
        contact_fields = {
            "name": clean["contact_name"],
            "relationship_to_student": clean["contact_relationship"],
            "email": clean.get("contact_email"),
            "mobile": clean.get("contact_mobile"),
            "preferred_language": clean.get("contact_language") or "en",
            "authorised": clean.get("contact_authorised", True),
        }
        match = next((c for c in student.contacts if c.name.lower() == clean["contact_name"].lower()), None)
        if match is None:
            student.contacts.append(FamilyContact(tenant_id=tenant.id, **contact_fields))
            outcome = outcome if outcome == "created" else "updated"
        elif _assign(match, contact_fields) and outcome == "unchanged":
            outcome = "updated"

    for email in clean["staff_emails"]:
        user = staff_by_email[email]
        if db.get(ServesLink, (user.id, student.id)) is None:
            db.add(ServesLink(user_id=user.id, student_id=student.id, tenant_id=tenant.id))
            db.flush()
            if outcome == "unchanged":
                outcome = "updated"
    return outcome
