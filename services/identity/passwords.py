"""Password hashing and policy (OWASP ASVS 5.0 V6).

argon2id with t=1, m=47104 KiB, p=1 (the OWASP minimum); hashes made with
weaker parameters are upgraded at the next successful sign-in. Length 8..128,
no composition rules, and none of the 30,000 most common passwords that the
zxcvbn package ships.

Example::

    >>> h = hash_password("correct horse battery staple")
    >>> verify_password(h, "correct horse battery staple")
    (True, False)            # (matches, needs_rehash)
    >>> check_policy("password1")
    WeakPassword: This password is among the most common passwords.
"""
from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from services.identity.exceptions import WeakPassword

MIN_LENGTH = 8
MAX_LENGTH = 128

HASHER = PasswordHasher(time_cost=1, memory_cost=47104, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)

# A real hash to verify against when the account does not exist, so the
# response time does not reveal which emails have accounts.
_DUMMY_HASH = HASHER.hash("not-a-real-password-only-for-timing")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


def check_policy(password: str, *, email: str = "", name: str = "") -> None:
    if not isinstance(password, str):
        raise WeakPassword("The password must be text.")
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"The password must have at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"The password must have at most {MAX_LENGTH} characters.")
    lowered = password.lower()
    if lowered in common_passwords():
        raise WeakPassword("This password is among the most common passwords; choose another.")
    local_part = email.split("@", 1)[0].lower()
    if local_part and len(local_part) >= 4 and lowered == local_part:
        raise WeakPassword("The password must not be your email address.")


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> tuple[bool, bool]:
    """(matches, needs_rehash). Always does the work of one verification."""
    try:
        HASHER.verify(password_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False, False
    if password_hash is None:
        return False, False
    return True, HASHER.check_needs_rehash(password_hash)
