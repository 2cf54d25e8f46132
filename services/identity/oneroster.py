"""OneRoster 1.2 CSV packages: parse, check, map to students / family contacts / serves links.

A package is a zip (or a folder's files) with ``manifest.csv`` and the files it declares
(``file.<name>`` = bulk | delta | absent). Only ``FILES_READ`` are read, and of those only
the columns of ``ALLOWED_COLUMNS``: every other file (demographics.csv, courses.csv…) and
every other column (addresses, pronouns, passwords, ``metadata.*``…) is dropped while
parsing, before anything is stored, and reported by name with a count of the cells that
held a value (never the values). The one exception the administrator opts into:
``birth_dates`` reads ``demographics.csv``'s ``birthDate`` (and its ``sourcedId``) alone.

Mapping (data minimisation first):

* users with a ``student`` role at a school org -> students of that school
  (``roster_key`` = sourcedId; given/family name, first grade, ``identifier`` as the
  student number where the school has IDs on);
* users with a ``guardian`` / ``parent`` / ``relative`` role linked by ``agentSourcedIds``
  (either direction) -> family contacts of each linked student (name, relationship, email,
  sms or phone); ``authorised`` only when the administrator confirmed so for this import;
* ``teacher`` users -> existing active staff accounts of the school, by email (none is
  created);
* enrollments -> kept as ids (``SisEnrollment``); a class's teachers serve its students,
  and those "serves" links (``source="oneroster"``) follow the SIS on every import.

Which school a row belongs to is decided by ``orgs.csv``: an org is matched to a tenant the
importing administrator manages by its remembered ``sis_sourced_id``, else (first import)
by name; rows of any other org are skipped and reported. Bulk files make the roster match
(a student missing from a bulk ``users.csv`` is marked left, ``Student.left_at``; the
``left_students`` retention policy deletes them later); delta files apply their rows'
``status`` (``active`` upserts, ``tobedeleted`` removes). Any error (missing manifest,
wrong version, broken references, duplicate sourcedIds…) is reported by file and row and
nothing is applied: one transaction, rolled back.

Example::

    >>> package = read_package({"manifest.csv": b"propertyName,value\\n...", ...})
    >>> import_package(db, district_admin, package, preview=True, contacts_authorised=False)
    {"preview": True, "can_import": True, "students": {"created": 2, ...}, "errors": [], ...}
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import re
import zipfile
from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from services.identity import rosters
from services.identity.exceptions import RosterRejected
from services.identity.models import (
    FamilyContact, RosterImportRecord, ServesLink, SisEnrollment, SisStaffLink, Student, SubjectFence, Tenant, User,
)
from services.identity.students import STAFF_ROLES_BY_KIND
from weintervene.auth import AuthContext, Role, TenantKind
from weintervene.config import settings
from weintervene.db import utcnow
from weintervene.errors import BadRequest, PayloadTooLarge

ONEROSTER_VERSION = "1.2"
MANIFEST_VERSION = "1.0"
FILES_READ = ("manifest.csv", "orgs.csv", "users.csv", "roles.csv", "classes.csv", "enrollments.csv",
              "academicSessions.csv")
DATA_FILES = FILES_READ[1:]
# The columns read from each file; everything else is dropped while parsing.
ALLOWED_COLUMNS = {
    "orgs.csv": ("sourcedId", "status", "dateLastModified", "name", "type", "parentSourcedId"),
    "users.csv": ("sourcedId", "status", "dateLastModified", "givenName", "familyName",
                  "identifier", "email", "sms", "phone", "agentSourcedIds", "grades"),
    "roles.csv": ("sourcedId", "status", "dateLastModified", "userSourcedId", "roleType", "role", "orgSourcedId"),
    "classes.csv": ("sourcedId", "status", "dateLastModified", "schoolSourcedId"),
    "enrollments.csv": ("sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId",
                        "userSourcedId", "role"),
    "academicSessions.csv": ("sourcedId", "status", "dateLastModified"),
    "demographics.csv": ("sourcedId", "birthDate"),  # only with birth_dates
}
REQUIRED_COLUMNS = {
    "orgs.csv": ("sourcedId", "name", "type"),
    "users.csv": ("sourcedId", "givenName", "familyName"),
    "roles.csv": ("userSourcedId", "role", "orgSourcedId"),
    "classes.csv": ("sourcedId", "schoolSourcedId"),
    "enrollments.csv": ("sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role"),
    "academicSessions.csv": ("sourcedId",),
    "demographics.csv": ("sourcedId", "birthDate"),
}
GUARDIAN_ROLES = {"guardian": "guardian", "parent": "parent", "relative": "relative"}
STAFF_ROLES = {"teacher"}
STATUSES = {"active", "tobedeleted"}
ENROLLMENT_ROLES = ("student", "teacher", "administrator", "proctor")
MODES = {"bulk", "delta", "absent"}
# CEDS grade codes (OneRoster's vocabulary) -> ours; others are not stored (a warning).
GRADE_CODES = {"PK": "PK", "PR": "PK", "TK": "TK", "KG": "K", **{f"{n:02d}": str(n) for n in range(1, 13)}}
SOURCED_ID_MAX = 64  # a student's sourcedId becomes its roster_key (64 characters)
IMPORTER_ROLES = (Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN)
MAX_MEMBERS = 100
MAX_RATIO = 100
RATIO_CHECKED_FROM = 1 << 20
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$")


@dataclasses.dataclass
class Problem:
    file: str | None
    row: int | None
    column: str | None
    message: str

    def to_dict(self) -> dict:
        return {"file": self.file, "row": self.row, "column": self.column, "message": self.message}


@dataclasses.dataclass
class Table:
    name: str
    mode: str  # bulk | delta
    rows: list[tuple[int, dict]]  # (row number, {allowed column: value}); the header is row 1


@dataclasses.dataclass
class Package:
    """What was read of a package: its allowed files and columns, and what was not read."""

    sha256: str
    tables: dict[str, Table]
    modes: dict[str, str]
    files_not_read: list[str]
    columns_dropped: list[dict]  # [{"file", "column", "values": count of non-empty cells}]
    problems: list[Problem]

    def rows(self, name: str) -> list[tuple[int, dict]]:
        table = self.tables.get(name)
        return table.rows if table else []

    def mode(self, name: str) -> str:
        return self.modes.get(name, "absent")


# -- reading ------------------------------------------------------------------

def files_of_zip(raw: bytes) -> dict[str, bytes]:
    """A zip's CSV members by base name, size-checked before anything is inflated."""
    cfg = settings()
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise RosterRejected("The file is not a zip archive.", code="bad_package") from None
    members = [i for i in archive.infolist() if not i.is_dir()]
    if len(members) > MAX_MEMBERS:
        raise RosterRejected(f"The package holds more than {MAX_MEMBERS} files.", code="bad_package")
    if sum(i.file_size for i in members) > cfg.oneroster_max_unpacked_bytes:
        raise PayloadTooLarge(f"The package unpacks to more than {cfg.oneroster_max_unpacked_bytes} bytes.",
                              code="roster_too_large")
    for info in members:  # a deflate bomb inflates ~1000x; SIS CSVs 5-20x (small files spared)
        if info.file_size > RATIO_CHECKED_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise PayloadTooLarge(f"{info.filename} would unpack {info.file_size // max(info.compress_size, 1)} "
                                  f"times its compressed size (at most {MAX_RATIO}).", code="roster_too_large")
    files = {}
    for info in members:
        name = info.filename.rsplit("/", 1)[-1]
        if name.startswith(".") or info.filename.startswith("__MACOSX/"):
            continue
        if name in files:
            raise RosterRejected(f"The package holds {name} twice.", code="bad_package")
        with archive.open(info) as member:
            data = member.read(info.file_size + 1)
        if len(data) > info.file_size:  # a member that lies about its size
            raise RosterRejected(f"{name} is larger than the archive says.", code="bad_package")
        files[name] = data
    return files


