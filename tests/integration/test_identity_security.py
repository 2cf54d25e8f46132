"""Passwords and sessions (ASVS L2): throttling that cannot lock the owner out,
rehash on sign-in, idle and absolute timeouts, revocation (logout, password
change, disabling), emailed one-time reset links, CSRF for cookie sessions."""
from __future__ import annotations

import hashlib
import re
import time
from datetime import datetime, timedelta

import pytest
import requests
from argon2 import PasswordHasher

from services.identity.exceptions import InvalidCredentials, LoginThrottled
from tests.support.identity_db import execute
from tests.support.infra import random_suffix
from tests.support.signing import ClusterRpcClient  # signs the contexts it passes, as the gateway does
from tests.support.world import PASSWORD, build_world
from weintervene.db import utcnow

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(system):
    return build_world(system)


@pytest.fixture(scope="module")
def rpc(system):
    with ClusterRpcClient(uri=system.settings.amqp_uri, timeout=30) as client:
        yield client


@pytest.fixture
def new_user(system, world, rpc):
    """A fresh teacher of S1 with the world password; returns its email."""

    def make(name="user"):
        email = f"{name}.{random_suffix()}@security.example"
        rpc.identity.bootstrap_user(
            {"email": email, "display_name": name.title(), "role": "teacher", "tenant_id": world.tenants["S1"]}, PASSWORD
        )
        return email

    return make


def login_rpc(rpc, email, password, ip):
    return rpc.identity.login({"email": email, "password": password}, client_ip=ip)


def http_login(system, email, password=PASSWORD):
    return requests.post(system.url("/api/v1/sessions"), json={"email": email, "password": password}, timeout=30)


# -- throttling -----------------------------------------------------------------

def test_account_and_address_lockout(rpc, new_user, patch_settings):
    patch_settings(max_failed_logins_per_account_ip_hour=3)
    email, ip = new_user(), "10.9.0." + str(int(time.time()) % 200 + 1)
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            login_rpc(rpc, email, "wrong password here", ip)
    # Locked for this account from this address, even with the right password...
    with pytest.raises(LoginThrottled):
        login_rpc(rpc, email, PASSWORD, ip)
    # ...but not from another address.
    assert login_rpc(rpc, email, PASSWORD, "10.9.1.1")["token"]


def test_per_address_limit_across_accounts(rpc, new_user, patch_settings):
    patch_settings(max_failed_logins_per_ip_hour=5)
    ip = "10.8.%d.%d" % (int(time.time()) % 200 + 1, int(time.time() * 7) % 200 + 1)
    for i in range(5):
        with pytest.raises(InvalidCredentials):
            login_rpc(rpc, f"nobody{i}.{random_suffix()}@security.example", "whatever it is", ip)
    victim = new_user("victim")
    with pytest.raises(LoginThrottled):
        login_rpc(rpc, victim, PASSWORD, ip)
    assert login_rpc(rpc, victim, PASSWORD, "10.8.250.1")["token"]


def test_account_limit_spares_the_owner_at_a_known_address(rpc, new_user, patch_settings):
    """Journey 9: a spread attack reaches the account limit; the owner still signs in
    from where they signed in before; a new address is refused until the hour passes."""
    victim = new_user("owner")
    home = "10.7.0.1"
    assert login_rpc(rpc, victim, PASSWORD, home)["token"]  # a known address from now on
    patch_settings(max_failed_logins_per_account_hour=5)
    for i in range(5):
        with pytest.raises(InvalidCredentials):
            login_rpc(rpc, victim, "attacker guess %d" % i, f"10.7.1.{i + 1}")
    with pytest.raises(LoginThrottled):
        login_rpc(rpc, victim, PASSWORD, "10.7.2.1")
    assert login_rpc(rpc, victim, PASSWORD, home)["token"]


def test_default_account_limit_is_100_per_hour(system):
    assert system.settings.max_failed_logins_per_account_hour == 100


