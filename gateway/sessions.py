"""The gateway's short memory of session checks, and how it forgets.

Every authenticated request needs identity to say who holds the token. Asking on
each request cost a whole RPC (about a quarter of a share's CPU on the machine):
identity's worker, the broker twice, the gateway's reply handling. A web page makes
several requests within a second or two, and a teacher's next click comes soon after.

So each gateway process remembers identity's answer for ``gateway_session_cache_seconds``
(15 s by default; 0 turns the cache off), keyed by a hash of the token, never the token.
What makes that safe is forgetting at once when a session ends:

- identity stages ``sessions_ended`` in its outbox with every revocation (sign-out,
  password change or reset, a user disabled or given another role, a tenant
  terminated, a deletion request), and the commit wakes its relay;
- each gateway process has its own broadcast queue for that event and drops the
  sessions, users or tenants it names;
- the gateway that carries out a sign-out, a password change or a user change
  drops the entries itself before it answers, so the very next request on that
  gateway is checked against identity whatever the broker does.

A gateway that was disconnected from the broker while an event went out (its
broadcast queue is exclusive and goes with the connection) keeps an entry at most
the cache's lifetime: that is the worst case, and why the lifetime is short.
No entry outlives the session's own idle or absolute end (identity answers with
``session_valid_until``), so timeouts are exactly identity's.

Example::

    cache = SessionCacheStore(ttl=15)
    cache.put(token, auth, 1800)      # after identity.authenticate(token)
    cache.get(token)                  # -> auth, for 15 s
    cache.forget(user_ids=[auth.user_id])
    cache.get(token)                  # -> None: ask identity again
"""
from __future__ import annotations

import hashlib
import time

from cachetools import TLRUCache
from nameko.extensions import DependencyProvider

from weintervene.auth import AuthContext
from weintervene.config import settings

MAX_ENTRIES = 50_000


def _key(token: str) -> str:
    # A memory dump of the gateway shows no usable token.
    return hashlib.sha256(token.encode()).hexdigest()


class SessionCacheStore:
    """Token hash -> AuthContext, each for ``ttl`` seconds, forgettable by session, user or tenant."""

    def __init__(self, ttl, maxsize: int = MAX_ENTRIES, clock=time.monotonic):
        # ``ttl``: seconds, or a callable giving them (the setting, read at each use, so a
        # changed setting applies without a restart).
        self._ttl = ttl if callable(ttl) else (lambda: ttl)
        # Bumped by every forget: an answer identity gave before a revocation that was
        # forgotten while that answer travelled must not be remembered (see ``put``).
        self.epoch = 0
        # Each entry is (auth, seconds the session itself has left): never kept past either.
        self._entries: TLRUCache = TLRUCache(maxsize=maxsize, timer=clock,
                                             ttu=lambda _k, entry, now: now + min(self._ttl(), entry[1]))

    @property
    def enabled(self) -> bool:
        return self._ttl() > 0

    def get(self, token: str) -> AuthContext | None:
        if not self.enabled:
            return None
        entry = self._entries.get(_key(token))
        return entry[0] if entry is not None else None

    def put(self, token: str, auth: AuthContext, session_seconds_left: float = float("inf"),
            asked_at_epoch: int | None = None) -> None:
        """Remember ``auth`` for the cache's lifetime, or until the session would end
        unused (identity's ``session_valid_until``), whichever is sooner.

        ``asked_at_epoch``: :attr:`epoch` when identity was asked. If anything was forgotten
        since, the answer may predate that revocation, so it serves its one request only.
        """
        if asked_at_epoch is not None and asked_at_epoch != self.epoch:
            return
        if self.enabled and session_seconds_left > 0:
            self._entries[_key(token)] = (auth, session_seconds_left)

    def forget_token(self, token: str) -> None:
        self.epoch += 1
        self._entries.pop(_key(token), None)

    def forget(self, session_ids=(), user_ids=(), tenant_ids=()) -> int:
        """Drop every entry of the sessions, users or tenants named; returns how many went.

        A scan, not an index: revocations are rare next to requests, and the cache
        holds only the sessions active in the last few seconds.
        """
        self.epoch += 1
        sessions, users, tenants = ({str(i) for i in ids} for ids in (session_ids, user_ids, tenant_ids))
        gone = [key for key, (auth, _left) in list(self._entries.items())
                if auth.session_id in sessions or auth.user_id in users or auth.tenant_id in tenants]
        for key in gone:
            self._entries.pop(key, None)
        return len(gone)

    def __len__(self) -> int:
        return len(self._entries)


class SessionCache(DependencyProvider):
    """One :class:`SessionCacheStore` per gateway container, shared by its workers."""

    def setup(self):
        self.store = SessionCacheStore(ttl=lambda: settings().gateway_session_cache_seconds)

    def get_dependency(self, worker_ctx):
        return self.store