def read_package(files: dict[str, bytes], birth_dates: bool = False) -> Package:
    """Parse a package's files ({name: bytes}); package-level problems raise RosterRejected."""
    if "manifest.csv" not in files:
        raise RosterRejected("The package has no manifest.csv: it is not a OneRoster CSV package.",
                             code="bad_package", details={"files": sorted(files)[:50]})
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    manifest = read_manifest(files["manifest.csv"])
    problems: list[Problem] = []
    modes: dict[str, str] = {}
    for name in DATA_FILES:
        mode = manifest.get("file." + name[:-4], "absent")
        if mode not in MODES:
            problems.append(Problem("manifest.csv", None, "file." + name[:-4], "use bulk, delta or absent"))
            continue
        if mode != "absent" and name not in files:
            problems.append(Problem(name, None, None, f"the manifest declares it {mode} but the package has no {name}"))
            continue
        if mode != "absent":
            modes[name] = mode
    if "orgs.csv" not in modes:
        problems.append(Problem("orgs.csv", None, None, "a package needs orgs.csv: it decides which school each row belongs to"))
    wanted = set(modes)
    if birth_dates and "demographics.csv" in files and manifest.get("file.demographics", "absent") != "absent":
        wanted.add("demographics.csv")
        modes["demographics.csv"] = manifest["file.demographics"]
    not_read = sorted(n for n in files if n != "manifest.csv" and n not in wanted)
    tables, dropped = {}, []
    for name in sorted(wanted):
        table, table_dropped, table_problems = read_table(name, modes[name], files[name])
        if table is not None:
            tables[name] = table
        dropped.extend(table_dropped)
        problems.extend(table_problems)
    return Package(sha256=digest.hexdigest(), tables=tables, modes=modes, files_not_read=not_read,
                   columns_dropped=dropped, problems=problems)


