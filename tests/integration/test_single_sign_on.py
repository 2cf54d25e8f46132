"""Single sign-on against a real OpenID provider (panva's oidc-provider on loopback).

The district admin of D1 configures it through the API; teachers of D1's schools sign in
through the provider's own login and consent pages; every check of the ID token and of
the account is made to fail once: a wrong audience, an expired token, a signature by a
key not the provider's, a replayed code, an unverified email, a domain not allowed, a
disabled user, another tenant's account; key rotation needs exactly one JWKS refetch.
"""
from __future__ import annotations

import os
import pytest
import requests

from tests.support.identity_db import execute
from tests.support.infra import free_port, random_suffix
from tests.support.oidc_provider import OidcProvider, node_available
from tests.support.signing import ClusterRpcClient
from tests.support.world import PASSWORD, build_world

pytestmark = [pytest.mark.integration,
              # CI installs Node.js (.ci/run); elsewhere without it these are skipped, saying why.
              pytest.mark.skipif(not node_available() and not os.environ.get("CI"),
                                 reason="needs Node.js 20.19+ and npm (apt-get install -y nodejs npm)")]

CLIENT_ID = "weintervene-d1"
CLIENT_SECRET = "d1-client-secret-for-tests"


@pytest.fixture(scope="module")
def world(system):
    return build_world(system)


@pytest.fixture(scope="module")
def provider(system):
    with OidcProvider() as running:
        running.set_clients([{
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "redirect_uris": [system.url("/api/v1/sso/callback")],
            "post_logout_redirect_uris": [system.url("/signout")],
        }])
        yield running


