"""TEST-ONLY stand-in for ``directory.get_service``, which the directory team is
building in parallel (see BRIEF.md, "Interfaces between services").

TO REMOVE AT MERGE: once directory has get_service, the referrals integration
tests and bench should create their services through directory's API and run
the real DirectoryService.

Only the missing RPC is added, with exactly the agreed signature, shape and
error code; everything else is the real directory service.
"""
from __future__ import annotations

from services.directory.service import DirectoryService
from weintervene.entrypoints import rpc
from weintervene.errors import NotFound

# service_id -> HSDS-shaped service dict (directory.get_service's agreed shape)
CATALOGUE: dict[str, dict] = {}


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
