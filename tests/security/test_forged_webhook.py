"""The SMS provider's status callback, attacked through the gateway of the running system.

A forged callback (a wrong signature, none, or one signed with the token published in this
repository) is refused with 403 and changes nothing; a genuine one replayed changes nothing
and is answered exactly as the first time.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcClient
from sqlalchemy import create_engine, text

from tests.support.referrals_system import service_input
from tests.support.world import build_world
from weintervene.config import DEFAULT_SMS_TOKEN

CALLBACK = "/api/v1/deliveries/sms-status"


def provider_signature(url: str, params: dict, token: str) -> str:
    """Twilio's request signature, computed here independently of the service's code."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def world(system):
    return build_world(system)


@pytest.fixture(scope="module")
def sent_sms(system, world, sms_endpoint):
    """A share by SMS to Ana's mother, sent: (the teacher's session, referral id, provider message id)."""
    with ClusterRpcClient(uri=system.settings.amqp_uri, timeout=30) as rpc:
        term = rpc.directory.categories()[0]["children"][0]["id"]
    name = f"Webhook Tutoring {world.suffix}"
    r = world.http("operator").post(system.url("/api/v1/directory/services"), json=service_input(name, term), timeout=30)
    assert r.status_code == 201, r.text
    teacher = world.http("teacher")
    r = teacher.post(system.url("/api/v1/referrals"), json={
        "student_id": world.students["A"], "contact_ids": [world.contacts["Maria"]],
        "service_ids": [r.json()["id"]], "channel": "sms"}, timeout=30)
    assert r.status_code == 201, r.text
    referral_id = r.json()["items"][0]["id"]
    message = wait_until(lambda: next((m for m in sms_endpoint.messages() if name in m["form"]["Body"]), None))
    assert message["form"]["StatusCallback"] == system.url(CALLBACK)
    wait_until(lambda: delivery_state(system, teacher, referral_id) == "sent")
    return teacher, referral_id, message["sid"]


def delivery_state(system, teacher, referral_id) -> str:
    r = teacher.get(system.url(f"/api/v1/referrals/{referral_id}"), timeout=30)
    assert r.status_code == 200, r.text
    [delivery] = r.json()["deliveries"]
    return delivery["state"]


def post_callback(system, params, signature):
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    return requests.post(system.url(CALLBACK), data=params, headers=headers, timeout=30)


def test_a_forged_callback_is_refused_and_changes_nothing(system, sent_sms):
    teacher, referral_id, sid = sent_sms
    params = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003", "AccountSid": "AC-demo"}
    url = system.url(CALLBACK)
    for signature in (None, "forged", provider_signature(url, params, "a guessed token"),
                      # The token published in this repository's defaults signs nothing.
                      provider_signature(url, params, DEFAULT_SMS_TOKEN)):
        r = post_callback(system, params, signature)
        assert r.status_code == 403, (signature, r.status_code, r.text)
        assert r.json()["error"]["code"] == "bad_signature"
    assert delivery_state(system, teacher, referral_id) == "sent"


def test_a_genuine_callback_replayed_changes_nothing_and_answers_the_same(system, sent_sms):
    teacher, referral_id, sid = sent_sms
    params = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": "AC-demo"}
    signature = provider_signature(system.url(CALLBACK), params, system.settings.sms_token)
    first = post_callback(system, params, signature)
    assert first.status_code == 204, first.text
    assert delivery_state(system, teacher, referral_id) == "delivered"
    replayed = post_callback(system, params, signature)
    assert (replayed.status_code, replayed.content) == (first.status_code, first.content)
    assert delivery_state(system, teacher, referral_id) == "delivered"
    # Behind the gateway, the service answers the replay with the first answer, not "nothing changed".
    with ClusterRpcClient(uri=system.settings.amqp_uri, timeout=30) as rpc:
        assert rpc.referrals.sms_status(params, signature) == {"updated": True}
    # What recognises it is the hash of the signature alone: not the message id, nor the mobile.
    engine = create_engine(system.settings.database_url("referrals"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM sms_callback_seen WHERE signature_hash = :h"),
                                {"h": hashlib.sha256(signature.encode()).hexdigest()}).all()
    finally:
        engine.dispose()
    assert len(rows) == 1 and sid not in repr(rows[0]) and "2025550101" not in repr(rows[0])