@pytest.fixture(scope="module")
def configured(system, world, provider):
    answer = world.http("district_admin").put(system.url(f"/api/v1/tenants/{world.tenants['D1']}/sso"), json={
        "preset": "generic", "issuer_url": provider.issuer, "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "allowed_domains": ["world.example"],
    }, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


_ACCOUNTS: dict = {}


def account(provider, world, user: str, new: bool = False, **claims) -> str:
    """``user``'s provider account (the same one each time unless ``new`` or other claims):
    it carries the user's address, verified unless told otherwise."""
    key = (provider.issuer, user, tuple(sorted(claims.items())))
    if key in _ACCOUNTS and not new:
        return _ACCOUNTS[key]
    account_id = _ACCOUNTS[key] = f"{user.split('@')[0]}-{random_suffix()}"
    provider.set_account(account_id, **{"email": world.email(user) if user in world.users else user,
                                        "email_verified": True, "name": "From The Provider", **claims})
    return account_id


def start(system, tenant_id):
    r = requests.get(system.url(f"/api/v1/sso/{tenant_id}/start"), allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text
    return r.headers["Location"], r.cookies["wi_sso_flow"]


def callback(location, flow_cookie):
    return requests.get(location, headers={"Cookie": f"wi_sso_flow={flow_cookie}"}, allow_redirects=False, timeout=30)


def sso_sign_in(system, world, provider, account_id, tenant="D1"):
    authorization_url, flow = start(system, world.tenants[tenant])
    location = provider.sign_in(authorization_url, account_id)
    assert location.startswith(system.url("/api/v1/sso/callback")), location
    return callback(location, flow), location, flow


def me(system, token):
    return requests.get(system.url("/api/v1/me"), headers={"Authorization": f"Bearer {token}"}, timeout=30)


# -- configuration -----------------------------------------------------------------

def test_configuration_keeps_the_secret_sealed(system, world, configured):
    assert configured["client_secret_set"] is True and "client_secret" not in configured
    assert configured["redirect_uri"] == system.url("/api/v1/sso/callback")
    shown = world.http("district_admin").get(system.url(f"/api/v1/tenants/{world.tenants['D1']}/sso"), timeout=30).json()
    assert CLIENT_SECRET not in str(shown)
    (sealed,) = execute(system, "SELECT client_secret_sealed FROM sso_configuration WHERE tenant_id = :t",
                        t=world.tenants["D1"])[0]
    assert CLIENT_SECRET not in sealed and sealed.split(":")[0] == system.settings.secret_key_id


def test_configuration_bad_input_and_scope(system, world, configured):
    d1 = world.tenants["D1"]
    admin = world.http("district_admin")
    entra = admin.put(system.url(f"/api/v1/tenants/{d1}/sso"), json={
        "preset": "entra", "client_id": "x", "client_secret": "y", "allowed_domains": ["world.example"]}, timeout=30)
    assert entra.status_code == 400 and "provider_tenant" in entra.json()["error"]["details"]
    plain_http = admin.put(system.url(f"/api/v1/tenants/{d1}/sso"), json={
        "preset": "generic", "issuer_url": "http://idp.example", "client_id": "x",
        "allowed_domains": ["world.example"]}, timeout=30)
    assert plain_http.status_code == 400
    # A school of a district uses its district's; another district is not reachable at all.
    school = world.http("school_admin").get(system.url(f"/api/v1/tenants/{world.tenants['S1']}/sso"), timeout=30)
    assert school.status_code == 403 and school.json()["error"]["code"] == "sso_configured_by_district"
    other = world.http("d2_admin").get(system.url(f"/api/v1/tenants/{d1}/sso"), timeout=30)
    assert other.status_code == 404
    teacher = world.http("teacher").get(system.url(f"/api/v1/tenants/{d1}/sso"), timeout=30)
    assert teacher.status_code == 403
    # Nothing of the refused attempts was stored: the working configuration is intact.
    kept = admin.get(system.url(f"/api/v1/tenants/{d1}/sso"), timeout=30).json()
    assert kept["issuer_url"] == configured["issuer_url"] and kept["preset"] == "generic"


# -- signing in -----------------------------------------------------------------------

def test_teacher_signs_in_and_out_like_a_password_session(system, world, provider, configured):
    response, _location, _flow = sso_sign_in(system, world, provider, account(provider, world, "teacher"))
    assert response.status_code == 200, response.text
    token = response.cookies["wi_session"]
    who = me(system, token).json()
    assert (who["user_id"], who["role"]) == (world.users["teacher"]["id"], "teacher")
    (expires,) = execute(system, "SELECT expires_at - created_at FROM user_session WHERE id = :s", s=who["session_id"])[0]
    assert expires.total_seconds() == system.settings.session_absolute_seconds
    out = requests.delete(system.url("/api/v1/sessions/current"), headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert out.status_code == 200
    assert out.json()["provider_sign_out_url"].startswith(f"{provider.issuer}/session/end?client_id={CLIENT_ID}")
    assert me(system, token).status_code == 401


def test_lookup_by_domain(system, world, configured):
    found = requests.post(system.url("/api/v1/sso/lookup"), json={"email": world.email("teacher")}, timeout=30).json()
    assert found["start_url"] == f"/api/v1/sso/{world.tenants['D1']}/start"
    assert requests.post(system.url("/api/v1/sso/lookup"), json={"email": "a@nowhere.example"}, timeout=30).status_code == 404


@pytest.mark.parametrize("how, words", [
    ("audience", "aud"), ("expired", "exp"), ("foreign_key", "signature"),
])
def test_tampered_id_tokens_are_refused(system, world, provider, configured, how, words):
    provider.tamper_next(how)
    response, _location, _flow = sso_sign_in(system, world, provider, account(provider, world, "teacher"))
    assert response.status_code == 401, response.text
    assert words in response.text and "wi_session" not in response.cookies


def test_replayed_code_and_foreign_state_are_refused(system, world, provider, configured):
    response, location, flow = sso_sign_in(system, world, provider, account(provider, world, "teacher2"))
    assert response.status_code == 200
    replay = callback(location, flow)
    assert replay.status_code == 401 and "used already" in replay.text and "wi_session" not in replay.cookies
    _url, other_flow = start(system, world.tenants["D1"])
    assert callback(location, other_flow).status_code == 401  # a state this browser never started
    assert callback(location, other_flow + "x").status_code == 401  # a cookie not ours


def test_an_answer_naming_another_issuer_is_refused(system, world, provider, configured):
    authorization_url, flow = start(system, world.tenants["D1"])
    location = provider.sign_in(authorization_url, account(provider, world, "teacher"))
    assert f"iss={requests.utils.quote(provider.issuer, safe='')}" in location  # RFC 9207, as the provider sends it
    mixed_up = location.replace(requests.utils.quote(provider.issuer, safe=""), "https%3A%2F%2Fevil.example")
    response = callback(mixed_up, flow)
    assert response.status_code == 401 and "another sign-in provider" in response.text
    assert callback(location, flow).status_code == 200  # the code was never spent


@pytest.mark.parametrize("user, claims, words", [
    ("teacher", {"email_verified": False}, "not verified"),
    ("someone@elsewhere.example", {}, "may not sign in"),
    ("s3_teacher", {}, "No WeIntervene account"),  # D2's account, through D1's provider
    ("nobody@world.example", {}, "No WeIntervene account"),
])
def test_accounts_the_provider_cannot_sign_in(system, world, provider, configured, user, claims, words):
    response, _l, _f = sso_sign_in(system, world, provider, account(provider, world, user, **claims))
    assert response.status_code == 401 and words in response.text


def test_another_provider_account_with_the_address_is_refused(system, world, provider, configured):
    first, _l, _f = sso_sign_in(system, world, provider, account(provider, world, "school_admin"))
    assert first.status_code == 200
    other, _l, _f = sso_sign_in(system, world, provider, account(provider, world, "school_admin", new=True))
    assert other.status_code == 401 and "linked to another account" in other.text


def test_disabled_user_stays_out(system, world, provider, configured):
    email = f"leaving.{random_suffix()}@world.example"
    with ClusterRpcClient(uri=system.settings.amqp_uri, timeout=30) as rpc:
        user = rpc.identity.bootstrap_user({"email": email, "display_name": "Leaving", "role": "teacher",
                                            "tenant_id": world.tenants["S1"]}, PASSWORD)
    r = world.http("school_admin").patch(system.url(f"/api/v1/users/{user['id']}"), json={"is_active": False}, timeout=30)
    assert r.status_code == 200
    response, _l, _f = sso_sign_in(system, world, provider, account(provider, world, email))
    assert response.status_code == 401 and "disabled" in response.text


def test_key_rotation_refetches_the_jwks_once(system, world, provider, configured):
    first, _l, _f = sso_sign_in(system, world, provider, account(provider, world, "teacher"))
    assert first.status_code == 200
    before = provider.stats()["jwks_requests"]
    again, _l, _f = sso_sign_in(system, world, provider, account(provider, world, "teacher"))
    assert again.status_code == 200 and provider.stats()["jwks_requests"] == before  # cached
    provider.rotate_keys()
    rotated, _l, _f = sso_sign_in(system, world, provider, account(provider, world, "teacher"))
    assert rotated.status_code == 200, rotated.text
    assert provider.stats()["jwks_requests"] == before + 1


def test_just_in_time_provisioning_is_recorded(system, world, provider, configured):
    d1, s1 = world.tenants["D1"], world.tenants["S1"]
    admin = world.http("district_admin")
    newcomer = f"newcomer.{random_suffix()}@world.example"
    refused, _l, _f = sso_sign_in(system, world, provider, account(provider, world, newcomer))
    assert refused.status_code == 401
    body = {"preset": "generic", "issuer_url": provider.issuer, "client_id": CLIENT_ID,
            "allowed_domains": ["world.example"], "jit_role": "teacher", "jit_tenant_id": s1}
    assert admin.put(system.url(f"/api/v1/tenants/{d1}/sso"), json=body, timeout=30).status_code == 200
    try:
        wrong = admin.put(system.url(f"/api/v1/tenants/{d1}/sso"), json={**body, "jit_role": "program_staff"}, timeout=30)
        assert wrong.status_code == 400
        made, _l, _f = sso_sign_in(system, world, provider, account(provider, world, newcomer))
        assert made.status_code == 200, made.text
        who = me(system, made.cookies["wi_session"]).json()
        assert (who["role"], who["tenant_id"], who["email"]) == ("teacher", s1, newcomer)
        log = admin.get(system.url("/api/v1/access-log"), params={"action": "user_provisioned"}, timeout=30).json()
        entry = next(e for e in log["items"] if "From The Provider" in e["description"])
        assert entry["actor_role"] == "single_sign_on" and entry["tenant_id"] == s1
    finally:
        body.pop("jit_role"), body.pop("jit_tenant_id")
        assert admin.put(system.url(f"/api/v1/tenants/{d1}/sso"), json=body, timeout=30).status_code == 200


def test_password_sign_in_turned_off(system, world, provider, configured):
    d1 = world.tenants["D1"]
    admin = world.http("district_admin")
    body = {"preset": "generic", "issuer_url": provider.issuer, "client_id": CLIENT_ID,
            "allowed_domains": ["world.example"], "password_sign_in_allowed": False}
    assert admin.put(system.url(f"/api/v1/tenants/{d1}/sso"), json=body, timeout=30).status_code == 200
    try:
        refused = requests.post(system.url("/api/v1/sessions"), json={"email": world.email("s2_teacher"),
                                                                      "password": PASSWORD}, timeout=30)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "password_sign_in_disabled"
        assert "single sign-on" in refused.json()["error"]["message"]
        wrong = requests.post(system.url("/api/v1/sessions"), json={"email": world.email("s2_teacher"),
                                                                    "password": "not the password"}, timeout=30)
        assert wrong.status_code == 401  # a wrong password learns nothing about the organisation
        other = requests.post(system.url("/api/v1/sessions"), json={"email": world.email("s3_teacher"),
                                                                    "password": PASSWORD}, timeout=30)
        assert other.status_code == 201  # D2 did not turn it off
        admin_password = requests.post(system.url("/api/v1/sessions"), json={"email": world.email("district_admin"),
                                                                             "password": PASSWORD}, timeout=30)
        assert admin_password.status_code == 201  # administrators keep theirs, to repair a broken provider
    finally:
        body["password_sign_in_allowed"] = True
        assert admin.put(system.url(f"/api/v1/tenants/{d1}/sso"), json=body, timeout=30).status_code == 200


def test_provider_down_is_a_clear_page(system, world):
    p1 = world.tenants["P1"]
    dead = f"http://127.0.0.1:{free_port()}"
    r = world.http("program_admin").put(system.url(f"/api/v1/tenants/{p1}/sso"), json={
        "preset": "generic", "issuer_url": dead, "client_id": "p1", "client_secret": "s",
        "allowed_domains": ["program.example"]}, timeout=30)
    assert r.status_code == 200, r.text
    page = requests.get(system.url(f"/api/v1/sso/{p1}/start"), allow_redirects=False, timeout=30)
    assert page.status_code == 503 and "not answering" in page.text
    assert page.headers["Content-Type"].startswith("text/html")
    unknown = requests.get(system.url(f"/api/v1/sso/{world.tenants['S4']}/start"), allow_redirects=False, timeout=30)
    assert unknown.status_code == 404
