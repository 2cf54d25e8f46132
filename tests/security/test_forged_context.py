"""A caller on the broker cannot act as a user the gateway did not sign for (issue 16).

These tests talk to the services straight over AMQP with nameko's own ``ClusterRpcClient``
(no signing helper): what a process holding broker credentials could send. Each forged
context is refused 401 ``not_authenticated`` before the method runs; the same call with
the context as the gateway signs it is answered, so the refusals are the signature's.
"""
from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from nameko.standalone.rpc import ClusterRpcClient

from tests.support.infra import random_suffix
from tests.support.signing import signed
from weintervene.context_signing import sign_context
from weintervene.errors import Unauthorized

PASSWORD = "forged context passphrase 7"


def _other_key(key_id: str = "dev-1") -> str:
    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return f"{key_id}:{base64.urlsafe_b64encode(raw).decode('ascii')}"


@pytest.fixture(scope="module")
def rpc(system):
    with ClusterRpcClient(uri=system.settings.amqp_uri, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def teacher(rpc):
    """A teacher of a school of their own (identity's answer to login: unsigned, as the gateway gets it)."""
    suffix = random_suffix(6)
    operator_email = f"ops.{suffix}@forged.example"
    rpc.identity.bootstrap_user({"email": operator_email, "display_name": "Ops", "role": "operator",
                                 "tenant_id": None}, PASSWORD)
    operator = rpc.identity.login({"email": operator_email, "password": PASSWORD}, client_ip="forged")["user"]
    school = rpc.identity.create_tenant(signed(operator), {"kind": "school", "name": f"Forged School {suffix}"})
    email = f"teacher.{suffix}@forged.example"
    rpc.identity.bootstrap_user({"email": email, "display_name": "Teacher", "role": "teacher",
                                 "tenant_id": school["id"]}, PASSWORD)
    return rpc.identity.login({"email": email, "password": PASSWORD}, client_ip="forged")["user"]


def _refused(call, *args) -> str:
    with pytest.raises(Unauthorized) as refused:
        call(*args)
    assert refused.value.code == "not_authenticated"
    return str(refused.value)


def test_the_gateways_signature_is_answered(rpc, teacher):
    """The control: the same call, with the context as the gateway signs it, is served."""
    assert rpc.identity.list_students(signed(teacher), {})["items"] == []
    assert rpc.referrals.list_referrals(signed(teacher), {})["items"] == []


def test_an_unsigned_context_is_refused(rpc, teacher):
    assert "not signed" in _refused(rpc.identity.list_students, teacher, {})
    # Every service verifies, not only identity; referrals before it asks identity anything.
    assert "not signed" in _refused(rpc.referrals.list_referrals, teacher, {})
    assert "not signed" in _refused(rpc.directory.search, teacher, {"q": "food"})
    assert "not signed" in _refused(rpc.analytics.dashboard, teacher, {})
    assert "not signed" in _refused(rpc.retention.list_policies, teacher)


def test_an_altered_context_is_refused(rpc, teacher):
    """A teacher's real signature on a context whose role (or tenant) was changed afterwards."""
    genuine = signed(teacher)
    assert "not validly signed" in _refused(rpc.identity.list_students, {**genuine, "role": "school_admin"}, {})
    assert "not validly signed" in _refused(rpc.identity.list_students, {**genuine, "tenant_id": "t-other"}, {})
    # A later expiry, to make a captured context last, is an alteration too.
    assert "not validly signed" in _refused(rpc.identity.list_students,
                                            {**genuine, "expires_at": genuine["expires_at"] + 3600}, {})


def test_an_expired_context_is_refused(rpc, teacher):
    """Signed with the right key, but for a request that ended a minute ago (past the clock-skew allowance)."""
    stale = signed(teacher, lifetime=-60)
    assert stale["expires_at"] < time.time()
    assert "expired" in _refused(rpc.identity.list_students, stale, {})


def test_a_context_signed_with_another_key_is_refused(rpc, teacher):
    """Under the real key's id (a key of one's own cannot pass for the gateway's) or an unknown id."""
    forged = sign_context(teacher, lifetime=30, key_setting=_other_key("dev-1"))
    assert "not validly signed" in _refused(rpc.identity.list_students, forged, {})
    unknown = sign_context(teacher, lifetime=30, key_setting=_other_key("mine"))
    assert "unknown key" in _refused(rpc.identity.list_students, unknown, {})


def test_a_forged_context_inside_share_contexts_is_refused(rpc, teacher):
    """identity's batch RPC carries contexts inside its argument: each is verified too."""
    request = {"student_id": "00000000-0000-0000-0000-000000000000", "contact_ids": [], "tenant_ids": []}
    answers = rpc.identity.share_contexts([{**request, "auth": signed(teacher)}])
    assert answers[0]["error"]["exc_type"] == "StudentNotFound"  # read: the signature held
    _refused(rpc.identity.share_contexts, [{**request, "auth": signed(teacher)}, {**request, "auth": teacher}])
    _refused(rpc.identity.share_contexts, [{**request, "auth": {**signed(teacher), "role": "school_admin"}}])
