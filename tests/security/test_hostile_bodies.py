"""Hostile JSON bodies are 400 with a reason, never a 500 (issue 16).

Each body goes, through the real gateway, to an endpoint that parses JSON before anyone
is signed in (``POST /api/v1/sessions``), to one whose body the service loads
(``POST /api/v1/referrals``, a teacher) and to the directory's own body parse
(``PATCH /api/v1/directory/services/{id}``). Before ``weintervene.bounded_json``: deep
nesting was a ``RecursionError`` and 100,000 digits a ``ValueError`` (both 500),
``NaN``/``1e999`` went on to the services as non-finite floats, a duplicate key was
silently the last one.
"""
from __future__ import annotations

import uuid

import pytest

from tests.support.world import build_world

DEEP = "[" * 100_000 + "]" * 100_000
BODIES = {
    "deep_past_the_recursion_limit": ('{"email": %s, "password": "x"}' % DEEP, "nested"),
    "deep_past_the_cap": ('{"email": %s, "password": "x"}' % ("[" * 40 + "]" * 40), "nested"),
    "digits_100000": ('{"email": %s, "password": "x"}' % ("7" * 100_000), "number"),
    "integer_past_64_bits": ('{"email": 18446744073709551616, "password": "x"}', "64 bits"),
    "float_100000_digits": ('{"email": 0.%s, "password": "x"}' % ("1" * 100_000), "number"),
    "infinite_float": ('{"email": 1e999, "password": "x"}', "too large"),
    "nan": ('{"email": NaN, "password": "x"}', "NaN"),
    "infinity": ('{"email": -Infinity, "password": "x"}', "Infinity"),
    "duplicate_key": ('{"email": "a@b.example", "email": "c@d.example", "password": "x"}', "twice"),
    "lone_surrogate": ('{"email": "\\ud800@b.example", "password": "x"}', "surrogate"),
    "not_utf8": (b'{"email": "\xff", "password": "x"}', "not valid JSON"),
}


@pytest.fixture(scope="module")
def world(system):
    return build_world(system)


def _targets(world, system):
    return {
        "sessions": (system.client(), "POST", system.url("/api/v1/sessions")),
        "referrals": (world.http("teacher"), "POST", system.url("/api/v1/referrals")),
        "directory": (world.http("operator"), "PATCH", system.url(f"/api/v1/directory/services/{uuid.uuid4()}")),
    }


@pytest.mark.parametrize("target", ["sessions", "referrals", "directory"])
@pytest.mark.parametrize("name", sorted(BODIES))
def test_hostile_body_is_400_with_its_reason(world, system, target, name):
    body, reason = BODIES[name]
    client, method, url = _targets(world, system)[target]
    data = body if isinstance(body, bytes) else body.encode("utf-8")
    r = client.request(method, url, data=data, headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 400, f"{name} at {target}: {r.status_code} {r.text[:300]}"
    error = r.json()["error"]
    assert error["code"] == "malformed_json" and reason in error["message"], error
    assert len(r.content) < 1000  # the reason, not the body echoed back


def test_ordinary_bodies_still_pass(world, system):
    r = system.client().post(system.url("/api/v1/sessions"),
                             json={"email": world.email("teacher"), "password": "world-passphrase-2026"}, timeout=30)
    assert r.status_code == 201, r.text
    r = system.client().post(system.url("/api/v1/sessions"), data=b'{"email": "a@b.example", "password": -1.5e3}',
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"  # parsed; the schema refused


def test_an_oversized_form_to_the_sms_callback_is_a_4xx(system):
    """The webhook is form-encoded: a form past 64 kB is 413 before it is read; 5,000 parts
    (werkzeug's form limits) a 4xx. Before, the whole 2 MB form was read, then refused 403."""
    body = b"MessageSid=SM1&MessageStatus=delivered&Padding=" + b"x" * (2 * 1024 * 1024)
    r = system.client().post(system.url("/api/v1/deliveries/sms-status"), data=body,
                             headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=60)
    assert r.status_code == 413, r.text
    parts = "&".join(f"k{n}=v" for n in range(5000)).encode()
    r = system.client().post(system.url("/api/v1/deliveries/sms-status"), data=parts,
                             headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=60)
    assert 400 <= r.status_code < 500, r.text
