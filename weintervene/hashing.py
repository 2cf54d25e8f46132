"""Keyed hashes: references to something deleted that cannot be turned back into its id.

A plain SHA-256 of a UUID or a roster key can be reversed by trying candidates
(anyone holding a list of ids can match them); an HMAC under the deployment's
``secret_key`` cannot, without the key. ``purpose`` separates uses, so the same
id hashes differently in different places and the hashes cannot be joined.

Example::

    >>> keyed_hash("identity-fence:student", "5d7c…")
    '3f1e…'   # 64 hex characters; the same input and key give the same value
"""
from __future__ import annotations

import hashlib
import hmac

from weintervene.config import settings


def keyed_hash(purpose: str, value: str) -> str:
    """HMAC-SHA256 of ``purpose:value`` under ``settings().secret_key``, as 64 hex characters."""
    key = settings().secret_key.encode()
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()