def read_manifest(raw: bytes) -> dict[str, str]:
    text = rosters.decode(raw)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or [c.strip() for c in rows[0][:2]] != ["propertyName", "value"]:
        raise RosterRejected("manifest.csv must start with the header propertyName,value.", code="bad_manifest")
    manifest = {}
    for record in rows[1:]:
        if len(record) >= 2 and record[0].strip():
            manifest[record[0].strip()] = record[1].strip()
    version = manifest.get("oneroster.version")
    if version != ONEROSTER_VERSION:
        raise RosterRejected(
            f"This is not a OneRoster {ONEROSTER_VERSION} package (manifest oneroster.version is "
            f"{version or 'missing'}).", code="wrong_version", details={"oneroster.version": version})
    if manifest.get("manifest.version", MANIFEST_VERSION) != MANIFEST_VERSION:
        raise RosterRejected(f"manifest.version must be {MANIFEST_VERSION}.", code="wrong_version")
    return manifest


def read_table(name: str, mode: str, raw: bytes) -> tuple[Table | None, list[dict], list[Problem]]:
    """One file's allowed columns; the others counted (never kept)."""
    cfg = settings()
    try:
        text = rosters.decode(raw)
    except RosterRejected as exc:
        return None, [], [Problem(name, None, None, exc.message)]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error):
        return None, [], [Problem(name, 1, None, "the header row cannot be read")]
    allowed = ALLOWED_COLUMNS[name]
    kept = {h: i for i, h in enumerate(header) if h in allowed}
    dropped_positions = {i: h or f"(unnamed column {i + 1})" for i, h in enumerate(header) if h not in allowed}
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in kept]
    if missing:
        return None, [], [Problem(name, 1, c, "required column missing") for c in missing]
    dropped_counts = dict.fromkeys(dropped_positions.values(), 0)
    rows, problems = [], []
    number = 1
    try:
        for record in reader:
            number += 1
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) >= cfg.oneroster_max_rows:
                raise PayloadTooLarge(f"{name} has more than {cfg.oneroster_max_rows} rows.", code="too_many_rows")
            for position, column in dropped_positions.items():
                if position < len(record) and record[position].strip():
                    dropped_counts[column] += 1
            if len(record) > len(header):
                problems.append(Problem(name, number, None, "the row has more cells than the header has columns"))
            rows.append((number, {c: (record[i].strip() if i < len(record) else "") for c, i in kept.items()}))
    except csv.Error as exc:
        problems.append(Problem(name, number, None, f"cannot be read as CSV: {exc}"))
    dropped = [{"file": name, "column": c, "values": n} for c, n in dropped_counts.items()]
    return Table(name, mode, rows), dropped, problems


# -- checking -----------------------------------------------------------------

@dataclasses.dataclass
class Checked:
    """The package's rows by sourcedId, once every row was checked."""

    orgs: dict[str, dict]
    users: dict[str, dict]
    roles: dict[str, list[dict]]  # user sourcedId -> its roles
    classes: dict[str, dict]
    enrollments: dict[str, dict]
    birth_dates: dict[str, object]


