"""The directory's one visibility rule, for every kind of tenant, through every reader:
search, get_service, the HSDS API (services, organizations, service_at_locations) and export.

Owners publish with ``published_to``: a school or district to its district, a youth
program to every school on the platform; unpublished services stay inside their tenant.
"""
import json

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import select

from services.directory import visibility
from services.directory.exporter import export_json
from services.directory.models import Service
from services.directory.service import DirectoryService
from services.directory.taxonomy import term_id
from tests.unit.directory_fixtures import sqlite_directory
from weintervene.errors import BadRequest, NotFound

D1 = "00000000-0000-4000-8000-0000000000d1"
D2 = "00000000-0000-4000-8000-0000000000d2"
SCHOOL_A = "00000000-0000-4000-8000-0000000000a1"  # in D1
SCHOOL_B = "00000000-0000-4000-8000-0000000000b1"  # in D1
SCHOOL_C = "00000000-0000-4000-8000-0000000000c1"  # in D2
CHARTER = "00000000-0000-4000-8000-0000000000e1"  # no district
PROGRAM_P = "00000000-0000-4000-8000-0000000000f1"
PROGRAM_Q = "00000000-0000-4000-8000-0000000000f2"
PLATFORM = "00000000-0000-4000-8000-000000000001"


def auth(role, tenant, district=None):
    return {"user_id": f"user-{role}-{tenant[-2:]}", "tenant_id": tenant, "role": role, "district_id": district}


