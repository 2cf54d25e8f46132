"""Secrets stored encrypted under the versioned keyring (the keys of ``weintervene.hashing``).

A tenant's single sign-on client secret must be readable by identity (it is sent to the
provider's token endpoint) but by nobody holding only a database dump or an export. It is
stored sealed: AES-256-GCM under a key derived (HKDF-SHA256) from the deployment's
``secret_key`` and a ``purpose``, as ``"<key id>:<base64url(nonce | ciphertext | tag)>"``.
The purpose is the associated data too, so a value sealed for one use cannot be passed off
as another's. Like keyed hashes, a sealed value names the key it was made with: the current
key seals, older keys (``previous_secret_keys``) still open, and ``weintervene rotate-key``
re-seals what the services declare (identity's ``rekeying``).

Example::

    >>> sealed = seal("sso-client-secret", "s3cr3t")
    >>> sealed.split(":")[0]        # the current key id
    '2'
    >>> unseal("sso-client-secret", sealed)
    's3cr3t'
"""
from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from weintervene.hashing import KEY_ID, Keyring, keyring

NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value that cannot be opened: malformed, made under a key no longer held, or altered."""


def _key(ring: Keyring, key_id: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"weintervene-seal:{purpose}".encode()).derive(ring.keys[key_id])


def seal(purpose: str, plaintext: str, ring: Keyring | None = None) -> str:
    """``plaintext`` encrypted under the current key, with that key's id in front."""
    ring = ring or keyring()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(_key(ring, ring.current_id, purpose)).encrypt(nonce, plaintext.encode(), purpose.encode())
    return f"{ring.current_id}:{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"


def sealed_key_id(sealed: str) -> str | None:
    """The id of the key a sealed value was made with (None when it is not one)."""
    key_id, sep, _body = (sealed or "").partition(":")
    return key_id if sep and KEY_ID.match(key_id) else None


def unseal(purpose: str, sealed: str, ring: Keyring | None = None) -> str:
    """The plaintext of ``sealed``; SealError when it cannot be opened."""
    ring = ring or keyring()
    key_id = sealed_key_id(sealed)
    if key_id is None or key_id not in ring.keys:
        raise SealError(f"sealed with a key this deployment does not hold ({key_id!r})")
    try:
        raw = base64.urlsafe_b64decode(sealed.partition(":")[2].encode("ascii"))
        opened = AESGCM(_key(ring, key_id, purpose)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode())
    except (InvalidTag, ValueError) as exc:
        raise SealError("the sealed value was altered or is malformed") from exc
    return opened.decode()


def reseal(purpose: str, sealed: str, ring: Keyring | None = None) -> str:
    """``sealed`` opened with the key it names and sealed again under the current key."""
    return seal(purpose, unseal(purpose, sealed, ring), ring)
