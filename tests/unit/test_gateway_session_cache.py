"""The gateway's session cache (gateway.sessions): what it keeps, for how long, and
that every way a session ends makes it forget. Identity's side (the event staged with
each revocation) is in tests/unit/test_identity_service.py."""
from __future__ import annotations

import pytest

from gateway.sessions import SessionCacheStore
from weintervene.auth import AuthContext, Role
from weintervene.contracts import SessionsEnded

RIVERA = AuthContext(user_id="11111111-1111-4111-8111-111111111111", tenant_id="22222222-2222-4222-8222-222222222222",
                     role=Role.TEACHER, session_id="33333333-3333-4333-8333-333333333333")
OKAFOR = AuthContext(user_id="44444444-4444-4444-8444-444444444444", tenant_id="55555555-5555-4555-8555-555555555555",
                     role=Role.TEACHER, session_id="66666666-6666-4666-8666-666666666666")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def cache(clock):
    return SessionCacheStore(ttl=15, clock=clock)


def test_an_answer_is_kept_for_the_cache_lifetime_then_asked_again(cache, clock):
    cache.put("token-a", RIVERA, 1800)
    clock.now += 14.9
    assert cache.get("token-a") == RIVERA
    clock.now += 0.2
    assert cache.get("token-a") is None


def test_never_kept_past_the_sessions_own_end(cache, clock):
    cache.put("token-a", RIVERA, session_seconds_left=2)  # idle or absolute end in 2 s
    clock.now += 1.9
    assert cache.get("token-a") == RIVERA
    clock.now += 0.2
    assert cache.get("token-a") is None
    cache.put("token-b", OKAFOR, session_seconds_left=0)
    assert cache.get("token-b") is None


def test_tokens_are_not_kept_in_the_clear(cache):
    cache.put("a-very-secret-token", RIVERA, 60)
    assert all("a-very-secret-token" not in key for key in cache._entries)


@pytest.mark.parametrize("named", [
    {"session_ids": [RIVERA.session_id]},
    {"user_ids": [RIVERA.user_id]},
    {"tenant_ids": [RIVERA.tenant_id]},
])
def test_forgets_what_a_sessions_ended_event_names_and_nothing_else(cache, named):
    cache.put("token-a", RIVERA, 60)
    cache.put("token-a2", RIVERA, 60)  # a second device of the same user
    cache.put("token-b", OKAFOR, 60)
    event = SessionsEnded().load({**named, "reason": "logout"})
    gone = cache.forget(event["session_ids"], event["user_ids"], event["tenant_ids"])
    assert cache.get("token-b") == OKAFOR
    assert cache.get("token-a") is None and cache.get("token-a2") is None  # same session id in this fixture
    assert gone == 2


def test_forget_token_drops_one_entry(cache):
    cache.put("token-a", RIVERA, 60)
    cache.forget_token("token-a")
    cache.forget_token("never-seen")
    assert cache.get("token-a") is None


def test_zero_turns_the_cache_off_and_the_setting_is_read_at_each_use(clock):
    seconds = {"ttl": 0}
    cache = SessionCacheStore(ttl=lambda: seconds["ttl"], clock=clock)
    cache.put("token-a", RIVERA, 60)
    assert cache.get("token-a") is None and len(cache) == 0
    seconds["ttl"] = 15
    cache.put("token-a", RIVERA, 60)
    assert cache.get("token-a") == RIVERA
    seconds["ttl"] = 0
    assert cache.get("token-a") is None


def test_the_event_carries_ids_only():
    with pytest.raises(Exception):
        SessionsEnded().load({"user_ids": [RIVERA.user_id], "reason": "logout", "token": "abc"})
    with pytest.raises(Exception):
        SessionsEnded().load({"user_ids": ["not-an-id"], "reason": "logout"})


def test_an_answer_given_before_a_revocation_that_crossed_it_is_not_remembered(cache):
    """identity answered "valid", then revoked the session and its broadcast was handled
    while that answer was still on its way: remembering it would undo the revocation."""
    asked_at = cache.epoch
    cache.forget(user_ids=[RIVERA.user_id])  # the broadcast, handled first
    cache.put("token-a", RIVERA, 60, asked_at_epoch=asked_at)  # the earlier answer, arriving late
    assert cache.get("token-a") is None
    asked_at = cache.epoch
    cache.put("token-a", RIVERA, 60, asked_at_epoch=asked_at)  # nothing forgotten meanwhile
    assert cache.get("token-a") == RIVERA
