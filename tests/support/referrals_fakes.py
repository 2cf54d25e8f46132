"""TEST-ONLY stand-ins for identity and directory RPCs that other teams are building
in parallel (see BRIEF.md, "Interfaces between services").

TO REMOVE AT MERGE: once identity has students/contacts (check_student_access,
delivery_contacts, user_info, tenant_info) and directory has get_service, the
referrals integration tests and bench should create students through identity's
roster import and services through directory's API, and run the real services.

Only the missing RPCs are faked, with exactly the agreed signatures and error
codes; everything else is the real service (the fake identity IS the real
IdentityService - sign-in, sessions, tenants, users - plus a roster held in this
process). ``user_info`` and ``tenant_info`` read identity's real tables.
"""
from __future__ import annotations

from services.directory.service import DirectoryService
from services.identity.models import Tenant, User
from services.identity.service import IdentityService
from weintervene.entrypoints import rpc
from weintervene.errors import Conflict, Forbidden, NotFound

# student_id -> {"tenant_id", "district_id", "first_name", "is_adult", "served_by": set(user ids),
#                "contacts": {contact_id: {id, name, email, mobile, preferred_language, authorised}}}
ROSTER: dict[str, dict] = {}
FENCED: set[str] = set()
# service_id -> HSDS-shaped service dict (directory.get_service's agreed shape)
CATALOGUE: dict[str, dict] = {}


class IdentityWithRoster(IdentityService):
    """The real identity service plus the roster RPCs referrals consumes (test stand-in)."""

    name = "identity"

    def _student(self, auth: dict, student_id: str) -> dict:
        if student_id in FENCED:
            raise Conflict("A deletion was requested for this student.", code="subject_fenced")
        student = ROSTER.get(student_id)
        if student is None:
            raise NotFound("No such student.", code="student_not_found")
        role = auth.get("role")
        if role == "school_admin" and student["tenant_id"] == auth.get("tenant_id"):
            return student
        if role == "district_admin" and student["district_id"] == auth.get("tenant_id"):
            return student
        if role in ("teacher", "program_staff", "program_admin") and auth.get("user_id") in student["served_by"]:
            return student
        raise Forbidden("You do not serve this student.", code="student_forbidden")

    @rpc
    def check_student_access(self, auth, student_id):
        student = self._student(auth, student_id)
        return {"student_id": student_id, "tenant_id": student["tenant_id"], "district_id": student["district_id"],
                "is_adult": student.get("is_adult", False), "first_name": student["first_name"]}

    @rpc
    def delivery_contacts(self, auth, student_id, contact_ids):
        student = self._student(auth, student_id)
        out = []
        for cid in contact_ids:
            contact = student["contacts"].get(cid)
            if contact is None or not contact.get("authorised"):
                raise Forbidden("Not an authorised contact of this student.", code="contact_forbidden")
            out.append(dict(contact))
        return out

    @rpc
    def user_info(self, user_id):
        user = self.db.get(User, user_id)
        if user is None:
            raise NotFound("No such user.", code="user_not_found")
        return {"id": user.id, "tenant_id": user.tenant_id, "display_name": user.display_name,
                "email": user.email, "role": user.role}

    @rpc
    def tenant_info(self, tenant_id):
        tenant = self.db.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound("No such tenant.", code="tenant_not_found")
        district = tenant.parent_id if tenant.kind == "school" else (tenant.id if tenant.kind == "district" else None)
        return {"id": tenant.id, "kind": tenant.kind, "name": tenant.name, "parent_id": tenant.parent_id,
                "district_id": district, "postcode": tenant.postcode, "latitude": tenant.latitude,
                "longitude": tenant.longitude, "timezone": tenant.timezone,
                "student_ids_enabled": tenant.student_ids_enabled, "analytics_consent": tenant.analytics_consent,
                "suppression_threshold": tenant.suppression_threshold, "status": tenant.status}


class DirectoryWithCatalogue(DirectoryService):
    """The real directory service plus get_service over an in-process catalogue (test stand-in)."""

    name = "directory"

    @rpc
    def get_service(self, auth, service_id):
        service = CATALOGUE.get(service_id)
        owner = service and service.get("owner_tenant_id")
        caller_tenant = (auth or {}).get("tenant_id")
        # Tenant-owned services only for their tenant; a program's services are offered to schools.
        if service is None or (owner and owner != caller_tenant and not service.get("offered_to_schools")):
            raise NotFound("No such service.", code="service_not_found")
        return dict(service)


def hsds_service(service_id: str, name: str, term_ids=(), owner_tenant_id=None, address="12 Main St",
                 offered_to_schools=False) -> dict:
    return {
        "id": service_id, "name": name, "description": f"{name} helps families.",
        "organization": {"id": service_id, "name": name},
        "locations": [{"name": name, "address": {"address_1": address, "city": "Springfield",
                                                 "state_province": "IL", "postal_code": "62701"},
                       "latitude": 39.78, "longitude": -89.65}],
        "phones": [{"number": "217-555-0100"}],
        "schedules": [{"byday": "MO,TU,WE,TH,FR", "opens_at": "16:00", "closes_at": "20:00",
                       "hours_text": "Mon-Fri 4pm-8pm"}],
        "hours_text": "Mon-Fri 4pm-8pm",
        "eligibility_description": "Families with children 5-18",
        "minimum_age": 5, "maximum_age": 18, "languages": ["en", "es"], "cost": "free",
        "taxonomy_term_ids": list(term_ids), "taxonomy_terms": [],
        "owner_tenant_id": owner_tenant_id, "offered_to_schools": offered_to_schools,
    }
