"""Who may see which student: the access rules other services rely on.

- teachers and program staff: only the students they serve (a serves link);
- school and program admins: every student of their own tenant;
- district admins: every student of their district's schools;
- operators and auditors: no student data at all.

A student whose deletion was requested is fenced: every access raises
``subject_fenced`` from then on. Students 18 or older hold their own rights and
may receive information themselves (``is_adult``).

Example::

    >>> check_access(db, teacher_auth, diego_id)
    {"student_id": "…", "tenant_id": lincoln, "district_id": riverside,
     "is_adult": False, "first_name": "Diego"}
"""
from __future__ import annotations

from datetime import date
from operator import itemgetter
from typing import NamedTuple

from sqlalchemy import and_, bindparam, cast, delete, exists, func, literal, literal_column, null, or_, select, union_all

from services.identity.exceptions import StudentForbidden, StudentNotFound, SubjectFenced
from services.identity.models import FamilyContact, ServesLink, Student, SubjectFence, Tenant, User
from services.identity.tenants import TENANT_INFO_COLUMNS, TenantInfoFacts, paginate, tenant_info, tenant_infos
from weintervene.auth import STUDENT_DATA_ROLES, AuthContext, Role, TenantKind
from weintervene.errors import BadRequest, Forbidden, WeInterveneError
from weintervene.hashing import keyed_hash, keyed_hashes

ADMIN_ROLES = (Role.SCHOOL_ADMIN, Role.PROGRAM_ADMIN, Role.DISTRICT_ADMIN)
STAFF_ROLES_BY_KIND = {
    TenantKind.SCHOOL.value: {Role.TEACHER.value, Role.SCHOOL_ADMIN.value},
    TenantKind.PROGRAM.value: {Role.PROGRAM_STAFF.value, Role.PROGRAM_ADMIN.value},
}
ADULT_AGE = 18


def age_on(date_of_birth: date | None, today: date | None = None) -> int | None:
    if date_of_birth is None:
        return None
    today = today or date.today()
    return today.year - date_of_birth.year - ((today.month, today.day) < (date_of_birth.month, date_of_birth.day))


def is_adult(student: Student | StudentFacts, today: date | None = None) -> bool:
    age = age_on(student.date_of_birth, today)
    return age is not None and age >= ADULT_AGE


def subject_hash(scope: str, subject_id: str) -> str:
    """What a new fence is found by: a keyed hash (current key), so it names nobody once the raw id is cleared."""
    return keyed_hash(f"identity-fence:{scope}", str(subject_id))


def subject_hashes(scope: str, subject_id: str) -> list[str]:
    """What a fence may be stored as: the keyed hash under every key still accepted
    (a fence sealed under an older key keeps no raw id to recompute it from)."""
    return keyed_hashes(f"identity-fence:{scope}", str(subject_id))


def is_fenced(db, scope: str, subject_id: str) -> bool:
    """A deletion was requested for the subject (fences are found by their keyed hash)."""
    return db.scalar(
        select(func.count()).select_from(SubjectFence)
        .where(SubjectFence.scope == scope, SubjectFence.subject_hash.in_(subject_hashes(scope, subject_id)))
    ) > 0


def require_student_role(auth: AuthContext) -> None:
    if auth.role not in STUDENT_DATA_ROLES:
        raise StudentForbidden("Your role sees no student data.")


def scope_filter(auth: AuthContext):
    """A WHERE clause selecting the students ``auth`` may see."""
    if auth.role in (Role.TEACHER, Role.PROGRAM_STAFF):
        served = select(ServesLink.student_id).where(ServesLink.user_id == auth.user_id)
        return (Student.tenant_id == auth.tenant_id) & Student.id.in_(served)
    if auth.role in (Role.SCHOOL_ADMIN, Role.PROGRAM_ADMIN):
        return Student.tenant_id == auth.tenant_id
    if auth.role is Role.DISTRICT_ADMIN:
        schools = select(Tenant.id).where(Tenant.parent_id == auth.tenant_id)
        return Student.tenant_id.in_(schools)
    raise StudentForbidden("Your role sees no student data.")


class TenantFacts(NamedTuple):
    """What the access check needs of a student's tenant (read as columns, not an ORM entity)."""

    kind: str
    parent_id: str | None
    status: str