VIEWERS = {
    "anonymous": None,
    "operator": auth("operator", PLATFORM),
    "auditor": auth("auditor", PLATFORM),
    "teacher A": auth("teacher", SCHOOL_A, D1),
    "school admin B": auth("school_admin", SCHOOL_B, D1),
    "teacher C (other district)": auth("teacher", SCHOOL_C, D2),
    "charter teacher": auth("teacher", CHARTER),
    "district admin D1": auth("district_admin", D1, D1),
    "program P staff": auth("program_staff", PROGRAM_P),
    "program Q admin": auth("program_admin", PROGRAM_Q),
}
# (owner, published_to) -> the viewers who see it.
OWNERS = {
    "global": (auth("operator", PLATFORM), None),
    "school A private": (auth("school_admin", SCHOOL_A, D1), "tenant"),
    "school A to district": (auth("school_admin", SCHOOL_A, D1), "district"),
    "district D1 to district": (auth("district_admin", D1, D1), "district"),
    "charter private": (auth("school_admin", CHARTER), None),
    "program P private": (auth("program_admin", PROGRAM_P), "tenant"),
    "program P to schools": (auth("program_admin", PROGRAM_P), "schools"),
}
EVERYONE = set(VIEWERS)
SEES = {
    "global": EVERYONE,
    "school A private": {"teacher A"},
    "school A to district": {"teacher A", "school admin B", "district admin D1"},
    "district D1 to district": {"teacher A", "school admin B", "district admin D1"},
    "charter private": {"charter teacher"},
    "program P private": {"program P staff"},
    "program P to schools": {"program P staff", "teacher A", "school admin B", "teacher C (other district)",
                             "charter teacher", "district admin D1"},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    session = sqlite_directory(tmp_path_factory.mktemp("visibility") / "directory.db")
    worker = worker_factory(DirectoryService, db=session)
    worker.identity_rpc.tenant_info.return_value = {"timezone": "America/New_York"}
    ids = {}
    for label, (owner, audience) in OWNERS.items():
        data = {"name": f"Quixotic {label}", "description": "Homework help and mentoring.",
                "organization_name": f"Org of {label}", "taxonomy_term_ids": [term_id("109-03-10")],
                "location": {"name": label, "latitude": 38.91, "longitude": -77.02,
                             "address": {"address_1": "1 Main St", "city": "Washington", "state_province": "DC", "postal_code": "20001"}}}
        if audience:
            data["published_to"] = audience
        ids[label] = worker.create_service(owner, data)["id"]
    yield worker, session, ids
    session.close()


def test_the_rule_for_each_tenant_kind(world):
    """The rule itself, checked on the stored rows, for every owner and viewer."""
    _, session, ids = world
    for label, sid in ids.items():
        row = session.get(Service, sid)
        seen_by = {v for v, a in VIEWERS.items() if visibility.allows(visibility.viewer_for(a), row)}
        assert seen_by == SEES[label], label


def test_sql_and_python_renderings_agree(world):
    _, session, ids = world
    for viewer_label, a in VIEWERS.items():
        viewer = visibility.viewer_for(a)
        in_sql = set(session.scalars(select(Service.id).where(visibility.clause(Service, viewer))))
        expected = {ids[label] for label, seen in SEES.items() if viewer_label in seen}
        assert in_sql == expected, viewer_label


def test_search_and_get_service_apply_the_rule(world):
    worker, _, ids = world
    for viewer_label, a in VIEWERS.items():
        if a is None:
            continue  # search needs a signed-in user
        expected = {ids[label] for label, seen in SEES.items() if viewer_label in seen}
        found = {i["id"] for i in worker.search(a, {"q": "quixotic", "per_page": 100})["items"]}
        assert found == expected, viewer_label
        near = {i["id"] for i in worker.search(a, {"postcode": "20001", "radius_miles": 5, "per_page": 100})["items"]}
        assert near == expected, viewer_label
        for label, sid in ids.items():
            if label in SEES and viewer_label in SEES[label]:
                assert worker.get_service(a, sid)["id"] == sid
            else:
                with pytest.raises(NotFound):
                    worker.get_service(a, sid)


def test_hsds_api_applies_the_rule(world):
    worker, _, ids = world
    for viewer_label, a in VIEWERS.items():
        expected = {ids[label] for label, seen in SEES.items() if viewer_label in seen}
        listed = {s["id"] for s in worker.hsds(a, "services", {"search": "quixotic", "per_page": 100})["contents"]}
        assert listed == expected, viewer_label
        at_locations = worker.hsds(a, "service_at_locations", {"search": "quixotic", "per_page": 100})["contents"]
        assert {s["service"]["id"] for s in at_locations} == expected, viewer_label
        organizations = {o["name"] for o in worker.hsds(a, "organizations", {"search": "org of", "per_page": 100})["contents"]}
        assert organizations == {f"Org of {label}" for label, seen in SEES.items() if viewer_label in seen}, viewer_label
        for label, sid in ids.items():
            if viewer_label in SEES[label]:
                assert worker.hsds(a, "services", item_id=sid)["id"] == sid
            else:
                with pytest.raises(NotFound):
                    worker.hsds(a, "services", item_id=sid)


def test_export_holds_the_global_directory_only(world, tmp_path):
    _, session, ids = world
    path = tmp_path / "directory.json"
    export_json(session, path)
    exported = {d["id"] for d in json.loads(path.read_text())}
    assert ids["global"] in exported
    assert not exported & {sid for label, sid in ids.items() if label != "global"}


def test_who_may_publish_to_whom(world):
    worker, _, ids = world
    with pytest.raises(BadRequest):  # a program is in no district
        worker.create_service(auth("program_admin", PROGRAM_P), {"name": "x", "published_to": "district"})
    with pytest.raises(BadRequest):  # only programs publish to every school
        worker.create_service(auth("school_admin", SCHOOL_A, D1), {"name": "x", "published_to": "schools"})
    with pytest.raises(BadRequest):  # a charter school has no district
        worker.create_service(auth("school_admin", CHARTER), {"name": "x", "published_to": "district"})
    with pytest.raises(BadRequest):  # global services are everyone's already
        worker.create_service(auth("operator", PLATFORM), {"name": "x", "organization_name": "y", "published_to": "schools"})
    with pytest.raises(BadRequest):
        worker.create_service(auth("program_admin", PROGRAM_P), {"name": "x", "published_to": "everyone"})
    with pytest.raises(BadRequest):
        worker.update_service(auth("program_admin", PROGRAM_P), ids["program P private"], {"published_to": "district"})


def test_unpublishing_hides_it_again_and_is_recorded(world):
    worker, _, ids = world
    sid, owner, teacher = ids["program P to schools"], auth("program_admin", PROGRAM_P), VIEWERS["teacher C (other district)"]
    try:
        assert worker.update_service(owner, sid, {"published_to": "tenant"})["published_to"] == "tenant"
        assert sid not in {i["id"] for i in worker.search(teacher, {"q": "quixotic program", "per_page": 100})["items"]}
        with pytest.raises(NotFound):
            worker.get_service(teacher, sid)
        changes = [h for h in worker.service_history(owner, sid) if h["field_name"] == "published_to"]
        assert [(h["previous_value"], h["replacement_value"]) for h in changes] == [("schools", "tenant")]
    finally:
        worker.update_service(owner, sid, {"published_to": "schools"})
    assert sid in {i["id"] for i in worker.search(teacher, {"q": "quixotic program", "per_page": 100})["items"]}
