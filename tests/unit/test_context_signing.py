"""The auth context's signature (weintervene.context_signing) and its check in the RPC entrypoint."""
from __future__ import annotations

import pytest

from weintervene.config import DEV_CONTEXT_SIGNING_KEY, DEV_CONTEXT_VERIFY_KEYS
from weintervene.context_signing import public_key_of, sign_context, verify_context
from weintervene.errors import Unauthorized

TEACHER = {"user_id": "u1", "tenant_id": "t1", "role": "teacher", "district_id": None, "session_id": "s",
           "email": "e@x.example", "display_name": "E"}


def test_the_dev_keys_are_a_pair():
    assert public_key_of(DEV_CONTEXT_SIGNING_KEY) == DEV_CONTEXT_VERIFY_KEYS


def test_a_signed_context_verifies_until_it_expires():
    signed = sign_context(TEACHER, lifetime=30, now=1_000_000)
    assert signed["signature"].startswith("dev-1.") and signed["expires_at"] == 1_000_031
    verify_context(signed, now=1_000_030)
    verify_context(signed, now=1_000_035)  # within the clock-skew allowance
    with pytest.raises(Unauthorized, match="expired"):
        verify_context(signed, now=1_000_040)


@pytest.mark.parametrize("change", [{"role": "operator"}, {"tenant_id": "t2"}, {"extra": 1}, {"expires_at": 2_000_000}])
def test_any_change_breaks_the_signature(change):
    signed = sign_context(TEACHER, lifetime=30, now=1_000_000)
    with pytest.raises(Unauthorized) as refused:
        verify_context({**signed, **change}, now=1_000_000)
    assert refused.value.code == "not_authenticated"


def test_keys_rotate_by_id():
    new_key = "k2:" + DEV_CONTEXT_SIGNING_KEY.partition(":")[2]  # (the same bytes: only the id matters here)
    signed = sign_context(TEACHER, lifetime=30, key_setting=new_key)
    with pytest.raises(Unauthorized, match="unknown key"):
        verify_context(signed)
    verify_context(signed, keys_setting=DEV_CONTEXT_VERIFY_KEYS + "," + public_key_of(new_key))


@pytest.mark.parametrize("context", [None, [], "x", {}, {**TEACHER, "signature": 5}, {**TEACHER, "signature": "dev-1.!!"}])
def test_what_is_not_a_signed_context_is_a_401(context):
    with pytest.raises(Unauthorized) as refused:
        verify_context(context)
    assert refused.value.code == "not_authenticated"
