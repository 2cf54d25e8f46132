"""Shared helpers of the referrals unit tests: a real SQLite session, and identity and
directory replaced by small in-memory fakes (other bounded contexts, so mocked here)."""
from __future__ import annotations

import uuid
from unittest import mock

import pytest
from nameko.exceptions import serialize
from sqlalchemy import create_engine, event
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

from services.referrals.models import Base
from weintervene.errors import Conflict, Forbidden, NotFound


def uid() -> str:
    return str(uuid.uuid4())


SCHOOL, OTHER_SCHOOL, DISTRICT, PROGRAM = uid(), uid(), uid(), uid()
TEACHER, OTHER_TEACHER, ADMIN, OTHER_ADMIN, PROGRAM_STAFF = uid(), uid(), uid(), uid(), uid()
STUDENT, ADULT_STUDENT, UNSERVED_STUDENT = uid(), uid(), uid()
MOTHER, FATHER, UNAUTHORISED, NO_MOBILE = uid(), uid(), uid(), uid()
SERVICE, SERVICE_2, SERVICE_3, PROGRAM_SERVICE, OTHER_TENANT_SERVICE = uid(), uid(), uid(), uid(), uid()
TERM = uid()


def auth(user=TEACHER, tenant=SCHOOL, role="teacher", district=DISTRICT) -> dict:
    return {"user_id": user, "tenant_id": tenant, "role": role, "district_id": district}


TEACHER_AUTH = auth()
OTHER_TEACHER_AUTH = auth(OTHER_TEACHER)
ADMIN_AUTH = auth(ADMIN, role="school_admin")
OTHER_ADMIN_AUTH = auth(OTHER_ADMIN, tenant=OTHER_SCHOOL, role="school_admin")
PROGRAM_AUTH = auth(PROGRAM_STAFF, tenant=PROGRAM, role="program_staff", district=None)
OPERATOR_AUTH = auth(uid(), tenant=uid(), role="operator", district=None)
AUDITOR_AUTH = auth(uid(), tenant=uid(), role="auditor", district=None)

CONTACTS = {
    MOTHER: {"id": MOTHER, "name": "Rosa Diaz", "email": "rosa@example.org", "mobile": "+15551230001",
             "preferred_language": "es", "authorised": True},
    FATHER: {"id": FATHER, "name": "Luis Diaz", "email": "luis@example.org", "mobile": "+15551230002",
             "preferred_language": "en", "authorised": True},
    NO_MOBILE: {"id": NO_MOBILE, "name": "Ana Diaz", "email": "ana@example.org", "mobile": None,
                "preferred_language": "en", "authorised": True},
}


def hsds_service(sid, name, owner=None, address="12 Main St"):
    return {
        "id": sid, "name": name, "organization": {"id": uid(), "name": name + " Org"},
        "locations": [{"name": "Main", "address": {"address_1": address, "city": "Springfield",
                                                   "state_province": "IL", "postal_code": "62701"}}],
        "phones": [{"number": "217-555-0100"}],
        "schedules": [{"hours_text": "Mon-Fri 4pm-8pm"}],
        "eligibility_description": "Families with children 5-18",
        "languages": ["en", "es"], "cost": "free", "taxonomy_term_ids": [TERM],
        "owner_tenant_id": owner,
    }


SERVICES = {
    SERVICE: hsds_service(SERVICE, "Casa Azul Counseling"),
    SERVICE_2: hsds_service(SERVICE_2, "Northside Food Pantry"),
    SERVICE_3: hsds_service(SERVICE_3, "Eastside Food Pantry"),
    PROGRAM_SERVICE: hsds_service(PROGRAM_SERVICE, "Bright Futures Mentoring", owner=PROGRAM),
    OTHER_TENANT_SERVICE: hsds_service(OTHER_TENANT_SERVICE, "Other school's club", owner=OTHER_SCHOOL),
}


def rpc_mock(fn) -> mock.Mock:
    """A mocked RPC method: callable, and ``call_async(...).result()`` like nameko's."""
    method = mock.Mock(side_effect=fn)
    method.call_async = mock.Mock(side_effect=lambda *a: mock.Mock(result=lambda: method(*a)))
    return method


