"""Keyed hashes under a versioned keyring: references that cannot be turned back into an id.

A plain SHA-256 of a UUID or a roster key can be reversed by trying candidates
(anyone holding a list of ids can match them); an HMAC under the deployment's
``secret_key`` cannot, without the key. ``purpose`` separates uses, so the same
id hashes differently in different places and the hashes cannot be joined.

Keys are versioned so they can be rotated (``weintervene rotate-key``). Every value
records the id of the key it was made with, ``"<key id>:<64 hex>"``; the current key
(``secret_key``, id ``secret_key_id``) makes new values, and older keys
(``previous_secret_keys``) still verify and find what was made under them. A value
made before key ids existed (64 hex characters, no id) was made under key ``0``, the
single key of those days. A value naming a key the keyring does not hold is refused.

Example::

    >>> keyed_hash("identity-fence:student", "5d7c…")
    '2:3f1e…'   # key id, then 64 hex characters; the same input and key give the same value
    >>> keyed_hashes("identity-fence:student", "5d7c…")   # a lookup: one per known key
    ['2:3f1e…', '1:a94c…', '0:07bd…']
    >>> verify_keyed_hash("csrf", session_token, "1:a94c…")
    True
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Mapping

from weintervene.config import Settings, settings

LEGACY_KEY_ID = "0"
"""The id of the single key used before keys had ids (and the default id)."""

KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")

STORED_LENGTH = 16 + 1 + 64
"""The longest stored value: the longest key id, the colon, the digest (columns are 81 wide)."""


class KeyringError(ValueError):
    """The keyring settings cannot be read (a malformed or repeated key id)."""


@dataclass(frozen=True)
class Keyring:
    """The current key and every older key still accepted.

    Example: Keyring("2", {"2": b"new…", "1": b"old…"}).keyed_hash("csrf", "tok") -> "2:…"
    """

    current_id: str
    keys: Mapping[str, bytes]  # every key accepted, the current one included

    def _digest(self, key_id: str, purpose: str, value: str) -> str:
        return hmac.new(self.keys[key_id], f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def keyed_hash(self, purpose: str, value: str) -> str:
        """The value under the current key, with its id: what is stored or handed out now."""
        return f"{self.current_id}:{self._digest(self.current_id, purpose, value)}"

    def keyed_hashes(self, purpose: str, value: str) -> list[str]:
        """The value under every key (current first): a lookup of a stored reference tries them all."""
        ids = [self.current_id] + sorted((k for k in self.keys if k != self.current_id), reverse=True)
        return [f"{key_id}:{self._digest(key_id, purpose, value)}" for key_id in ids]

    def verify(self, purpose: str, value: str, stored: str) -> bool:
        """``stored`` is ``value``'s keyed hash under the key it names (False for an unknown key id)."""
        key_id, digest = split_stored(stored)
        if key_id not in self.keys or digest is None:
            return False
        return hmac.compare_digest(digest, self._digest(key_id, purpose, value))

    def next_key_id(self) -> str:
        """The id ``rotate-key`` gives a new key: one more than the largest numeric id."""
        numbers = [int(k) for k in self.keys if k.isdigit()]
        return str(max(numbers, default=0) + 1)


def split_stored(stored: str) -> tuple[str | None, str | None]:
    """``(key id, hex digest)`` of a stored value; a bare 64-hex value is the legacy key's.

    Example: split_stored("2:3f1e…") -> ("2", "3f1e…"); split_stored("3f1e…") -> ("0", "3f1e…")
    """
    stored = stored or ""
    key_id, sep, digest = stored.rpartition(":")
    if not sep:
        return (LEGACY_KEY_ID, stored) if _HEX.match(stored) else (None, None)
    if not KEY_ID.match(key_id) or not _HEX.match(digest):
        return None, None
    return key_id, digest


def key_id_of(stored: str) -> str | None:
    """The id of the key a stored value was made with (None when it is not a keyed hash)."""
    return split_stored(stored)[0]


def parse_previous_keys(raw: str) -> dict[str, bytes]:
    """``"1:key,0:key"`` -> ``{"1": b"key", "0": b"key"}`` (a key may itself hold colons).

    Example: parse_previous_keys("1:Zm9v") -> {"1": b"Zm9v"}
    """
    keys: dict[str, bytes] = {}
    for item in (part.strip() for part in (raw or "").split(",")):
        if not item:
            continue
        key_id, sep, key = item.partition(":")
        if not sep or not KEY_ID.match(key_id) or not key:
            raise KeyringError(
                "WEINTERVENE_PREVIOUS_SECRET_KEYS must be 'id:key' pairs separated by commas "
                f"(ids of 1-16 letters, digits, '-' or '_'); got an entry starting {item[:4]!r}")
        if key_id in keys:
            raise KeyringError(f"WEINTERVENE_PREVIOUS_SECRET_KEYS names key id {key_id!r} twice")
        keys[key_id] = key.encode()
    return keys


@functools.lru_cache(maxsize=16)
def _keyring(current_id: str, current_key: str, previous: str) -> Keyring:
    if not KEY_ID.match(current_id or ""):
        raise KeyringError(f"WEINTERVENE_SECRET_KEY_ID must be 1-16 letters, digits, '-' or '_'; got {current_id!r}")
    keys = parse_previous_keys(previous)
    if current_id in keys:
        raise KeyringError(f"WEINTERVENE_PREVIOUS_SECRET_KEYS repeats the current key id {current_id!r}")
    keys[current_id] = current_key.encode()
    return Keyring(current_id, keys)


def keyring_of(cfg: Settings) -> Keyring:
    """The keyring a settings object describes (cached: settings do not change while running)."""
    return _keyring(cfg.secret_key_id, cfg.secret_key, cfg.previous_secret_keys)


def keyring() -> Keyring:
    return keyring_of(settings())


def keyed_hash(purpose: str, value: str) -> str:
    """HMAC-SHA256 of ``purpose:value`` under the current key, as ``"<key id>:<64 hex>"``."""
    return keyring().keyed_hash(purpose, value)


def keyed_hashes(purpose: str, value: str) -> list[str]:
    """``value``'s keyed hash under every key still accepted: what a lookup matches stored values against."""
    return keyring().keyed_hashes(purpose, value)


def verify_keyed_hash(purpose: str, value: str, stored: str) -> bool:
    return keyring().verify(purpose, value, stored)


def new_secret() -> str:
    """A fresh key: 256 random bits, URL-safe base64 (no commas or colons, safe in the env list)."""
    return secrets.token_urlsafe(32)
