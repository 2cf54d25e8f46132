"""The spine through the gateway: health, sign-in, errors as JSON, the OpenAPI document."""
import pytest
import requests
from openapi_spec_validator import validate

from weintervene.config import SERVICES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def operator(system):
    from tests.support.signing import ClusterRpcClient  # signs the contexts it passes, as the gateway does

    with ClusterRpcClient(uri=system.settings.amqp_uri) as rpc:
        try:
            rpc.identity.bootstrap_user(
                {"email": "ops@platform.example", "display_name": "Ops", "role": "operator", "tenant_id": None},
                "a long operator passphrase",
            )
        except Exception:  # created by an earlier module of this run
            pass
    return system.login("ops@platform.example", "a long operator passphrase")


def test_healthz_reports_every_service(system):
    r = requests.get(system.url("/healthz"), timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["services"]) == set(SERVICES)
    assert all(s["status"] == "ok" and s["database"] == "ok" for s in body["services"].values())


def test_metrics_are_prometheus_text(system, operator):
    operator.get(system.url("/api/v1/me"))
    r = requests.get(system.url("/metrics"), timeout=10)
    assert r.status_code == 200
    assert "weintervene_entrypoint_calls_total" in r.text
    assert 'service="identity"' in r.text


def test_sign_in_then_me_with_bearer_token(system, operator):
    r = operator.get(system.url("/api/v1/me"))
    assert r.status_code == 200
    assert r.json()["role"] == "operator"
    assert r.json()["email"] == "ops@platform.example"


def test_me_without_token_is_401_json(system):
    r = requests.get(system.url("/api/v1/me"), timeout=10)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"


def test_unknown_path_is_404_json(system):
    r = requests.get(system.url("/api/v1/nothing-here"), timeout=10)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["error"]["code"] == "not_found"


def test_wrong_method_is_405_json(system):
    r = requests.put(system.url("/api/v1/me"), timeout=10)
    assert r.status_code == 405
    assert r.json()["error"]["message"]


@pytest.mark.parametrize(
    "body, content_type, code",
    [
        (b"{not json", "application/json", "malformed_json"),
        (b'{"email": "a@b.org", "password": "x", "admin": true}', "application/json", "invalid_input"),
        (b'{"email": 5, "password": "x"}', "application/json", "invalid_input"),
        (b'["a list"]', "application/json", "invalid_input"),
        (b"email=a@b.org", "application/x-www-form-urlencoded", "unsupported_media_type"),
        (b'{"email": "\xff\xfe", "password": "x"}', "application/json", "malformed_json"),
    ],
)
def test_bad_login_bodies_are_400_with_reason(system, body, content_type, code):
    r = requests.post(system.url("/api/v1/sessions"), data=body, headers={"Content-Type": content_type}, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code


def test_huge_body_is_413(system):
    r = requests.post(
        system.url("/api/v1/sessions"), data=b'{"email": "' + b"a" * (2 * 1024 * 1024) + b'"}',
        headers={"Content-Type": "application/json"}, timeout=30,
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_unknown_query_parameter_is_400(system, operator):
    r = operator.get(system.url("/api/v1/me?debug=1"))
    assert r.status_code == 400
    assert "debug" in r.json()["error"]["details"]


def test_security_headers_on_every_response(system):
    for path in ("/healthz", "/api/v1/me", "/nothing"):
        r = requests.get(system.url(path), timeout=10)
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_openapi_document_is_valid_and_generated_from_routes(system):
    r = requests.get(system.url("/api/v1/openapi.json"), timeout=10)
    assert r.status_code == 200
    document = r.json()
    validate(document)
    assert "/api/v1/sessions" in document["paths"]
    login = document["paths"]["/api/v1/sessions"]["post"]
    schema_ref = login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[-1]]
    assert set(schema["properties"]) == {"email", "password"}
