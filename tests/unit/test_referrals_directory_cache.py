"""The short-lived cache of directory's public service details, and what it must never skip."""
from __future__ import annotations

import pytest

from services.referrals.directory_cache import ServiceDetailsCache, ServiceLookups, resolve
from tests.unit.referrals_fixtures import (  # noqa: F401  (fixtures)
    MOTHER, OTHER_ADMIN_AUTH, OTHER_TEACHER_AUTH, OTHER_TENANT_SERVICE, SERVICE, STUDENT, TEACHER_AUTH, auth, db,
    directory, identity, make_session, svc,
)
from weintervene.errors import Conflict, Forbidden, NotFound


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_an_answer_is_reused_only_by_the_same_viewer_and_only_until_it_expires(directory):
    clock = Clock()
    lookups = ServiceLookups(ServiceDetailsCache(ttl=30, clock=clock))
    [first] = [resolve(s) for s in lookups.get_many(directory, TEACHER_AUTH, [SERVICE])]
    assert first["name"] == "Casa Azul Counseling" and directory.get_service.call_count == 1
    # The same school (another teacher of it): no second call.
    assert resolve(lookups.get_many(directory, OTHER_TEACHER_AUTH, [SERVICE])[0]) == first
    assert directory.get_service.call_count == 1
    # Another school asks directory itself: visibility is directory's decision per viewer.
    resolve(lookups.get_many(directory, OTHER_ADMIN_AUTH, [SERVICE])[0])
    assert directory.get_service.call_count == 2
    clock.now += 30.5
    resolve(lookups.get_many(directory, TEACHER_AUTH, [SERVICE])[0])
    assert directory.get_service.call_count == 3


def test_another_tenants_service_is_never_served_from_its_owners_cache_entry(directory):
    lookups = ServiceLookups(ServiceDetailsCache(ttl=30))
    owner = auth(tenant=OTHER_ADMIN_AUTH["tenant_id"], role="school_admin")
    assert resolve(lookups.get_many(directory, owner, [OTHER_TENANT_SERVICE])[0])["id"] == OTHER_TENANT_SERVICE
    with pytest.raises(NotFound):
        resolve(lookups.get_many(directory, TEACHER_AUTH, [OTHER_TENANT_SERVICE])[0])


def test_refusals_are_not_cached(directory):
    lookups = ServiceLookups(ServiceDetailsCache(ttl=30))
    for _ in range(2):
        with pytest.raises(NotFound):
            resolve(lookups.get_many(directory, TEACHER_AUTH, [OTHER_TENANT_SERVICE])[0])
    assert directory.get_service.call_count == 2


def test_the_cache_is_bounded():
    cache = ServiceDetailsCache(ttl=30, max_entries=2)
    for i in range(3):
        cache.put(TEACHER_AUTH, str(i), {"id": str(i)})
    assert cache.get(TEACHER_AUTH, "0") is None and cache.get(TEACHER_AUTH, "2") == {"id": "2"}


def share(svc):
    return svc.share(TEACHER_AUTH, {"student_id": STUDENT, "contact_ids": [MOTHER], "service_ids": [SERVICE],
                                    "channel": "email"})


def test_identity_still_checks_access_on_every_share_when_directory_is_cached(svc, identity, directory):
    share(svc)
    share(svc)
    assert directory.get_service.call_count == 1
    assert identity.share_context.call_count == 2
    # A contact no longer authorised, and a fence, refuse the very next share.
    identity.contacts[STUDENT].discard(MOTHER)
    with pytest.raises(Forbidden):
        share(svc)
    identity.contacts[STUDENT].add(MOTHER)
    identity.fenced.add(STUDENT)
    with pytest.raises(Conflict) as err:
        share(svc)
    assert err.value.code == "subject_fenced"
