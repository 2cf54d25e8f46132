"""Password policy and hashing (no broker, no other service)."""
import pytest
from argon2 import PasswordHasher

from services.identity.exceptions import WeakPassword
from services.identity.passwords import HASHER, check_policy, hash_password, verify_password


def test_hash_is_argon2id_with_owasp_parameters():
    h = hash_password("a fine long passphrase")
    assert h.startswith("$argon2id$")
    assert "m=47104,t=1,p=1" in h


def test_verify_right_and_wrong():
    h = hash_password("a fine long passphrase")
    assert verify_password(h, "a fine long passphrase") == (True, False)
    assert verify_password(h, "a fine long passphrasE") == (False, False)
    assert verify_password(None, "anything at all") == (False, False)


def test_weaker_hash_needs_rehash():
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("a fine long passphrase")
    assert verify_password(weak, "a fine long passphrase") == (True, True)
    assert HASHER.check_needs_rehash(weak)


@pytest.mark.parametrize("password", ["short", "x" * 129, "password1", "iloveyou", "Qwertyuiop"])
def test_policy_rejects(password):
    with pytest.raises(WeakPassword):
        check_policy(password)


@pytest.mark.parametrize("password", ["correct horse battery", "ñandú-por-la-pampa", "x" * 128, "8 chars!"])
def test_policy_accepts_without_composition_rules(password):
    check_policy(password)