class StudentFacts(NamedTuple):
    """A student as the access check reads it: Student's own attribute names, so
    :func:`is_adult`, :func:`self_contact` and :func:`access_summary` take either.

    Example: ``StudentFacts("s1", "lincoln", "Diego", "Ramos", None, None, None, "en",
    TenantFacts("school", "riverside", "active"))``
    """

    id: str
    tenant_id: str
    first_name: str
    last_name: str
    date_of_birth: date | None
    email: str | None
    mobile: str | None
    preferred_language: str
    tenant: TenantFacts


class ContactFacts(NamedTuple):
    """A family contact as the access check reads it: FamilyContact's attribute names,
    so :func:`contact_dict` takes either."""

    id: str
    name: str
    relationship_to_student: str
    email: str | None
    mobile: str | None
    preferred_language: str
    authorised: bool


# Plain table columns, not ORM entities: the check needs eight of the student's columns,
# three of its tenant's and seven of each contact's. Loading three whole entities per row
# (instance processing, the identity map, every timestamp column parsed) was most of its
# cost, and it runs for every share.
_STUDENT_COLUMNS = [Student.__table__.c[name] for name in StudentFacts._fields if name != "tenant"]
_TENANT_COLUMNS = [Tenant.__table__.c[name] for name in TenantFacts._fields]
_CONTACT_COLUMNS = [FamilyContact.__table__.c[name] for name in ContactFacts._fields]
_CONTACTS_AT = 3 + len(_STUDENT_COLUMNS) + len(_TENANT_COLUMNS)  # where a row's contact columns start


def _access_statement(tenant_fence_known: bool):
    """The one statement of :func:`_checked_access`, built once (SQLAlchemy then keeps its
    compiled form); the values come as parameters.

    A row is: the two fences and the serves link (booleans), the student's columns,
    its tenant's, one named contact's (NULLs when none); one row even without a student.
    """
    student, tenant, contact = Student.__table__, Tenant.__table__, FamilyContact.__table__
    fence, serves_link = SubjectFence.__table__, ServesLink.__table__
    student_fenced = exists().where(fence.c.scope == "student",
                                    fence.c.subject_hash.in_(bindparam("student_hashes", expanding=True)))
    tenant_fenced = (exists().where(fence.c.scope == "tenant",
                                    fence.c.subject_hash.in_(bindparam("tenant_hashes", expanding=True)))
                     if tenant_fence_known else literal(False))
    serves = exists().where(serves_link.c.user_id == bindparam("user_id"),
                            serves_link.c.student_id == student.c.id)
    anchor = select(literal(1).label("one")).subquery()  # one row even when there is no such student
    return (
        select(student_fenced.label("student_fenced"), tenant_fenced.label("tenant_fenced"),
               serves.label("serves"), *_STUDENT_COLUMNS, *_TENANT_COLUMNS, *_CONTACT_COLUMNS)
        .select_from(anchor)
        .outerjoin(student, student.c.id == bindparam("student_id"))
        .outerjoin(tenant, tenant.c.id == student.c.tenant_id)
        .outerjoin(contact, and_(contact.c.student_id == student.c.id,
                                 contact.c.id.in_(bindparam("contact_ids", expanding=True))))
    )


_ACCESS = _access_statement(tenant_fence_known=True)
_ACCESS_BY_DISTRICT = _access_statement(tenant_fence_known=False)


