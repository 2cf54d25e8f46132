"""HSDS 3.1 through the gateway: POST search on every list endpoint answers what GET answers
with the parameters in the body (none in the URL), and CORS lets another origin read
(GET/HEAD/OPTIONS, no credentials) but never write."""
import pytest
import requests

from services.directory.taxonomy import OPEN_ELIGIBILITY_ID, term_id
from tests.support.hsds_schema import assert_valid_page
from tests.support.signing import ClusterRpcClient

pytestmark = pytest.mark.integration
PASSWORD = "a long operator passphrase"
ORIGIN = "https://partner.county.example"


@pytest.fixture(scope="module")
def demo(system):
    with ClusterRpcClient(uri=system.settings.amqp_uri, timeout=120) as rpc:
        try:
            rpc.identity.bootstrap_user(
                {"email": "ops@platform.example", "display_name": "Ops", "role": "operator", "tenant_id": None}, PASSWORD)
        except Exception:  # created by an earlier module of this run
            pass
        token = rpc.identity.login({"email": "ops@platform.example", "password": PASSWORD}, client_ip="test")["token"]
        report = rpc.directory.load_demo(rpc.identity.authenticate(token))
    assert report["skipped"] == 0
    return report


SEARCHES = [
    ("/hsds/services", {"search": "pantry", "per_page": 7}, "service_list"),
    ("/hsds/services", {"taxonomy_term_id": term_id("109-03-10"), "full": True}, "service"),
    ("/hsds/services", {"postcode": "20001", "proximity": 15000, "minimal": True}, "service_list"),
    ("/hsds/service_at_locations", {"search": "tutoring", "per_page": 5}, "service_at_location_list"),
    ("/hsds/organizations", {"taxonomy_term_id": term_id("109-03-10"), "per_page": 4}, "organization_list"),
    ("/hsds/taxonomies", {"search": "open"}, "taxonomy"),
    ("/hsds/taxonomy_terms", {"taxonomy_id": OPEN_ELIGIBILITY_ID, "top_only": True}, "taxonomy_term"),
]


@pytest.mark.parametrize("path,params,item", SEARCHES)
def test_post_search_answers_what_get_answers(system, demo, path, params, item):
    as_query = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
    got = requests.get(system.url(path), params=as_query, timeout=20)
    posted = requests.post(system.url(path), json=params, timeout=20)
    assert got.status_code == posted.status_code == 200, posted.text
    assert posted.json() == got.json()
    assert posted.json()["total_items"] > 0
    assert_valid_page(item, posted.json())
    # The search stays out of the URL: a POST search takes its parameters from the body only.
    assert "?" not in posted.request.url
    leaked = requests.post(system.url(path), params={"search": "pregnant teens"}, json={}, timeout=20)
    assert leaked.status_code == 400


def test_post_search_refuses_bad_bodies_with_reasons(system, demo):
    bad = requests.post(system.url("/hsds/services"), json={"per_page": 0, "nonsense": 1}, timeout=20)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_input"
    assert requests.post(system.url("/hsds/services"), data="[1]", headers={"Content-Type": "application/json"},
                         timeout=20).status_code == 400
    assert requests.post(system.url("/hsds/services"), json={"format": "ndjson", "search": "pantry"},
                         timeout=20).headers["Content-Type"].startswith("application/x-ndjson")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_cors_preflight_for_reads_is_answered_without_credentials(system, demo, method):
    r = requests.options(system.url("/hsds/services"), timeout=10, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": "accept"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert set(r.headers["Access-Control-Allow-Methods"].replace(" ", "").split(",")) == {"GET", "HEAD", "OPTIONS"}
    assert "Access-Control-Allow-Credentials" not in r.headers


def test_cors_simple_reads_are_readable_by_any_origin(system, demo):
    for path in ("/hsds/", "/hsds/services", f"/hsds/taxonomies/{OPEN_ELIGIBILITY_ID}"):
        got = requests.get(system.url(path), headers={"Origin": ORIGIN}, timeout=20)
        assert got.status_code == 200 and got.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in got.headers
        head = requests.head(system.url(path), headers={"Origin": ORIGIN}, timeout=20)
        assert head.headers.get("Access-Control-Allow-Origin") == "*"
    missing = requests.get(system.url("/hsds/services/xyz"), headers={"Origin": ORIGIN}, timeout=20)
    assert missing.status_code == 400 and missing.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_cors_refuses_writes(system, demo, method):
    r = requests.options(system.url("/hsds/services"), timeout=10, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 403
    assert "Access-Control-Allow-Origin" not in r.headers and "Access-Control-Allow-Methods" not in r.headers
    # The POST search answered to a same-origin caller carries no CORS header either.
    posted = requests.post(system.url("/hsds/services"), json={}, headers={"Origin": ORIGIN}, timeout=20)
    assert "Access-Control-Allow-Origin" not in posted.headers


def test_cors_stays_off_the_private_api(system, demo):
    r = requests.options(system.url("/api/v1/students"), timeout=10, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in r.headers
    got = requests.get(system.url("/api/v1/directory/services"), headers={"Origin": ORIGIN}, timeout=20)
    assert "Access-Control-Allow-Origin" not in got.headers