def test_throttled_sign_in_is_429_with_retry_after_and_counted(system, new_user, patch_settings):
    email = new_user("gw")
    patch_settings(max_failed_logins_per_account_ip_hour=2)
    for _ in range(2):
        assert http_login(system, email, "wrong password!").status_code == 401
    r = http_login(system, email)
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "login_throttled"
    assert r.headers["Retry-After"] == "60"
    metrics = requests.get(system.url("/metrics"), timeout=10).text
    assert re.search(r'weintervene_login_throttled_total\{limit="account_ip"\} [1-9]', metrics)
    assert re.search(r"weintervene_login_failures_total [1-9]", metrics)


def test_unknown_email_and_wrong_password_look_the_same(system, new_user):
    email = new_user()
    a = http_login(system, email, "not the password")
    b = http_login(system, f"nobody.{random_suffix()}@security.example", "not the password")
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()


# -- hashes ----------------------------------------------------------------------

def test_weaker_hash_is_upgraded_at_sign_in(system, rpc, new_user):
    email = new_user("rehash")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    execute(system, "UPDATE user_account SET password_hash = :h WHERE email = :e", h=weak, e=email)
    assert login_rpc(rpc, email, PASSWORD, "10.6.0.1")["token"]
    stored = execute(system, "SELECT password_hash FROM user_account WHERE email = :e", e=email)[0][0]
    assert stored != weak and stored.startswith("$argon2id$") and "m=47104,t=1,p=1" in stored


def test_tokens_are_random_and_stored_only_hashed(system, rpc, new_user):
    email = new_user()
    token = login_rpc(rpc, email, PASSWORD, "10.6.0.2")["token"]
    assert len(token) >= 43  # 256 bits, base64url
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert execute(system, "SELECT count(*) FROM user_session WHERE token_hash = :h", h=digest)[0][0] == 1
    assert execute(system, "SELECT count(*) FROM user_session WHERE token_hash = :t", t=token)[0][0] == 0


# -- timeouts and revocation -------------------------------------------------------

def _session(system, email):
    r = http_login(system, email)
    assert r.status_code == 201, r.text
    return r.json()["token"], system.client(r.json()["token"])