class _FactRows:
    """Facts of several kinds read by ONE statement: a UNION ALL of one SELECT per kind.

    Column 0 names a row's kind. A UNION needs every SELECT to have the same columns, so
    each kind's columns take the next free column of their type (text with text, dates with
    dates, ...) and the columns a kind leaves free are NULLs of that type: the access
    check's five kinds fit in 16 columns and the kind, where one per column would be 35.

    Example::

        rows = _FactRows({"fence": [fence.c.scope, fence.c.subject_hash], ...})
        rows.select("fence", fence.c.subject_hash.in_(...))   # one SELECT of the UNION
        rows.read(row) -> ("fence", ("student", "3f1e..."))
    """

    def __init__(self, kinds: dict[str, list]):
        self.slot_types: list = []  # each slot: (python type of its values, SQL type of its NULLs)
        self.columns: dict[str, list[tuple[int, object]]] = {}  # kind -> [(slot, column)]
        for kind, columns in kinds.items():
            taken: list[tuple[int, object]] = []
            for column in columns:
                family = column.type.python_type
                used = {slot for slot, _ in taken}
                slot = next((n for n, (f, _) in enumerate(self.slot_types) if f is family and n not in used), None)
                if slot is None:
                    slot = len(self.slot_types)
                    self.slot_types.append((family, column.type))
                taken.append((slot, column))
            self.columns[kind] = taken
        self.readers = {kind: itemgetter(*(1 + slot for slot, _ in taken)) for kind, taken in self.columns.items()}

    def select(self, kind: str, *where, outer_join=None):
        """The SELECT of ``kind``'s rows: its columns in their slots, NULLs elsewhere.

        The NULLs of a slot of dates, numbers or booleans are typed (CAST): PostgreSQL types
        a UNION's columns pairwise, and two untyped NULLs make a text column that a date, say,
        cannot join. Text slots need no CAST (a shorter statement to render and parse)."""
        by_slot = dict(self.columns[kind])
        values = [by_slot[n] if n in by_slot else null() if family is str else cast(null(), sql_type)
                  for n, (family, sql_type) in enumerate(self.slot_types)]
        query = select(literal_column(f"'{kind}'").label("kind"), *(v.label(f"slot_{n}") for n, v in enumerate(values)))
        if outer_join is not None:
            query = query.select_from(outer_join)
        return query.where(*where)

    def read(self, row) -> tuple[str, tuple]:
        """A row's kind and its kind's values, in the order its columns were given."""
        kind = row[0]
        values = self.readers[kind](row)
        return kind, values if isinstance(values, tuple) else (values,)


def _batch_access_statement():
    """The one statement of :func:`share_contexts`: every fact the access checks of a batch of
    shares need, as a set per kind (each looked up by an index), not per share:

    - ``student``: each student named, with its tenant's kind, parent and status;
    - ``fence``: the deletion fences among the students' and the callers' tenants' hashes;
    - ``serves``: the serves links between the staff callers and the students;
    - ``contact``: the contacts named of the students named (its ``student_id`` first);
    - ``tenant``: the tenants named in ``tenant_ids`` (the columns of :func:`tenants.tenant_info`).

    Two shares of the same student (or caller, or contact) read it once.
    """
    student, tenant, contact = Student.__table__, Tenant.__table__, FamilyContact.__table__
    fence, serves_link = SubjectFence.__table__, ServesLink.__table__
    facts = _FactRows({
        "student": [*_STUDENT_COLUMNS, *_TENANT_COLUMNS],
        "fence": [fence.c.scope, fence.c.subject_hash],
        "serves": [serves_link.c.user_id, serves_link.c.student_id],
        "contact": [contact.c.student_id, *_CONTACT_COLUMNS],
        "tenant": TENANT_INFO_COLUMNS,
    })
    student_ids = bindparam("student_ids", expanding=True)
    statement = union_all(
        facts.select("student", student.c.id.in_(student_ids),
                     outer_join=student.outerjoin(tenant, tenant.c.id == student.c.tenant_id)),
        facts.select("fence", fence.c.scope.in_(["student", "tenant"]),
                     fence.c.subject_hash.in_(bindparam("fence_hashes", expanding=True))),
        facts.select("serves", serves_link.c.user_id.in_(bindparam("user_ids", expanding=True)),
                     serves_link.c.student_id.in_(student_ids)),
        facts.select("contact", contact.c.student_id.in_(student_ids),
                     contact.c.id.in_(bindparam("contact_ids", expanding=True))),
        facts.select("tenant", tenant.c.id.in_(bindparam("tenant_ids", expanding=True))),
    )
    return facts, statement


_BATCH_FACTS, _BATCH_ACCESS = _batch_access_statement()
_TENANT_FENCES = (select(SubjectFence.__table__.c.subject_hash)
                  .where(SubjectFence.__table__.c.scope == "tenant",
                         SubjectFence.__table__.c.subject_hash.in_(bindparam("tenant_hashes", expanding=True))))


