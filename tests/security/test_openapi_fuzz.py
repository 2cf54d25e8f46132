"""Schemathesis against the gateway's OpenAPI document, as a teacher and as a school admin:
no request the document allows may answer 5xx, and every answer must match what the
document says of it (status code, content type, headers, body shape).

The document is the one the gateway serves (``gateway.openapi.openapi_document``, generated
from the ``@route`` declarations), loaded at import so that every operation is a pytest item
of its own: ``test_as_teacher[GET /api/v1/students]``.

Checks: schemathesis's defaults (``not_a_server_error``, ``status_code_conformance``,
``content_type_conformance``, ``response_headers_conformance``, ``response_schema_conformance``,
``negative_data_rejection``, ...) but ``positive_data_acceptance``: that one expects every
schema-valid request to succeed, and many cannot by design (a wrong current password, an
expired reset token, ``outcome`` required when ``status`` is ``completed``, a ZIP code that is
well formed but unknown): those answer a documented 4xx with a reason, which the status code
and schema checks still hold to the document.

Excluded from the two role runs, and covered by a test of its own below:
``DELETE /api/v1/sessions/current`` (sign-out) would end the session the rest of the run uses.

Example: ``pytest tests/security/test_openapi_fuzz.py -q`` -> 2 x (operations - 1) + 1 items.
"""
from __future__ import annotations

import os

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import gateway.service  # noqa: F401 - registers every route before the document is made
from gateway.openapi import openapi_document
from tests.support.world import PASSWORD

CONFIG = schemathesis.Config.from_dict({
    "checks": {
        "positive_data_acceptance": {"enabled": False},
        # A request refused for an address longer than the web server reads (414, before the
        # gateway sees it) is refused too: schemathesis's list, plus 414.
        "negative_data_rejection": {"expected-statuses": [
            "400", "401", "403", "404", "405", "406", "409", "414", "415", "422", "428", "429", "5xx"]},
    },
    # The coverage phase builds its cases when pytest collects them, before the world and its
    # sessions exist, so they would all go unauthenticated (401) and test nothing else; the
    # fuzzing phase builds each case when it runs, with the caller's session.
    "phases": {"coverage": {"enabled": False}},
})
DOCUMENT = openapi_document()


@schemathesis.serializer("application/zip")
def zip_body(ctx, value) -> bytes:
    """A package upload (OneRoster) as the fuzzer made it: bytes as they are, anything else as
    its text. Such a body is no zip at all, and must be refused with a 4xx and a reason."""
    return value if isinstance(value, bytes) else str(value).encode()
SIGN_OUT = {"method": "DELETE", "path": "/api/v1/sessions/current"}

# Bounded for CI on 2 cores (the whole file in under 3 minutes, measured in docs/SECURITY.md):
# a few examples per operation and role; WEINTERVENE_FUZZ_EXAMPLES=25 digs deeper by hand. No
# per-example deadline (the first call of an operation warms caches); pytest's timeout still
# ends a hung call.
FUZZ_EXAMPLES = int(os.environ.get("WEINTERVENE_FUZZ_EXAMPLES", "6"))
FUZZ_SETTINGS = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

# The session each schema's auth provider sends, by user: filled by ``sessions`` below.
# (Schemathesis makes the provider itself, without arguments, and never sees pytest's fixtures.)
SESSIONS: dict[str, str] = {}


def bearer_schema(user: str, sign_in=None):
    """The document, every request signed in as ``user`` through schemathesis's auth provider
    (so its ``ignored_auth`` check also knows what the credentials are, and probes each
    operation without them and with invalid ones: 401 expected). With ``sign_in``, every case
    gets a session of its own from ``sign_in()`` (no caching)."""
    loaded = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)

    @loaded.auth(refresh_interval=None)  # a look-up, or a new session each case for sign-out
    class Bearer:
        def get(self, case, ctx):
            if user not in SESSIONS:
                return None  # not signed in yet: pytest is still collecting
            return sign_in() if sign_in else SESSIONS[user]

        def set(self, case, token, ctx):
            # The bearer wins over the cookie at the gateway, so CSRF (cookie sessions only) does not apply.
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    return loaded


def sign_in_teacher() -> str:
    """A new session of the teacher's (``SESSIONS`` holds where and as whom)."""
    signed_in = requests.post(SESSIONS["sessions_url"], timeout=30,
                              json={"email": SESSIONS["teacher_email"], "password": PASSWORD})
    assert signed_in.status_code == 201, signed_in.text
    return signed_in.json()["token"]


teacher = bearer_schema("teacher").exclude(**SIGN_OUT)
school_admin = bearer_schema("school_admin").exclude(**SIGN_OUT)
sign_out = bearer_schema("teacher", sign_in=sign_in_teacher).include(**SIGN_OUT)


@pytest.fixture(scope="module", autouse=True)
def sessions(system, fuzz_world):
    SESSIONS.update({user: fuzz_world.token(user) for user in ("teacher", "school_admin")})
    SESSIONS.update(sessions_url=system.url("/api/v1/sessions"), teacher_email=fuzz_world.world.email("teacher"))
    yield
    SESSIONS.clear()


def session_still_valid(ctx, response, case):
    """The fuzzing session must outlive every call: an operation that ended it (other than
    sign-out) would make every later answer a 401 that the document allows, and pass blind."""
    sent = (case.headers or {}).get("Authorization", "")
    ours = sent.removeprefix("Bearer ") in SESSIONS.values()  # not a negative case's own header
    if ours and response.status_code == 401 and b'"session_expired"' in response.content:
        raise AssertionError(f"{case.operation.label} ended the caller's session")
    return None


def aim_at_known_records(case, data, fuzz_world) -> None:
    """Random UUIDs reach only the 404 branch: aim valid path ids at records that exist too
    (the caller's own, its school's, another school's, another tenant's). Negative cases keep
    their invalid ids: those are what they test."""
    if case.meta is not None and case.meta.generation.mode.is_positive:
        for name, value in list((case.path_parameters or {}).items()):
            known = fuzz_world.known_ids.get(name)
            if known:
                case.path_parameters[name] = data.draw(st.sampled_from([value, *known]), label=name)


@pytest.mark.integration
@teacher.parametrize()
@teacher.given(data=st.data())
@FUZZ_SETTINGS
def test_as_teacher(case, data, system, fuzz_world):
    aim_at_known_records(case, data, fuzz_world)
    case.call_and_validate(base_url=system.base_url, timeout=30, additional_checks=[session_still_valid])


@pytest.mark.integration
@school_admin.parametrize()
@school_admin.given(data=st.data())
@FUZZ_SETTINGS
def test_as_school_admin(case, data, system, fuzz_world):
    aim_at_known_records(case, data, fuzz_world)
    case.call_and_validate(base_url=system.base_url, timeout=30, additional_checks=[session_still_valid])


@pytest.mark.integration
@sign_out.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
def test_sign_out_with_a_session_of_its_own(case, system):
    """Sign-out, fuzzed like the rest, each example with a fresh session of the teacher's."""
    response = case.call_and_validate(base_url=system.base_url, timeout=30)
    if response.status_code == 200:
        again = requests.get(system.url("/api/v1/me"), headers={"Authorization": case.headers["Authorization"]},
                             timeout=30)
        assert again.status_code == 401, "the session outlived its sign-out"
