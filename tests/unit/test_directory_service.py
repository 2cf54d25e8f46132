"""directory's RPCs with nameko's worker_factory on a real SQLite database (identity mocked)."""
import uuid

import pytest
from nameko.testing.services import worker_factory

from services.directory.demo import load_demo
from services.directory.service import DirectoryService
from services.directory.taxonomy import term_id
from tests.unit.directory_fixtures import sqlite_directory
from weintervene.errors import BadRequest, Forbidden, NotFound

SCHOOL = "00000000-0000-4000-8000-0000000000c1"
OTHER = "00000000-0000-4000-8000-0000000000c2"
DISTRICT = "00000000-0000-4000-8000-0000000000d9"


def auth(role, tenant, district=None):
    return {"user_id": f"user-{role}-{tenant[-2:]}", "tenant_id": tenant, "role": role, "district_id": district}


@pytest.fixture
def service(tmp_path):
    session = sqlite_directory(tmp_path / "directory.db")
    load_demo(session, count=40)
    worker = worker_factory(DirectoryService, db=session)
    worker.identity_rpc.tenant_info.return_value = {"timezone": "America/New_York"}
    yield worker
    session.close()


def test_get_service_has_the_agreed_shape(service):
    found = service.search(auth("teacher", SCHOOL), {"q": "tutoring", "per_page": 1})["items"][0]
    s = service.get_service(None, found["id"])
    for key in ("organization", "locations", "phones", "schedules", "hours_text", "eligibility_description",
                "minimum_age", "maximum_age", "languages", "cost", "taxonomy_term_ids", "taxonomy_terms", "owner_tenant_id"):
        assert key in s
    assert s["organization"]["name"] and s["locations"][0]["address"]["postal_code"]
    assert s["hours_text"] and s["cost"] in ("free", "low", "paid")
    assert s["taxonomy_terms"][0]["code"] == "109-03-10"
    with pytest.raises(NotFound):
        service.get_service(None, "not-a-uuid")


def test_get_terms_and_count_services(service):
    terms = service.get_terms([term_id("109-03-10"), "00000000-0000-4000-8000-000000000000"])
    assert list(terms) == [term_id("109-03-10")]
    assert terms[term_id("109-03-10")]["top_level_name"] == "Education"
    counts = service.count_services([term_id("109"), term_id("102-04")], 38.9122, -77.0177, 50, None)
    everything = service.count_services([term_id("109")], None, None, None, None)
    assert counts[term_id("109")] == everything[term_id("109")] > 0
    assert service.count_services([term_id("109")], 37.48, -122.21, 5, None)[term_id("109")] == 0


def test_schools_add_their_own_and_deletion_removes_them(service):
    admin = auth("school_admin", SCHOOL, DISTRICT)
    created = service.create_service(admin, {"name": "Lincoln Homework Lab", "taxonomy_term_ids": [term_id("109-03-10")],
                                             "minimum_age": 11, "maximum_age": 14, "languages": ["en", "es"],
                                             "cost": "free", "schedules": [{"days": ["MO", "WE"], "opens_at": "15:30", "closes_at": "17:00"}],
                                             "location": {"name": "Room 12", "address": {"address_1": "1 School St", "city": "Washington",
                                                                                          "state_province": "DC", "postal_code": "20001"}}})
    assert created["owner_tenant_id"] == SCHOOL and created["cost"] == "free" and created["hours_text"] == "Mon, Wed 3:30 PM-5:00 PM"
    with pytest.raises(NotFound):
        service.get_service(auth("teacher", OTHER), created["id"])
    with pytest.raises(Forbidden):
        service.update_service(auth("school_admin", SCHOOL), service.search(admin, {"per_page": 1, "q": "pantry"})["items"][0]["id"], {"name": "x"})
    updated = service.update_service(admin, created["id"], {"maximum_age": 15, "published_to": "district"})
    assert updated["maximum_age"] == 15 and updated["published_to"] == "district"
    history = service.service_history(admin, created["id"])
    assert {h["field_name"] for h in history} >= {"maximum_age", "published_to"}
    found = service.search(auth("teacher", OTHER, DISTRICT), {"q": "Lincoln Homework Lab"})["items"]
    assert found[0]["id"] == created["id"]  # the full match first (partial matches may follow it)
    district_admin = auth("district_admin", DISTRICT, DISTRICT)
    assert service.get_service(district_admin, created["id"])["id"] == created["id"]
    with pytest.raises(BadRequest):
        service.update_service(admin, created["id"], {"minimum_age": 20})
    retired = service.retire_service(admin, created["id"])
    assert retired["status"] == "inactive"
    assert created["id"] not in {i["id"] for i in service.search(admin, {"q": "Lincoln Homework Lab", "per_page": 100})["items"]}
    counts = service.delete_for({"scope": "tenant", "tenant_ids": [SCHOOL], "tenant_id": SCHOOL, "request_id": "r", "subject_id": SCHOOL})
    assert counts["services"] == 1 and counts["organizations"] == 1 and counts["locations"] == 1
    with pytest.raises(NotFound):
        service.get_service(admin, created["id"])
    assert service.delete_for({"scope": "tenant", "tenant_ids": [SCHOOL]}) == {}
    assert service.delete_for({"scope": "student", "tenant_ids": [SCHOOL]}) == {}