def check_access(db, auth: AuthContext, student_id: str) -> dict:
    """:func:`access_summary` of the student if ``auth`` may act for them (one statement);
    the errors of :func:`_checked_access` otherwise."""
    return access_summary(_checked_access(db, auth, student_id, ())[0])


def accessible_student(db, auth: AuthContext, student_id: str) -> Student:
    """The student (an ORM object, with its tenant) if ``auth`` may act for them; the errors
    of check_student_access otherwise. For callers that need the entity (its contacts, its
    staff, changes): the check, then the student loaded by its key."""
    checked, _ = _checked_access(db, auth, student_id, ())
    student = db.get(Student, checked.id)
    if student is None:  # deleted since the check
        raise StudentNotFound("No such student.")
    return student


def _checked_access(db, auth: AuthContext, student_id: str, contact_ids) -> tuple[StudentFacts, dict]:
    """The access check of one student in ONE statement, and the contacts named in ``contact_ids``.

    The refusals come in this order (each says no more than the one before it):
    no such student (a deleted one included), or one the caller may not see (another
    tenant's, or a teacher or program staff member who does not serve them), all as no
    such student, before anything else is told of them; the student's deletion was
    requested (fenced); the school's deletion was requested or it is not active.

    One round trip instead of six (two fence counts, the student, its tenant, the
    serves link, the contacts): identity answers this for every share. A fence
    is found by the keyed hash of the subject's id, computed here; the tenant's
    is known in advance for every role but district admin (their student may be
    in any school of the district), whose tenant fence is asked afterwards.

    Returns ``(student, {contact id: ContactFacts})`` with the named contacts found.
    """
    require_student_role(auth)
    student_id = str(student_id)
    district_admin = auth.role is Role.DISTRICT_ADMIN
    params = {"student_id": student_id, "student_hashes": subject_hashes("student", student_id),
              "user_id": auth.user_id, "contact_ids": sorted({str(c) for c in contact_ids})}
    if not district_admin:
        params["tenant_hashes"] = subject_hashes("tenant", auth.tenant_id)
    rows = db.execute(_ACCESS_BY_DISTRICT if district_admin else _ACCESS, params).all()
    first = rows[0]
    student = None if first[3] is None else _student_of(first)  # first[3]: the student's id
    if district_admin:
        def tenant_fenced(tenant_id):
            return is_fenced(db, "tenant", tenant_id)
    else:
        def tenant_fenced(_tenant_id):
            return first.tenant_fenced
    _judge(auth, first.student_fenced, student, tenant_fenced, first.serves)
    contacts = (ContactFacts._make(row[_CONTACTS_AT:]) for row in rows if row[_CONTACTS_AT] is not None)
    return student, {contact.id: contact for contact in contacts}


def _judge(auth: AuthContext, student_fenced: bool, student: StudentFacts | None, tenant_fenced, serves: bool) -> None:
    """The access check's refusals, in their order, from what was read (see :func:`_checked_access`).

    ``student`` is None when there is no such student; ``tenant_fenced(tenant_id)`` says whether
    the deletion of the student's school was requested, and is asked only once the student is
    known to be in the caller's scope (a district admin's costs a statement).

    Example: _judge(teacher, False, diego, lambda tenant_id: False, serves=True) -> None
    """
    if student is None or not _sees(auth, student, serves):
        # No such student (any more: a deleted student's fence outlives it, and would tell
        # anyone holding the id that it was a student), another tenant's, or one the teacher
        # does not serve: all answered exactly as an id that never existed (same status,
        # code and message), before anything that would tell more (its fence, its school).
        raise StudentNotFound("No such student.")
    if student_fenced:
        raise SubjectFenced("A deletion was requested for this student; nothing new is accepted.")
    if tenant_fenced(student.tenant_id) or student.tenant.status != "active":
        raise SubjectFenced("This school's data is being deleted; nothing new is accepted.")


def _sees(auth: AuthContext, student: StudentFacts, serves: bool) -> bool:
    """The student is in the caller's tenant (or district) and, for teachers and program
    staff, one they serve."""
    if not auth.in_scope(student.tenant_id, student.tenant.parent_id):
        return False
    return serves or auth.role not in (Role.TEACHER, Role.PROGRAM_STAFF)


