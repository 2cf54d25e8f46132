"""The caller's auth context, signed by the gateway and verified by every service.

Without a signature, anything that could publish on the broker could call any service
as any user: an RPC's first argument ``auth`` was a plain dict nobody could check. Now:

- The gateway (and the operator CLI, which signs in with a user's password like the web
  app) signs the context it forwards: an ``expires_at`` (Unix seconds: the request's
  own timeout from now) is added, and ``signature`` = ``"<key id>.<Ed25519 signature>"``
  over the canonical JSON of every other key. Ed25519, not an HMAC: services hold only
  the public keys, so a compromised service cannot mint a context for anyone.
- Every service's RPC entrypoint (:mod:`weintervene.entrypoints`) verifies it before
  the method runs, for a method whose first parameter is ``auth`` and for contexts
  carried inside arguments (identity's ``share_contexts``). Unsigned, altered, expired,
  or signed by a key not listed: 401 ``not_authenticated`` through the one error table.
- A service calling another on the user's behalf forwards the context unchanged
  (:class:`~weintervene.auth.AuthContext` keeps the two keys through ``from_dict`` /
  ``to_dict``).
- The key id lets keys rotate: list the new public key next to the old one in
  ``context_verify_keys`` everywhere, then give the gateway the new private key, then
  (after one request lifetime) drop the old public key.

Example::

    >>> signed = sign_context({"user_id": "u1", "tenant_id": "t1", "role": "teacher"}, lifetime=30)
    >>> verify_context(signed)          # passes: signed moments ago with the dev key
    >>> verify_context({**signed, "role": "operator"})
    Traceback (most recent call last):
    weintervene.errors.Unauthorized: The caller's context is not validly signed.
"""
from __future__ import annotations

import base64
import binascii
import functools
import json
import time
from typing import Iterable, Mapping

from cachetools import TTLCache
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from weintervene.config import settings
from weintervene.errors import Unauthorized

SIGNATURE_KEY = "signature"
EXPIRY_KEY = "expires_at"
# What is signed is this prefix and the canonical JSON: a signature made for a context can
# never be passed off as one over some other message the same key might sign one day.
DOMAIN = b"weintervene.auth-context.v1\n"


# (verify keys, signature, signed bytes) of contexts verified lately: one request's context is
# verified again by the same process for each call it makes there (directory's get_service per
# service of a share; every service of the all-in-one process), and an Ed25519 verification
# costs ~0.1-0.6 ms of CPU. The exact bytes are the key, so nothing altered is ever let through,
# and the expiry is still checked on every call; entries outlive no request.
_VERIFIED: TTLCache = TTLCache(maxsize=4096, ttl=60)


class KeyFormatError(ValueError):
    """A signing or verify key setting that is not ``<key id>:<urlsafe base64 of 32 bytes>``."""


def _raw_key(entry: str, what: str) -> tuple[str, bytes]:
    key_id, sep, encoded = entry.strip().partition(":")
    if not sep or not key_id or "." in key_id or "," in key_id:
        raise KeyFormatError(f"{what}: expected '<key id>:<base64>' with a key id free of '.' and ','")
    try:
        raw = base64.urlsafe_b64decode(encoded.strip())
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"{what} {key_id}: not base64") from None
    if len(raw) != 32:
        raise KeyFormatError(f"{what} {key_id}: an Ed25519 key is 32 bytes, this is {len(raw)}")
    return key_id, raw


@functools.lru_cache(maxsize=8)
def signing_key(setting: str) -> tuple[str, Ed25519PrivateKey]:
    """(key id, private key) of a ``context_signing_key`` value, parsed once per value."""
    key_id, raw = _raw_key(setting, "context_signing_key")
    return key_id, Ed25519PrivateKey.from_private_bytes(raw)


@functools.lru_cache(maxsize=8)
def verify_keys(setting: str) -> Mapping[str, Ed25519PublicKey]:
    """{key id: public key} of a ``context_verify_keys`` value, parsed once per value."""
    keys = {}
    for entry in setting.split(","):
        if entry.strip():
            key_id, raw = _raw_key(entry, "context_verify_keys")
            keys[key_id] = Ed25519PublicKey.from_public_bytes(raw)
    return keys


def public_key_of(signing_setting: str) -> str:
    """The ``context_verify_keys`` entry that verifies what ``signing_setting`` signs.

    Example: public_key_of("k2:<private>") -> "k2:<public>"
    """
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key_id, key = signing_key(signing_setting)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return f"{key_id}:{base64.urlsafe_b64encode(raw).decode('ascii')}"


def canonical(payload: Mapping) -> bytes:
    """The bytes signed: sorted keys, no spaces, ASCII only (the same on every side of a JSON round trip)."""
    return DOMAIN + json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign_context(context: Mapping, lifetime: float, key_setting: str | None = None, now: float | None = None) -> dict:
    """``context`` (a plain context dict) plus ``expires_at`` and ``signature``.

    Example: sign_context(auth.to_dict(), lifetime=30) -> {..., "expires_at": 1796440230,
    "signature": "dev-1.mWq…"}
    """
    key_id, key = signing_key(key_setting or settings().context_signing_key)
    payload = {k: v for k, v in context.items() if k not in (SIGNATURE_KEY, EXPIRY_KEY)}
    payload[EXPIRY_KEY] = int((time.time() if now is None else now) + lifetime) + 1
    signature = base64.urlsafe_b64encode(key.sign(canonical(payload))).decode("ascii").rstrip("=")
    payload[SIGNATURE_KEY] = f"{key_id}.{signature}"
    return payload


def verify_context(context, keys_setting: str | None = None, now: float | None = None) -> None:
    """Refuse (401 ``not_authenticated``) a context that is not signed by a listed key, was
    altered after signing, or has expired; return None otherwise.

    Example: verify_context(request_args[0])   # in the RPC entrypoint, before the method runs
    """
    if not isinstance(context, dict):
        raise Unauthorized("Not signed in.", code="not_authenticated")
    signature = context.get(SIGNATURE_KEY)
    if not isinstance(signature, str) or "." not in signature:
        raise Unauthorized("The caller's context is not signed.", code="not_authenticated")
    current = settings()
    key_id, _, encoded = signature.partition(".")
    key = verify_keys(keys_setting or current.context_verify_keys).get(key_id)
    if key is None:
        raise Unauthorized("The caller's context is signed with an unknown key.", code="not_authenticated")
    try:
        signed_bytes = canonical({k: v for k, v in context.items() if k != SIGNATURE_KEY})
    except (TypeError, ValueError):
        raise Unauthorized("The caller's context is not validly signed.", code="not_authenticated") from None
    remembered = (keys_setting or current.context_verify_keys, signature, signed_bytes)
    if remembered not in _VERIFIED:
        try:
            key.verify(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)), signed_bytes)
        except (InvalidSignature, binascii.Error, ValueError, TypeError):
            raise Unauthorized("The caller's context is not validly signed.", code="not_authenticated") from None
        _VERIFIED[remembered] = True
    expires_at = context.get(EXPIRY_KEY)
    if isinstance(expires_at, bool) or not isinstance(expires_at, int):
        raise Unauthorized("The caller's context has no expiry.", code="not_authenticated")
    if expires_at + current.context_clock_skew_seconds < (time.time() if now is None else now):
        raise Unauthorized("The caller's context has expired.", code="not_authenticated")


def verify_contexts(contexts: Iterable) -> None:
    """:func:`verify_context` for each; None entries (anonymous callers) pass."""
    for context in contexts:
        if context is not None:
            verify_context(context)