def test_idle_timeout_after_30_minutes(system, new_user, patch_settings):
    # Time moves in the database only; the gateway's session cache lives in real time.
    patch_settings(gateway_session_cache_seconds=0)
    email = new_user("idle")
    token, client = _session(system, email)
    digest = hashlib.sha256(token.encode()).hexdigest()
    move = "UPDATE user_session SET last_seen_at = :t WHERE token_hash = :h"
    execute(system, move, t=utcnow() - timedelta(minutes=29), h=digest)
    assert client.get(system.url("/api/v1/me")).status_code == 200  # 29 minutes idle: still on
    execute(system, move, t=utcnow() - timedelta(minutes=31), h=digest)
    r = client.get(system.url("/api/v1/me"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_expired"
    reason = execute(system, "SELECT revoked_reason FROM user_session WHERE token_hash = :h", h=digest)[0][0]
    assert reason == "timeout"


def test_absolute_timeout_after_12_hours_moved_in_the_database(system, new_user, patch_settings):
    patch_settings(gateway_session_cache_seconds=0)  # time moves in the database only
    token, client = _session(system, new_user("twelve"))
    digest = hashlib.sha256(token.encode()).hexdigest()
    created, expires = (datetime.fromisoformat(v) if isinstance(v, str) else v  # SQLite returns text
                        for v in execute(system, "SELECT created_at, expires_at FROM user_session WHERE token_hash = :h", h=digest)[0])
    assert expires - created == timedelta(hours=12)
    execute(system, "UPDATE user_session SET expires_at = :t WHERE token_hash = :h", t=utcnow(), h=digest)
    assert client.get(system.url("/api/v1/me")).status_code == 401


def test_idle_timeout_setting_applies(system, new_user, patch_settings):
    patch_settings(session_idle_seconds=1)
    _, client = _session(system, new_user())
    time.sleep(1.2)
    assert client.get(system.url("/api/v1/me")).status_code == 401


def test_absolute_timeout_even_when_active(system, new_user, patch_settings):
    patch_settings(session_absolute_seconds=2)
    _, client = _session(system, new_user("absolute"))
    for _ in range(3):  # busy the whole time: the idle clock never runs out
        assert client.get(system.url("/api/v1/me")).status_code == 200
        time.sleep(0.5)
    time.sleep(0.8)
    r = client.get(system.url("/api/v1/me"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_expired"


def test_default_timeouts_are_30_minutes_and_12_hours(system):
    assert system.settings.session_idle_seconds == 30 * 60
    assert system.settings.session_absolute_seconds == 12 * 3600


def test_logout_revokes_the_token(system, new_user):
    token, client = _session(system, new_user())
    assert client.delete(system.url("/api/v1/sessions/current")).status_code == 200
    assert client.get(system.url("/api/v1/me")).status_code == 401


def test_a_session_ended_behind_the_gateways_back_is_refused_at_once(system, rpc, new_user, patch_settings):
    """The gateway keeps identity's answer (gateway.sessions); identity's ``sessions_ended``
    broadcast makes it forget. Here the sign-out goes to identity directly, as retention's
    fence does, so only the broadcast can tell the gateway."""
    patch_settings(gateway_session_cache_seconds=600)
    token, client = _session(system, new_user("elsewhere"))
    assert client.get(system.url("/api/v1/me")).status_code == 200  # the gateway now remembers it
    # Control: a revocation written straight into the database (no event) is not seen yet,
    # so the cache is in use and what follows is the event's doing.
    other_token, other = _session(system, new_user("control"))
    assert other.get(system.url("/api/v1/me")).status_code == 200
    execute(system, "UPDATE user_session SET revoked_at = :t WHERE token_hash = :h",
            t=utcnow(), h=hashlib.sha256(other_token.encode()).hexdigest())
    assert other.get(system.url("/api/v1/me")).status_code == 200  # cached: 600 s at worst without the event

    rpc.identity.logout(token)  # identity publishes sessions_ended before it answers
    deadline = time.monotonic() + 5
    while client.get(system.url("/api/v1/me")).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    r = client.get(system.url("/api/v1/me"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_expired", r.text


def test_password_change_ends_other_sessions_only(system, new_user):
    email = new_user("changer")
    _, here = _session(system, email)
    _, elsewhere = _session(system, email)
    r = here.post(system.url("/api/v1/me/password"), json={"current_password": PASSWORD, "new_password": "a brand new passphrase"})
    assert r.status_code == 200, r.text
    assert r.json() == {"changed": True, "other_sessions_ended": 1}
    assert here.get(system.url("/api/v1/me")).status_code == 200
    assert elsewhere.get(system.url("/api/v1/me")).status_code == 401
    assert http_login(system, email).status_code == 401
    assert http_login(system, email, "a brand new passphrase").status_code == 201


@pytest.mark.parametrize("body, status, code", [
    ({"current_password": "not it at all", "new_password": "a brand new passphrase"}, 400, "wrong_current_password"),
    ({"current_password": PASSWORD, "new_password": "password123"}, 400, "weak_password"),
    ({"current_password": PASSWORD, "new_password": "short"}, 400, "weak_password"),
    ({"current_password": PASSWORD}, 400, "invalid_input"),
    ({"current_password": PASSWORD, "new_password": "x" * 200, "admin": True}, 400, "invalid_input"),
])
def test_password_change_refusals(system, new_user, body, status, code):
    email = new_user()
    _, client = _session(system, email)
    r = client.post(system.url("/api/v1/me/password"), json=body)
    assert r.status_code == status and r.json()["error"]["code"] == code, r.text
    assert http_login(system, email).status_code == 201  # password unchanged


def test_disabling_a_user_ends_their_sessions(system, world, new_user):
    email = new_user("disabled")
    token, client = _session(system, email)
    user_id = client.get(system.url("/api/v1/me")).json()["user_id"]
    admin = world.http("school_admin")
    assert admin.patch(system.url(f"/api/v1/users/{user_id}"), json={"is_active": False}).status_code == 200
    assert client.get(system.url("/api/v1/me")).status_code == 401
    assert http_login(system, email).status_code == 401
    assert admin.patch(system.url(f"/api/v1/users/{user_id}"), json={"is_active": True}).status_code == 200
    assert client.get(system.url("/api/v1/me")).status_code == 401  # revoked stays revoked
    assert http_login(system, email).status_code == 201


def test_admin_cannot_disable_themself(system, world):
    me = world.users["school_admin"]["id"]
    r = world.http("school_admin").patch(system.url(f"/api/v1/users/{me}"), json={"is_active": False})
    assert r.status_code == 409 and r.json()["error"]["code"] == "self_change"


# -- reset by emailed link -------------------------------------------------------------

def _reset_token(system, email):
    message = system.smtp.wait_for(lambda m: m["To"] == email and "reset" in m["Subject"].lower())
    body = message.get_body(("plain",)).get_content()
    return re.search(r"token=([A-Za-z0-9_\-]+)", body).group(1), message


def test_reset_request_is_202_for_anyone(system):
    unknown = f"nobody.{random_suffix()}@security.example"
    r = requests.post(system.url("/api/v1/password-resets"), json={"email": unknown}, timeout=10)
    assert r.status_code == 202
    time.sleep(0.5)
    assert not [m for m in system.smtp.messages() if m["To"] == unknown]


def test_reset_link_works_once_and_ends_sessions(system, new_user):
    email = new_user("forgetful")
    _, old_session = _session(system, email)
    r = requests.post(system.url("/api/v1/password-resets"), json={"email": email.upper()}, timeout=10)
    assert r.status_code == 202
    token, message = _reset_token(system, email)
    assert message["From"] == system.settings.smtp_sender
    assert system.settings.public_base_url in message.get_body(("plain",)).get_content()
    assert message.get_body(("html",)) is not None
    done = requests.post(system.url("/api/v1/password-resets/complete"),
                         json={"token": token, "new_password": "recovered passphrase 1"}, timeout=10)
    assert done.status_code == 200, done.text
    assert old_session.get(system.url("/api/v1/me")).status_code == 401
    assert http_login(system, email, "recovered passphrase 1").status_code == 201
    again = requests.post(system.url("/api/v1/password-resets/complete"),
                          json={"token": token, "new_password": "another passphrase 2"}, timeout=10)
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_reset_token"
    assert http_login(system, email, "recovered passphrase 1").status_code == 201


def test_reset_link_expires(system, new_user):
    email = new_user("late")
    requests.post(system.url("/api/v1/password-resets"), json={"email": email}, timeout=10)
    token, _ = _reset_token(system, email)
    digest = hashlib.sha256(token.encode()).hexdigest()
    execute(system, "UPDATE password_reset SET expires_at = :t WHERE token_hash = :h",
            t=utcnow(), h=digest)
    r = requests.post(system.url("/api/v1/password-resets/complete"),
                      json={"token": token, "new_password": "too late passphrase"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_reset_token"
    assert http_login(system, email).status_code == 201


def test_reset_ttl_comes_from_settings(system, new_user, patch_settings):
    patch_settings(password_reset_ttl_seconds=1)
    email = new_user("ttl")
    requests.post(system.url("/api/v1/password-resets"), json={"email": email}, timeout=10)
    token, message = _reset_token(system, email)
    time.sleep(1.2)
    r = requests.post(system.url("/api/v1/password-resets/complete"),
                      json={"token": token, "new_password": "too late passphrase"}, timeout=10)
    assert r.status_code == 400


def test_a_newer_reset_link_replaces_the_older(system, new_user):
    email = new_user("twice")
    requests.post(system.url("/api/v1/password-resets"), json={"email": email}, timeout=10)
    first, first_msg = _reset_token(system, email)
    requests.post(system.url("/api/v1/password-resets"), json={"email": email}, timeout=10)
    second_msg = system.smtp.wait_for(lambda m: m["To"] == email and m["Message-ID"] != first_msg["Message-ID"])
    second = re.search(r"token=([A-Za-z0-9_\-]+)", second_msg.get_body(("plain",)).get_content()).group(1)
    r = requests.post(system.url("/api/v1/password-resets/complete"),
                      json={"token": first, "new_password": "first link passphrase"}, timeout=10)
    assert r.status_code == 400
    r = requests.post(system.url("/api/v1/password-resets/complete"),
                      json={"token": second, "new_password": "second link passphrase"}, timeout=10)
    assert r.status_code == 200


def test_reset_requests_cannot_flood_an_inbox(system, new_user):
    email = new_user("flooded")
    for _ in range(5):
        r = requests.post(system.url("/api/v1/password-resets"), json={"email": email}, timeout=10)
        assert r.status_code == 202
    # Counted once per poll: the sink holds the whole suite's mail by now, so a predicate
    # that re-read it for every message (as wait_for's would) took minutes.
    deadline = time.monotonic() + 30
    while len([m for m in system.smtp.messages() if m["To"] == email]) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    assert len([m for m in system.smtp.messages() if m["To"] == email]) == 3


def test_reset_with_weak_password_keeps_the_link_usable(system, new_user):
    email = new_user("weak")
    requests.post(system.url("/api/v1/password-resets"), json={"email": email}, timeout=10)
    token, _ = _reset_token(system, email)
    r = requests.post(system.url("/api/v1/password-resets/complete"), json={"token": token, "new_password": "password1"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "weak_password"
    r = requests.post(system.url("/api/v1/password-resets/complete"), json={"token": token, "new_password": "a good passphrase"}, timeout=10)
    assert r.status_code == 200


def test_invited_user_chooses_a_password_by_link(system, world):
    email = f"invited.{random_suffix()}@security.example"
    r = world.http("school_admin").post(system.url("/api/v1/users"), json={
        "tenant_id": world.tenants["S1"], "email": email, "display_name": "Invited Teacher", "role": "teacher"})
    assert r.status_code == 201 and r.json()["invited"] is True
    message = system.smtp.wait_for(lambda m: m["To"] == email)
    token = re.search(r"token=([A-Za-z0-9_\-]+)", message.get_body(("plain",)).get_content()).group(1)
    r = requests.post(system.url("/api/v1/password-resets/complete"), json={"token": token, "new_password": "my first passphrase"}, timeout=10)
    assert r.status_code == 200
    assert http_login(system, email, "my first passphrase").status_code == 201


# -- CSRF for cookie sessions --------------------------------------------------------

def test_cookie_session_needs_the_csrf_header_on_writes(system, new_user):
    r = http_login(system, new_user("cookie"))
    session_cookie = r.cookies.get("wi_session") or re.search(r"wi_session=([^;]+)", r.headers["Set-Cookie"]).group(1)
    set_cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "Secure" in set_cookie and "SameSite=Strict" in set_cookie
    csrf = re.search(r"wi_csrf=([^;]+)", set_cookie).group(1)
    cookies = {"Cookie": f"wi_session={session_cookie}; wi_csrf={csrf}"}
    assert requests.get(system.url("/api/v1/me"), headers=cookies, timeout=10).status_code == 200  # reads need none
    r = requests.delete(system.url("/api/v1/sessions/current"), headers=cookies, timeout=10)
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = requests.delete(system.url("/api/v1/sessions/current"), headers={**cookies, "X-CSRF-Token": "0" * 64}, timeout=10)
    assert r.status_code == 403
    r = requests.delete(system.url("/api/v1/sessions/current"), headers={**cookies, "X-CSRF-Token": csrf}, timeout=10)
    assert r.status_code == 200
    assert requests.get(system.url("/api/v1/me"), headers=cookies, timeout=10).status_code == 401


def test_a_role_change_takes_effect_at_once(system, world, new_user):
    email = new_user("promoted")
    _, client = _session(system, email)
    me = client.get(system.url("/api/v1/me")).json()
    admin = world.http("school_admin")
    r = admin.patch(system.url(f"/api/v1/users/{me['user_id']}"), json={"role": "teacher", "display_name": "Same Role"})
    assert r.status_code == 200
    assert client.get(system.url("/api/v1/me")).status_code == 200  # unchanged role: session kept
    r = admin.patch(system.url(f"/api/v1/users/{me['user_id']}"), json={"role": "school_admin"})
    assert r.status_code == 200 and r.json()["role"] == "school_admin"
    assert client.get(system.url("/api/v1/me")).status_code == 401
    assert system.login(email, PASSWORD).get(system.url("/api/v1/me")).json()["role"] == "school_admin"