def _student_of(row) -> StudentFacts:
    """The student and its tenant in an access row (their columns follow the three booleans)."""
    tenant = TenantFacts._make(row[3 + len(_STUDENT_COLUMNS):_CONTACTS_AT])
    return StudentFacts(*row[3:3 + len(_STUDENT_COLUMNS)], tenant)


def access_summary(student: Student | StudentFacts) -> dict:
    tenant = student.tenant
    return {
        "student_id": student.id,
        "tenant_id": student.tenant_id,
        "district_id": tenant.parent_id if tenant.kind == TenantKind.SCHOOL.value else None,
        "is_adult": is_adult(student),
        "first_name": student.first_name,
    }


def contact_dict(contact: FamilyContact | ContactFacts) -> dict:
    return {
        "id": contact.id,
        "name": contact.name,
        "relationship": contact.relationship_to_student,
        "email": contact.email,
        "mobile": contact.mobile,
        "preferred_language": contact.preferred_language,
        "authorised": contact.authorised,
    }


def self_contact(student: Student | StudentFacts) -> dict:
    """An adult student as a contact of themself (they hold their own rights)."""
    return {
        "id": student.id,
        "name": f"{student.first_name} {student.last_name}",
        "relationship": "self",
        "email": student.email,
        "mobile": student.mobile,
        "preferred_language": student.preferred_language,
        "authorised": True,
    }


def student_dict(student: Student, with_contacts: bool = False, staff: list[dict] | None = None) -> dict:
    tenant = student.tenant
    data = {
        "id": student.id,
        "tenant_id": student.tenant_id,
        "roster_key": student.roster_key,
        "first_name": student.first_name,
        "last_name": student.last_name,
        "grade": student.grade,
        "date_of_birth": student.date_of_birth.isoformat() if student.date_of_birth else None,
        "is_adult": is_adult(student),
        # Shown only while the school uses student IDs.
        "student_number": student.student_number if tenant.student_ids_enabled else None,
    }
    if with_contacts:
        contacts = [contact_dict(c) for c in sorted(student.contacts, key=lambda c: c.name)]
        if is_adult(student):
            contacts.insert(0, self_contact(student))
        data["contacts"] = contacts
        data["staff"] = staff or []
    return data


def list_students(db, auth: AuthContext, search: str | None, tenant_id: str | None, page: int, per_page: int) -> dict:
    require_student_role(auth)
    query = select(Student).where(scope_filter(auth))
    # Pending deletions only: an applied one has no raw id left (and no student).
    fenced = select(SubjectFence.subject_id).where(
        SubjectFence.scope == "student", SubjectFence.subject_id.is_not(None))
    query = query.where(Student.id.not_in(fenced))
    if tenant_id:
        query = query.where(Student.tenant_id == str(tenant_id))
    if search:
        pattern = f"%{search.strip().lower()}%"
        query = query.where(or_(
            func.lower(Student.first_name).like(pattern),
            func.lower(Student.last_name).like(pattern),
            func.lower(Student.first_name + " " + Student.last_name).like(pattern),
        ))
    result = paginate(db, query.order_by(Student.last_name, Student.first_name, Student.id), page, per_page, student_dict)
    counts = staff_counts(db, [item["id"] for item in result["items"]])
    for item in result["items"]:
        item["staff_count"] = counts.get(item["id"], 0)
    return result


def staff_counts(db, student_ids: list[str]) -> dict[str, int]:
    """How many active staff serve each student, for one page of students in one query.

    Example: staff_counts(db, ["s1", "s2"]) -> {"s1": 2}  (s2 is served by nobody)
    """
    if not student_ids:
        return {}
    rows = db.execute(
        select(ServesLink.student_id, func.count(ServesLink.user_id))
        .join(User, User.id == ServesLink.user_id)
        .where(ServesLink.student_id.in_(student_ids), User.is_active.is_(True))
        .group_by(ServesLink.student_id)
    ).all()
    return {student_id: count for student_id, count in rows}


def staff_of(db, student: Student) -> list[dict]:
    users = db.scalars(
        select(User).join(ServesLink, ServesLink.user_id == User.id)
        .where(ServesLink.student_id == student.id).order_by(User.display_name)
    ).all()
    return [{"id": u.id, "display_name": u.display_name, "role": u.role} for u in users]