def check(package: Package) -> tuple[Checked, list[Problem]]:
    """Every row's values, duplicate sourcedIds and references; problems by file and row."""
    problems = list(package.problems)

    def by_id(name: str, key: str = "sourcedId") -> dict[str, dict]:
        seen: dict[str, dict] = {}
        delta = package.mode(name) == "delta"
        for number, values in package.rows(name):
            row = {**values, "_row": number}
            ident = values.get(key, "")
            if not ident:
                problems.append(Problem(name, number, key, "is required"))
                continue
            if len(ident) > 255:
                problems.append(Problem(name, number, key, "longer than 255 characters"))
                continue
            if ident in seen:
                problems.append(Problem(name, number, key, f"duplicate sourcedId (also row {seen[ident]['_row']})"))
                continue
            status = values.get("status", "")
            if status and status not in STATUSES:
                problems.append(Problem(name, number, "status", "use active or tobedeleted"))
            elif delta and not status:
                problems.append(Problem(name, number, "status", "is required in a delta file"))
            elif not delta and status == "tobedeleted":
                problems.append(Problem(name, number, "status", "tobedeleted belongs in a delta file, not a bulk one"))
            modified = values.get("dateLastModified", "")
            if modified and not ISO_DATETIME.match(modified):
                problems.append(Problem(name, number, "dateLastModified", "use an ISO 8601 date and time"))
            elif delta and not modified:
                problems.append(Problem(name, number, "dateLastModified", "is required in a delta file"))
            seen[ident] = row
        return seen

    orgs = by_id("orgs.csv")
    users = by_id("users.csv")
    classes = by_id("classes.csv")
    enrollments = by_id("enrollments.csv")
    by_id("academicSessions.csv")
    roles: dict[str, list[dict]] = defaultdict(list)
    seen_roles: set[str] = set()
    for number, values in package.rows("roles.csv"):
        ident = values.get("sourcedId", "")
        if ident and ident in seen_roles:
            problems.append(Problem("roles.csv", number, "sourcedId", "duplicate sourcedId"))
            continue
        seen_roles.add(ident)
        for column in REQUIRED_COLUMNS["roles.csv"]:
            if not values.get(column):
                problems.append(Problem("roles.csv", number, column, "is required"))
        if values.get("status") and values["status"] not in STATUSES:
            problems.append(Problem("roles.csv", number, "status", "use active or tobedeleted"))
        roles[values.get("userSourcedId", "")].append({**values, "_row": number})

    def reference(file: str, number: int, column: str, ident: str, targets: dict, what: str):
        if ident and ident not in targets:
            problems.append(Problem(file, number, column, f"no {what} with this sourcedId in the package"))

    for org in orgs.values():
        reference("orgs.csv", org["_row"], "parentSourcedId", org.get("parentSourcedId", ""), orgs, "org")
    # A delta file may name rows the package does not hold (they are stored); a bulk one may not.
    users_bulk = package.mode("users.csv") == "bulk"
    classes_bulk = package.mode("classes.csv") == "bulk"
    for user_id, user_roles in roles.items():
        for role in user_roles:
            if users_bulk:
                reference("roles.csv", role["_row"], "userSourcedId", user_id, users, "user")
            reference("roles.csv", role["_row"], "orgSourcedId", role.get("orgSourcedId", ""), orgs, "org")
    for user in users.values():
        for agent in split_list(user.get("agentSourcedIds", "")):
            reference("users.csv", user["_row"], "agentSourcedIds", agent, users, "user")
    for klass in classes.values():
        reference("classes.csv", klass["_row"], "schoolSourcedId", klass["schoolSourcedId"], orgs, "org")
    for enrollment in enrollments.values():
        number = enrollment["_row"]
        reference("enrollments.csv", number, "schoolSourcedId", enrollment["schoolSourcedId"], orgs, "org")
        if classes_bulk:
            reference("enrollments.csv", number, "classSourcedId", enrollment["classSourcedId"], classes, "class")
        if users_bulk:
            reference("enrollments.csv", number, "userSourcedId", enrollment["userSourcedId"], users, "user")
        if enrollment["role"] not in ENROLLMENT_ROLES:
            problems.append(Problem("enrollments.csv", number, "role", "use " + ", ".join(ENROLLMENT_ROLES)))
    birth_dates = {}
    for number, values in package.rows("demographics.csv"):
        if values.get("birthDate"):
            try:
                birth_dates[values["sourcedId"]] = rosters.parse_date(values["birthDate"])
            except ValueError as exc:
                problems.append(Problem("demographics.csv", number, "birthDate", str(exc)))
    return Checked(orgs, users, roles, classes, enrollments, birth_dates), problems


def split_list(value: str) -> list[str]:
    """OneRoster lists are comma-separated inside one (quoted) cell."""
    return [p.strip() for p in value.split(",") if p.strip()]


# -- which tenant each org is -------------------------------------------------

def managed_tenants(db, auth: AuthContext) -> list[Tenant]:
    """The school (a school admin) or the district and its schools (a district admin)."""
    auth.require(*IMPORTER_ROLES)
    tenant = db.get(Tenant, auth.tenant_id)
    if tenant is None:
        raise BadRequest("Rosters are imported into a school or district.", code="invalid_tenant")
    if auth.role is Role.DISTRICT_ADMIN:
        if tenant.kind != TenantKind.DISTRICT.value:
            raise BadRequest("Rosters are imported into a school or district.", code="invalid_tenant")
        return [tenant, *db.scalars(select(Tenant).where(Tenant.parent_id == tenant.id, Tenant.status == "active"))]
    if tenant.kind != TenantKind.SCHOOL.value:
        raise BadRequest("OneRoster packages are imported into a school or district.", code="invalid_tenant")
    return [tenant]


def match_orgs(orgs: dict[str, dict], tenants: list[Tenant]) -> dict[str, Tenant]:
    """org sourcedId -> the managed tenant it is: remembered sourcedId first, then the name
    (schools to schools, a district to a district), each tenant matched once."""
    matched: dict[str, Tenant] = {}
    by_sourced_id = {t.sis_sourced_id: t for t in tenants if t.sis_sourced_id}
    taken = set()
    for ident, org in orgs.items():
        if ident in by_sourced_id:
            matched[ident] = by_sourced_id[ident]
            taken.add(by_sourced_id[ident].id)
    for ident, org in orgs.items():
        if ident in matched:
            continue
        kind = TenantKind.DISTRICT.value if org.get("type") == "district" else TenantKind.SCHOOL.value
        name = org.get("name", "").strip().lower()
        candidates = [t for t in tenants if t.id not in taken and not t.sis_sourced_id
                      and t.kind == kind and t.name.strip().lower() == name]
        if len(candidates) == 1:
            matched[ident] = candidates[0]
            taken.add(candidates[0].id)
    return matched


# -- the import ---------------------------------------------------------------