class FakeIdentity:
    """identity's agreed RPCs over a tiny roster: TEACHER serves STUDENT and ADULT_STUDENT."""

    def __init__(self):
        self.fenced = set()
        self.serves = {TEACHER: {STUDENT, ADULT_STUDENT}, OTHER_TEACHER: set(), PROGRAM_STAFF: set()}
        self.contacts = {STUDENT: {MOTHER, FATHER, NO_MOBILE}, ADULT_STUDENT: {ADULT_STUDENT}}
        self.unauthorised = {STUDENT: {UNAUTHORISED}}
        self.users = {TEACHER: {"id": TEACHER, "tenant_id": SCHOOL, "display_name": "Ms. Rivera",
                                "email": "rivera@lincoln.example", "role": "teacher"}}
        self.delivery_contacts = rpc_mock(self._delivery_contacts)
        self.check_student_access = rpc_mock(self._check_student_access)
        self.share_context = rpc_mock(self._share_context)
        self.share_contexts = rpc_mock(self._share_contexts)

    def _check_student_access(self, auth, student_id):
        if student_id in self.fenced:
            raise Conflict("A deletion was requested for this student.", code="subject_fenced")
        if student_id not in (STUDENT, ADULT_STUDENT, UNSERVED_STUDENT):
            raise NotFound("No such student.", code="student_not_found")
        role, user = auth["role"], auth["user_id"]
        allowed = (role == "school_admin" and auth["tenant_id"] == SCHOOL) or student_id in self.serves.get(user, set())
        if not allowed:
            raise NotFound("No such student.", code="student_not_found")  # as identity: as if unknown
        return {"student_id": student_id, "tenant_id": SCHOOL, "district_id": DISTRICT,
                "is_adult": student_id == ADULT_STUDENT, "first_name": "Diego"}

    def _delivery_contacts(self, auth, student_id, contact_ids):
        self._check_student_access(auth, student_id)
        result = []
        for cid in contact_ids:
            if cid == ADULT_STUDENT and student_id == ADULT_STUDENT:
                result.append({"id": cid, "name": "Sam", "email": "sam@example.org", "mobile": "+15551230009",
                               "preferred_language": "en", "authorised": True})
            elif cid in self.contacts.get(student_id, set()):
                result.append(dict(CONTACTS[cid]))
            else:
                raise Forbidden("Not an authorised contact of this student.", code="contact_forbidden")
        return result

    def _share_context(self, auth, student_id, contact_ids, tenant_ids=()):
        return {"student": self._check_student_access(auth, student_id),
                "contacts": self._delivery_contacts(auth, student_id, contact_ids),
                "tenants": {t: self.tenant_info(t) for t in tenant_ids}}

    def _share_contexts(self, requests):
        answers = []
        for r in requests:
            try:
                answers.append({"context": self.share_context(r["auth"], r["student_id"], r["contact_ids"],
                                                              r["tenant_ids"])})
            except (Conflict, Forbidden, NotFound) as refused:
                answers.append({"error": serialize(refused)})
        return answers

    def tenant_info(self, tenant_id):
        kinds = {PROGRAM: "program", SCHOOL: "school", OTHER_SCHOOL: "school"}
        return {"id": tenant_id, "kind": kinds.get(tenant_id, "school"), "name": "Bright Futures Inc."}

    def user_info(self, user_id):
        if user_id not in self.users:
            raise NotFound("No such user.", code="user_not_found")
        return self.users[user_id]


class FakeDirectory:
    """directory.get_service: tenant-owned services only for their tenant (programs' are public here)."""

    def __init__(self):
        self.get_service = rpc_mock(self._get_service)

    def _get_service(self, auth, service_id):
        svc = SERVICES.get(service_id)
        if svc is None or (svc["owner_tenant_id"] == OTHER_SCHOOL and (auth or {}).get("tenant_id") != OTHER_SCHOOL):
            raise NotFound("No such service.", code="service_not_found")
        return dict(svc)


@pytest.fixture
def make_session():
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)

    @event.listens_for(engine, "connect")
    def _fk(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    Base.metadata.create_all(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def db(make_session):
    session = make_session()
    yield session
    session.close()


@pytest.fixture
def identity():
    return FakeIdentity()


@pytest.fixture
def directory():
    return FakeDirectory()


@pytest.fixture
def svc(db, identity, directory):
    from nameko.testing.services import worker_factory

    from services.referrals.service import ReferralsService

    from services.referrals.batching import NaturalBatcher
    from services.referrals.directory_cache import ServiceDetailsCache, ServiceLookups

    return worker_factory(ReferralsService, db=db, identity=identity, directory=directory,
                          directory_services=ServiceLookups(ServiceDetailsCache(ttl=30)),
                          share_batches=NaturalBatcher())