def get_student(db, auth: AuthContext, student_id: str) -> dict:
    student = accessible_student(db, auth, student_id)
    return student_dict(student, with_contacts=True, staff=staff_of(db, student))


def set_staff(db, auth: AuthContext, student_id: str, user_ids: list[str]) -> dict:
    """Replace the staff serving a student with ``user_ids`` (admins only).

    Every user must be active staff of the student's own school or program.
    """
    auth.require(*ADMIN_ROLES)
    student = accessible_student(db, auth, student_id)
    wanted = sorted({str(u) for u in user_ids})
    allowed_roles = STAFF_ROLES_BY_KIND.get(student.tenant.kind, set())
    users = db.scalars(select(User).where(User.id.in_(wanted))).all() if wanted else []
    valid = {u.id for u in users if u.tenant_id == student.tenant_id and u.is_active and u.role in allowed_roles}
    invalid = [u for u in wanted if u not in valid]
    if invalid:
        raise BadRequest(
            "Some users are not active staff of this student's school or program.",
            code="invalid_staff", details={"user_ids": invalid},
        )
    db.execute(delete(ServesLink).where(ServesLink.student_id == student.id))
    for user_id in wanted:
        db.add(ServesLink(user_id=user_id, student_id=student.id, tenant_id=student.tenant_id))
    db.commit()
    return student_dict(student, with_contacts=True, staff=staff_of(db, student))


def delivery_contacts(db, auth: AuthContext, student_id: str, contact_ids: list[str]) -> list[dict]:
    """The authorised contacts named, after the access check; Forbidden if any is not."""
    student, found = _checked_access(db, auth, student_id, contact_ids)
    return _named_contacts(student, contact_ids, found)


def share_context(db, auth: AuthContext, student_id: str, contact_ids: list[str]) -> dict:
    """What referrals needs to accept one share, from one access check (one statement):
    ``{"student": access_summary, "contacts": [authorised contacts named]}``.

    The same refusals as ``check_student_access`` and ``delivery_contacts``.
    """
    student, found = _checked_access(db, auth, student_id, contact_ids)
    return {"student": access_summary(student), "contacts": _named_contacts(student, contact_ids, found)}


class ShareCheck(NamedTuple):
    """One share of a batch, as :func:`share_contexts` checks it (its two lists already
    checked to be lists, as ``share_context`` checks them before anything else)."""

    auth: AuthContext
    student_id: object
    contact_ids: list
    tenant_ids: list | tuple


class _BatchFacts(NamedTuple):
    """What the batch statement found, by key (see :func:`_batch_access_statement`)."""

    students: dict  # student id -> StudentFacts
    fences: set  # (scope, subject_hash) of the fences found
    serves: set  # (user_id, student_id) of the serves links found
    contacts: dict  # student id -> {contact id: ContactFacts}
    tenants: dict  # tenant id -> TenantInfoFacts


def share_contexts(db, checks: list[ShareCheck]) -> list:
    """:func:`share_context` of each share of a batch, with ``"tenants"``: the tenants its
    ``tenant_ids`` name that exist, as ``{id: tenant_info}`` in id order. Each share gets the
    answer and refusal it would get alone, in the same order; its refusal (the exception) is
    put in its place.

    The whole batch is read by ONE statement (:func:`_batch_access_statement`), then checked
    share by share in Python with :func:`_judge`, the rules of :func:`_checked_access`. A
    district admin's student may be in any school of the district, so the fences of those
    schools are asked afterwards, for all of the batch's district admins in one more statement.
    A batch of one share takes the one-share statement (it is cheaper).

    Example: share_contexts(db, [ShareCheck(rivera, diego_id, [rosa_id], []), ShareCheck(okafor, diego_id, [], [])])
    -> [{"student": {…}, "contacts": [{…rosa…}], "tenants": {}}, StudentNotFound("No such student.")]
    """
    results: list = [None] * len(checks)
    asking = []
    for n, check in enumerate(checks):
        try:
            require_student_role(check.auth)
        except StudentForbidden as refused:
            results[n] = refused
        else:
            asking.append((n, check._replace(student_id=str(check.student_id))))
    if len(asking) == 1:
        [(n, check)] = asking
        try:
            results[n] = {**share_context(db, check.auth, check.student_id, check.contact_ids),
                          "tenants": tenant_infos(db, check.tenant_ids)}
        except WeInterveneError as refused:
            results[n] = refused
    if len(asking) < 2:
        return results

    hashes: dict[tuple[str, str], tuple[str, ...]] = {}  # two shares of one student (or school) hash it once

    def hashed(scope: str, subject_id) -> tuple[str, ...]:
        key = (scope, str(subject_id))
        if key not in hashes:
            hashes[key] = tuple(subject_hashes(*key))
        return hashes[key]

    found = _read_batch(db, [check for _, check in asking], hashed)

    def fenced(scope: str, subject_id) -> bool:
        return any((scope, h) in found.fences for h in hashed(scope, subject_id))

    def tenant_fenced(tenant_id) -> bool:
        return fenced("tenant", tenant_id)

    for n, check in asking:
        student = found.students.get(check.student_id)
        try:
            _judge(check.auth, fenced("student", check.student_id), student,
                   tenant_fenced, (str(check.auth.user_id), check.student_id) in found.serves)
            named_tenants = sorted({str(t) for t in check.tenant_ids if t})
            results[n] = {
                "student": access_summary(student),
                "contacts": _named_contacts(student, check.contact_ids, found.contacts.get(student.id, {})),
                "tenants": {t: tenant_info(found.tenants[t]) for t in named_tenants if t in found.tenants},
            }
        except WeInterveneError as refused:
            results[n] = refused
    return results