def test_teachers_cannot_write_and_bad_input_is_400(service):
    with pytest.raises(Forbidden):
        service.create_service(auth("teacher", SCHOOL), {"name": "Nope"})
    with pytest.raises(BadRequest):
        service.create_service(auth("operator", SCHOOL), {"name": "No organization"})
    with pytest.raises(BadRequest):
        service.create_service(auth("operator", SCHOOL), {"name": "x", "organization_name": "y", "minimum_age": 10, "maximum_age": 5})
    with pytest.raises(BadRequest):
        service.search(auth("teacher", SCHOOL), {"colour": "blue"})


def test_service_names_in_one_call_leave_out_what_the_caller_may_not_see(service):
    admin = auth("school_admin", SCHOOL, DISTRICT)
    own = service.create_service(admin, {"name": "Lincoln Reading Hour"})
    public = service.search(admin, {"per_page": 2, "q": "pantry"})["items"]
    ids = [own["id"], public[0]["id"], public[1]["id"], "00000000-0000-4000-8000-000000000000", "not-a-uuid"]
    assert service.service_names(admin, ids) == {own["id"]: "Lincoln Reading Hour",
                                                 public[0]["id"]: public[0]["name"], public[1]["id"]: public[1]["name"]}
    # Another school's teacher sees the public ones only.
    assert set(service.service_names(auth("teacher", OTHER, DISTRICT), ids)) == {public[0]["id"], public[1]["id"]}
    with pytest.raises(BadRequest):
        service.service_names(admin, [str(uuid.uuid4()) for _ in range(501)])


def test_a_termination_also_deletes_phones_and_hours_hanging_from_a_service_at_location_alone(service):
    """HSDS lets a phone, schedule or contact belong to a service-at-location only (no service,
    location or organization id): a school's termination must not leave those behind."""
    from sqlalchemy import func, select

    from services.directory.models import Contact, Phone, Schedule, ServiceAtLocation

    admin = auth("school_admin", SCHOOL, DISTRICT)
    created = service.create_service(admin, {"name": "Lincoln Study Hall", "taxonomy_term_ids": [term_id("109-03-10")],
                                             "location": {"name": "Library", "address": {"address_1": "1 School St", "city": "Washington",
                                                                                          "state_province": "DC", "postal_code": "20001"}}})
    db = service.db
    sal_id = db.scalar(select(ServiceAtLocation.id).where(ServiceAtLocation.service_id == created["id"]))
    db.add_all([Phone(service_at_location_id=sal_id, number="202-555-0100"),
                Schedule(service_at_location_id=sal_id, byday="MO", opens_at="15:00", closes_at="17:00"),
                Contact(service_at_location_id=sal_id, name="Front desk")])
    db.commit()
    counts = service.delete_for({"scope": "tenant", "tenant_ids": [SCHOOL], "tenant_id": SCHOOL, "request_id": "r2", "subject_id": SCHOOL})
    assert counts["services"] == 1
    for model in (Phone, Schedule, Contact):
        assert db.scalar(select(func.count()).select_from(model).where(model.service_at_location_id == sal_id)) == 0, model


def test_a_radius_without_a_postcode_measures_from_the_teachers_school(service):
    teacher = auth("teacher", SCHOOL)
    from_postcode = service.search(teacher, {"radius_miles": 2, "postcode": "20001", "sort": "distance", "per_page": 100})
    service.identity_rpc.tenant_info.return_value = {"name": "Lincoln Middle", "postcode": "20001", "latitude": None,
                                                     "longitude": None, "timezone": "America/New_York"}
    from_school = service.search(teacher, {"radius_miles": 2, "sort": "distance", "per_page": 100})
    assert from_school["measured_from"] == "Lincoln Middle (20001)"
    assert [c["id"] for c in from_school["items"]] == [c["id"] for c in from_postcode["items"]]
    assert 0 < from_school["total"] < service.search(teacher, {"per_page": 1})["total"]
    # Coordinates on file win over the postcode; a school far away finds nothing within 2 miles.
    service.identity_rpc.tenant_info.return_value = {"name": "Far School", "postcode": "20001",
                                                     "latitude": 37.48, "longitude": -122.21}
    assert service.search(teacher, {"radius_miles": 2})["total"] == 0
    # A postcode given is used as given, with no mention of the school.
    assert "measured_from" not in service.search(teacher, {"radius_miles": 2, "postcode": "20001"})


def test_a_radius_with_no_place_anywhere_is_a_400_naming_what_to_give(service):
    service.identity_rpc.tenant_info.return_value = {"name": "Lincoln Middle", "postcode": None}
    with pytest.raises(BadRequest) as refused:
        service.search(auth("teacher", SCHOOL), {"radius_miles": 5})
    assert "give a postcode" in str(refused.value) and "radius_miles" in refused.value.details
    service.identity_rpc.tenant_info.side_effect = TimeoutError("identity is down")
    with pytest.raises(BadRequest):
        service.search(auth("teacher", SCHOOL), {"sort": "distance"})


def test_terms_carry_their_path_and_categories_count_services_once(service):
    counseling = service.get_terms([term_id("109-03-10")])[term_id("109-03-10")]
    assert [a["id"] for a in counseling["ancestors"]][-1] == term_id("109-03-10")
    assert counseling["ancestors"][0]["id"] == counseling["top_level_id"] and counseling["ancestors"][0]["name"] == "Education"
    one = service.count_services([term_id("109")], None, None, None, None)[term_id("109")]
    both = service.count_services([], None, None, None, None, None, None,
                                  {"education": [term_id("109"), term_id("109-03-10")]})
    assert both == {"education": one} and one > 0  # a service under both terms counted once