class Counter(dict):
    def add(self, key: str, n: int = 1) -> None:
        self[key] = self.get(key, 0) + n


def import_package(db, auth: AuthContext, package: Package, preview: bool, contacts_authorised: bool = False) -> dict:
    """Check the package, then apply it (or, with ``preview``, only try) in one transaction.

    Any error: nothing is applied (``imported`` false, ``can_import`` false, the errors
    listed). The gateway answers such an import 400 ``roster_package_invalid`` with the
    report as its details: raised here, nameko would carry the details as strings.
    """
    tenants = managed_tenants(db, auth)
    checked, problems = check(package)
    matched = match_orgs(checked.orgs, tenants)
    schools = {ident: t for ident, t in matched.items() if t.kind == TenantKind.SCHOOL.value}
    run = Run(db, auth, package, checked, schools, contacts_authorised)
    report = {
        "preview": preview,
        "format": f"oneroster-{ONEROSTER_VERSION}",
        "package_sha256": package.sha256,
        "modes": dict(sorted(package.modes.items())),
        "files_read": ["manifest.csv", *sorted(package.tables)],
        "files_not_read": package.files_not_read,
        "columns_dropped": package.columns_dropped,
        "orgs": [{"sourced_id": ident, "name": org.get("name"), "type": org.get("type"),
                  "tenant_id": matched[ident].id if ident in matched else None,
                  "tenant_name": matched[ident].name if ident in matched else None}
                 for ident, org in checked.orgs.items()],
        "contacts_authorised": contacts_authorised,
    }
    if not problems:
        for tenant in matched.values():
            if tenant.sis_sourced_id is None:
                tenant.sis_sourced_id = next(i for i, t in matched.items() if t is tenant)
        run.apply()
        problems = run.problems
    report.update({
        "students": run.students, "contacts": run.contacts, "staff": run.staff, "serves_links": run.links,
        "skipped": run.skipped_report(),
        "errors": [p.to_dict() for p in problems],
        "warnings": [w.to_dict() for w in run.warnings],
        "can_import": not problems,
    })
    report["imported"] = not preview and not problems
    if not report["imported"]:
        db.rollback()
        return report
    db.add(RosterImportRecord(
        tenant_id=auth.tenant_id, actor_user_id=auth.user_id, kind="oneroster", package_sha256=package.sha256,
        contacts_authorised=contacts_authorised,
        counts={"students": run.students, "contacts": run.contacts, "serves_links": run.links},
    ))
    db.commit()
    return report