def _read_batch(db, checks: list[ShareCheck], hashed) -> _BatchFacts:
    """Everything the checks of :func:`share_contexts` read: one statement, and one more for
    the schools of district admins' students (``hashed(scope, id)``: :func:`subject_hashes`)."""
    student_ids = sorted({check.student_id for check in checks})
    # A caller's student is in the caller's own school, or it is refused before that school's
    # fence matters; only a district admin's student may be in another (its school's fence is
    # asked below).
    asked_hashes = {h for s in student_ids for h in hashed("student", s)} | {
        h for check in checks if check.auth.role is not Role.DISTRICT_ADMIN for h in hashed("tenant", check.auth.tenant_id)}
    params = {
        "student_ids": student_ids,
        "fence_hashes": sorted(asked_hashes),
        "user_ids": sorted({str(check.auth.user_id) for check in checks
                            if check.auth.role in (Role.TEACHER, Role.PROGRAM_STAFF)}),
        "contact_ids": sorted({str(c) for check in checks for c in check.contact_ids}),
        "tenant_ids": sorted({str(t) for check in checks for t in check.tenant_ids if t}),
    }
    found = _BatchFacts(students={}, fences=set(), serves=set(), contacts={}, tenants={})
    for row in db.execute(_BATCH_ACCESS, params):
        kind, values = _BATCH_FACTS.read(row)
        if kind == "student":
            found.students[values[0]] = StudentFacts(*values[:-3], TenantFacts(*values[-3:]))
        elif kind == "fence":
            found.fences.add(values)
        elif kind == "serves":
            found.serves.add(values)
        elif kind == "contact":
            found.contacts.setdefault(values[0], {})[values[1]] = ContactFacts._make(values[1:])
        else:
            found.tenants[values[0]] = TenantInfoFacts._make(values)
    district_schools = {h for check in checks
                        if check.auth.role is Role.DISTRICT_ADMIN and check.student_id in found.students
                        for h in hashed("tenant", found.students[check.student_id].tenant_id)}
    if district_schools - asked_hashes:
        fenced = db.scalars(_TENANT_FENCES, {"tenant_hashes": sorted(district_schools - asked_hashes)})
        found.fences.update(("tenant", fenced_hash) for fenced_hash in fenced)
    return found


def _named_contacts(student: StudentFacts, contact_ids: list[str], by_id: dict) -> list[dict]:
    """The named contacts as dicts, in the order named; ``by_id`` holds the student's contacts found."""
    wanted = [str(c) for c in contact_ids]
    result = []
    for contact_id in wanted:
        if contact_id == student.id and is_adult(student):
            result.append(self_contact(student))
            continue
        contact = by_id.get(contact_id)
        if contact is None or not contact.authorised:
            raise Forbidden("That contact may not receive information about this student.", code="contact_forbidden")
        result.append(contact_dict(contact))
    return result