class Run:
    """One application of a checked package to the matched schools (inside the caller's transaction)."""

    def __init__(self, db, auth, package: Package, checked: Checked, schools: dict[str, Tenant], contacts_authorised: bool):
        self.db, self.auth, self.package, self.c = db, auth, package, checked
        self.schools = schools  # org sourcedId -> school tenant
        self.contacts_authorised = contacts_authorised
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.students = Counter(created=0, updated=0, unchanged=0, left=0, returned=0)
        self.contacts = Counter(created=0, updated=0, unchanged=0, removed=0)
        self.staff = Counter(matched=0, unmatched=0, removed=0)
        self.links = Counter(added=0, removed=0, unchanged=0)
        self.skipped = defaultdict(Counter)  # org sourcedId -> {users, classes, enrollments}

    def skipped_report(self) -> list[dict]:
        return [{"org_sourced_id": ident, "org_name": self.c.orgs.get(ident, {}).get("name"),
                 "reason": "not a school you manage", **counts}
                for ident, counts in sorted(self.skipped.items())]

    # The school a user belongs to: its (primary) role at a managed school.
    def _school_roles(self, user_id: str) -> list[dict]:
        roles = [r for r in self.c.roles.get(user_id, []) if r.get("status") != "tobedeleted"]
        return sorted(roles, key=lambda r: r.get("roleType") != "primary")

    def apply(self) -> None:
        db = self.db
        tenant_ids = [t.id for t in self.schools.values()]
        self.fenced = set(db.scalars(select(SubjectFence.roster_key_hash).where(
            SubjectFence.tenant_id.in_(tenant_ids), SubjectFence.roster_key_hash.is_not(None))))
        self.existing = {(s.tenant_id, s.roster_key): s for s in db.scalars(
            select(Student).where(Student.tenant_id.in_(tenant_ids)).options(selectinload(Student.contacts)))}
        self.stored_staff = {(l.tenant_id, l.sourced_id) for l in db.scalars(
            select(SisStaffLink).where(SisStaffLink.tenant_id.in_(tenant_ids)))}
        placed_students, placed_teachers = self._place_users()
        self._apply_students(placed_students)
        self._apply_contacts(placed_students)
        self._apply_staff(placed_teachers)
        self._apply_enrollments()
        self._derive_links(tenant_ids)
        db.flush()

    def _place_users(self) -> tuple[dict[str, Tenant], dict[tuple[str, str], Tenant]]:
        """({student sourcedId: school}, {(teacher sourcedId, school id): school}) of managed schools."""
        students, teachers = {}, {}
        for user_id in self.c.users:
            roles = self._school_roles(user_id)
            kinds = {r["role"] for r in roles}
            role = "student" if "student" in kinds else "teacher" if kinds & STAFF_ROLES else None
            if role is None and not roles:
                # A delta row without its roles: a student or teacher already imported.
                known = next((t for t in self.schools.values() if (t.id, user_id) in self.existing), None)
                if known is not None:
                    students[user_id] = known
                for school in self.schools.values():
                    if (school.id, user_id) in self.stored_staff:
                        teachers[(user_id, school.id)] = school
                continue
            if role is None:
                continue  # guardians follow their students; other roles are not ours
            orgs = [r["orgSourcedId"] for r in roles if r["role"] == role]
            managed = [self.schools[o] for o in orgs if o in self.schools]
            if not managed:
                self.skipped[orgs[0]].add("users")
            elif role == "student":
                students[user_id] = managed[0]
            else:  # a teacher may teach at several schools
                for school in managed:
                    teachers[(user_id, school.id)] = school
        return students, teachers

    def _apply_students(self, placed: dict[str, Tenant]) -> None:
        users_mode = self.package.mode("users.csv")
        seen: set[str] = set()
        for user_id, school in placed.items():
            user = self.c.users[user_id]
            key = (school.id, user_id)
            student = self.existing.get(key)
            if user.get("status") == "tobedeleted":
                if student is not None and student.left_at is None:
                    student.left_at = utcnow()
                    self.students.add("left")
                continue
            if len(user_id) > SOURCED_ID_MAX:
                self.problems.append(Problem("users.csv", user["_row"], "sourcedId",
                                             f"a student's sourcedId is at most {SOURCED_ID_MAX} characters"))
                continue
            if not self.fenced.isdisjoint(rosters.roster_key_hashes(school.id, user_id)):
                self.warnings.append(Problem("users.csv", user["_row"], None,
                                             "a deletion was requested for this student; not imported"))
                continue
            clean = self._student_fields(user)
            if clean is None:
                continue
            outcome = rosters.apply_row(self.db, school, _SchoolView(self.existing, school.id), {}, clean,
                                        school.student_ids_enabled)
            student = self.existing[key]
            if student.left_at is not None:
                student.left_at = None
                outcome = "updated" if outcome == "unchanged" else outcome
                self.students.add("returned")
            self.students.add(outcome)
            seen.add(student.id)
        if users_mode == "bulk":
            now = utcnow()
            school_ids = {t.id for t in self.schools.values()}
            for (tenant_id, _key), student in self.existing.items():
                if student.id not in seen and student.left_at is None and tenant_id in school_ids:
                    student.left_at = now
                    self.students.add("left")

    def _student_fields(self, user: dict) -> dict | None:
        number = user["_row"]
        row_problems = []
        for column, limit in (("givenName", 100), ("familyName", 100), ("identifier", 32)):
            if len(user.get(column, "")) > limit:
                row_problems.append(Problem("users.csv", number, column, f"longer than {limit} characters"))
        for column in ("givenName", "familyName"):
            if not user.get(column):
                row_problems.append(Problem("users.csv", number, column, "is required"))
        if row_problems:
            self.problems.extend(row_problems)
            return None
        grade = None
        codes = split_list(user.get("grades", ""))
        if codes:
            grade = GRADE_CODES.get(codes[0].upper())
            if grade is None:
                self.warnings.append(Problem("users.csv", number, "grades", "not a grade we keep (PK, TK, KG, 01-12); not stored"))
        return {
            "student_key": user["sourcedId"], "first_name": user["givenName"], "last_name": user["familyName"],
            "grade": grade, "date_of_birth": self.c.birth_dates.get(user["sourcedId"]),
            "student_number": user.get("identifier") or None, "student_email": None, "student_mobile": None,
            "student_language": None, "has_contact": False, "staff_emails": [],
        }

    def _apply_contacts(self, placed: dict[str, Tenant]) -> None:
        """Guardians linked to placed students, either direction of ``agentSourcedIds``."""
        links: dict[str, set[str]] = defaultdict(set)  # student sourcedId -> guardian sourcedIds
        guardian_role = {}
        for user_id, user in self.c.users.items():
            kinds = [r["role"] for r in self._school_roles(user_id)]
            relation = next((GUARDIAN_ROLES[k] for k in kinds if k in GUARDIAN_ROLES), None)
            if relation:
                guardian_role[user_id] = relation
        for user_id, user in self.c.users.items():
            for agent in split_list(user.get("agentSourcedIds", "")):
                if user_id in guardian_role:
                    links[agent].add(user_id)
                elif agent in guardian_role:
                    links[user_id].add(agent)
        users_bulk = self.package.mode("users.csv") == "bulk"
        done = set()
        for student_id, school in placed.items():
            student = self.existing.get((school.id, student_id))
            if student is None or student.left_at is not None:
                continue
            wanted = {}
            for guardian_id in sorted(links.get(student_id, ())):
                guardian = self.c.users[guardian_id]
                fields = self._contact_fields(guardian, guardian_role[guardian_id])
                if fields is not None:
                    wanted[guardian_id] = fields
            by_sourced_id = {c.sis_sourced_id: c for c in student.contacts if c.sis_sourced_id}
            for guardian_id, fields in wanted.items():
                contact = by_sourced_id.get(guardian_id)
                if contact is None:
                    student.contacts.append(FamilyContact(tenant_id=school.id, sis_sourced_id=guardian_id, **fields))
                    self.contacts.add("created")
                elif rosters._assign(contact, fields):
                    self.contacts.add("updated")
                else:
                    self.contacts.add("unchanged")
            for guardian_id, contact in by_sourced_id.items():
                gone = guardian_id not in wanted and (
                    users_bulk or self.c.users.get(guardian_id, {}).get("status") == "tobedeleted")
                if gone:
                    student.contacts.remove(contact)
                    self.contacts.add("removed")
            done.add(student.id)
        if users_bulk:
            return
        # A delta's guardian rows also reach the contacts of students the delta does not list.
        for student in self.existing.values():
            if student.id in done or student.left_at is not None:
                continue
            for contact in list(student.contacts):
                guardian = self.c.users.get(contact.sis_sourced_id or "")
                if guardian is None:
                    continue
                if guardian.get("status") == "tobedeleted":
                    student.contacts.remove(contact)
                    self.contacts.add("removed")
                    continue
                fields = self._contact_fields(guardian, guardian_role.get(contact.sis_sourced_id,
                                                                          contact.relationship_to_student))
                if fields is not None:
                    self.contacts.add("updated" if rosters._assign(contact, fields) else "unchanged")

    def _contact_fields(self, guardian: dict, relation: str) -> dict | None:
        number = guardian["_row"]
        if guardian.get("status") == "tobedeleted":
            return None
        name = f"{guardian.get('givenName', '')} {guardian.get('familyName', '')}".strip()
        if not name or len(name) > 200:
            self.problems.append(Problem("users.csv", number, "givenName", "a guardian needs a name of at most 200 characters"))
            return None
        email = mobile = None
        if guardian.get("email"):
            try:
                email = rosters.parse_email(guardian["email"])
            except ValueError:
                self.warnings.append(Problem("users.csv", number, "email", "not a valid email address; not stored"))
        for column in ("sms", "phone"):
            if guardian.get(column) and mobile is None:
                try:
                    mobile = rosters.normalise_mobile(guardian[column])
                except ValueError:
                    self.warnings.append(Problem("users.csv", number, column, "not a phone number; not stored"))
        if email is None and mobile is None:
            self.warnings.append(Problem("users.csv", number, None, "a guardian with no usable email or phone is not stored"))
            return None
        return {"name": name, "relationship_to_student": relation, "email": email, "mobile": mobile,
                "preferred_language": "en", "authorised": self.contacts_authorised}

    def _apply_staff(self, placed: dict[tuple[str, str], Tenant]) -> None:
        db = self.db
        for (user_id, _school_id), school in placed.items():
            user = self.c.users[user_id]
            link = db.get(SisStaffLink, (school.id, user_id))
            if user.get("status") == "tobedeleted":
                if link is not None:
                    db.delete(link)
                    self.staff.add("removed")
                continue
            email = (user.get("email") or "").lower()
            account = db.scalar(select(User).where(
                User.email == email, User.tenant_id == school.id, User.is_active.is_(True),
                User.role.in_(STAFF_ROLES_BY_KIND[school.kind]))) if email else None
            if account is None:
                self.staff.add("unmatched")
                self.warnings.append(Problem("users.csv", user["_row"], "email",
                                             f"no active staff account of {school.name} has this email: this teacher's classes give no serves links"))
                if link is not None:
                    db.delete(link)
                continue
            self.staff.add("matched")
            if link is None:
                db.add(SisStaffLink(tenant_id=school.id, sourced_id=user_id, user_id=account.id))
            elif link.user_id != account.id:
                link.user_id = account.id
        if self.package.mode("users.csv") == "bulk":
            in_package = {(school_id, user_id) for user_id, school_id in placed}
            for link in db.scalars(select(SisStaffLink).where(
                    SisStaffLink.tenant_id.in_([t.id for t in self.schools.values()]))):
                if (link.tenant_id, link.sourced_id) not in in_package:
                    db.delete(link)
                    self.staff.add("removed")
        db.flush()

    def _apply_enrollments(self) -> None:
        mode = self.package.mode("enrollments.csv")
        if mode == "absent":
            return
        db = self.db
        school_ids = [t.id for t in self.schools.values()]
        stored = {(e.tenant_id, e.sourced_id): e for e in db.scalars(
            select(SisEnrollment).where(SisEnrollment.tenant_id.in_(school_ids)))}
        seen = set()
        for ident, row in self.c.enrollments.items():
            school = self.schools.get(row["schoolSourcedId"])
            if school is None:
                self.skipped[row["schoolSourcedId"]].add("enrollments")
                continue
            key = (school.id, ident)
            if row.get("status") == "tobedeleted" or row["role"] not in ("student", "teacher"):
                if key in stored:
                    db.delete(stored.pop(key))
                continue
            seen.add(key)
            values = {"class_sourced_id": row["classSourcedId"], "user_sourced_id": row["userSourcedId"],
                      "role": row["role"]}
            if key in stored:
                rosters._assign(stored[key], values)
            else:
                db.add(SisEnrollment(tenant_id=school.id, sourced_id=ident, **values))
        for ident, klass in self.c.classes.items():
            if klass["schoolSourcedId"] not in self.schools:
                self.skipped[klass["schoolSourcedId"]].add("classes")
        if mode == "bulk":
            for key, enrollment in stored.items():
                if key not in seen:
                    db.delete(enrollment)
        db.flush()

    def _derive_links(self, tenant_ids: list[str]) -> None:
        """Serves links = each class's teachers x its students (not left), per school."""
        db = self.db
        if not tenant_ids:
            return
        teachers = defaultdict(set)
        students = defaultdict(set)
        for e in db.scalars(select(SisEnrollment).where(SisEnrollment.tenant_id.in_(tenant_ids))):
            (teachers if e.role == "teacher" else students)[(e.tenant_id, e.class_sourced_id)].add(e.user_sourced_id)
        staff = {(l.tenant_id, l.sourced_id): l.user_id for l in db.scalars(
            select(SisStaffLink).where(SisStaffLink.tenant_id.in_(tenant_ids)))}
        student_ids = {(s.tenant_id, s.roster_key): s.id for s in db.scalars(
            select(Student).where(Student.tenant_id.in_(tenant_ids), Student.left_at.is_(None)))}
        wanted = {}
        for klass, class_teachers in teachers.items():
            tenant_id = klass[0]
            for teacher in class_teachers:
                user_id = staff.get((tenant_id, teacher))
                if user_id is None:
                    continue
                for student in students.get(klass, ()):
                    student_id = student_ids.get((tenant_id, student))
                    if student_id is not None:
                        wanted[(user_id, student_id)] = tenant_id
        existing = {(l.user_id, l.student_id): l for l in db.scalars(
            select(ServesLink).where(ServesLink.tenant_id.in_(tenant_ids)))}
        for pair, link in existing.items():
            if link.source == "oneroster" and pair not in wanted:
                db.delete(link)
                self.links.add("removed")
        for pair, tenant_id in wanted.items():
            if pair in existing:
                self.links.add("unchanged")
            else:
                db.add(ServesLink(user_id=pair[0], student_id=pair[1], tenant_id=tenant_id, source="oneroster"))
                self.links.add("added")


class _SchoolView(dict):
    """``rosters.apply_row``'s {roster_key: student} over the run's {(tenant, key): student}."""

    def __init__(self, existing: dict, tenant_id: str):
        super().__init__()
        self.existing, self.tenant_id = existing, tenant_id

    def get(self, key, default=None):
        return self.existing.get((self.tenant_id, key), default)

    def __setitem__(self, key, student):
        self.existing[(self.tenant_id, key)] = student


def files_of_upload(files: dict[str, bytes]) -> dict[str, bytes]:
    """An upload's files: one zip (unpacked) or the package's CSV files themselves."""
    if len(files) == 1:
        (name, data), = files.items()
        if name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04":
            return files_of_zip(data)
    return {name.rsplit("/", 1)[-1]: data for name, data in files.items()}


def left_before(db, tenant_id: str, older_than: str) -> list[dict]:
    """Students of the tenant (and a district's schools) marked left before ``older_than``
    whose deletion is not already under way (no pending fence): what a ``left_students``
    retention policy deletes. Example: -> [{"id": "9b1…", "tenant_id": "4c0…"}]."""
    try:
        cutoff = datetime.fromisoformat(older_than)
    except (TypeError, ValueError):
        raise BadRequest("older_than must be an ISO 8601 instant.", code="invalid_input") from None
    if cutoff.tzinfo is None:
        raise BadRequest("older_than must carry its UTC offset.", code="invalid_input")
    tenant_ids = [tenant_id, *db.scalars(select(Tenant.id).where(Tenant.parent_id == tenant_id))]
    fenced = select(SubjectFence.subject_id).where(SubjectFence.scope == "student", SubjectFence.subject_id.is_not(None))
    rows = db.execute(select(Student.id, Student.tenant_id).where(
        Student.tenant_id.in_(tenant_ids), Student.left_at.is_not(None), Student.left_at < cutoff,
        Student.id.not_in(fenced)).order_by(Student.left_at).limit(10_000)).all()
    return [{"id": r.id, "tenant_id": r.tenant_id} for r in rows]
