"""Directory service details, cached for a few seconds per viewer.

Every share needs the public facts of the services shared (name, address, phone,
hours, eligibility, taxonomy terms, owner). Asking directory's ``get_service``
each time costs an RPC round trip and about a dozen SQL queries in directory,
for data that changes a few times a year and is public. So referrals keeps each
answer for ``directory_cache_seconds`` (default 30 s).

Why a short TTL is sound here:

* the data is the directory's public information, never student data;
* visibility is decided by directory for one *viewer* (tenant, district, role)
  and an answer is only reused for that same viewer, so a tenant-owned service
  never reaches another tenant through the cache;
* a refusal (``service_not_found``) is never cached, so a service created a
  moment ago can be shared at once;
* the worst a stale entry does is print an edit up to ``ttl`` seconds late, or
  let a service whose owner stopped publishing it be shared for up to ``ttl``
  seconds more — the same window a user's open search page already has.

A version check (ask directory for ``last_modified`` first) would cost the
round trip this cache exists to save. The snapshot that a referral keeps
(``service_facts``) carries what was printed, so a share is never ambiguous.

Example::

    >>> lookups = ServiceLookups(ServiceDetailsCache(ttl=30))
    >>> [resolve(s) for s in lookups.get_many(directory_rpc, auth, ["5f0e…"])]   # asks directory
    [{"id": "5f0e…", "name": "Casa Azul Counseling", …}]
    >>> lookups.get_many(directory_rpc, auth, ["5f0e…"])   # the same viewer within 30 s: no RPC
    [{"id": "5f0e…", "name": "Casa Azul Counseling", …}]
"""
from __future__ import annotations

import time

from cachetools import TTLCache
from nameko.extensions import DependencyProvider

TTL_SECONDS = 30.0
MAX_ENTRIES = 20_000


def viewer_key(auth: dict | None) -> tuple:
    """Everything directory's visibility rule can depend on; never the user."""
    auth = auth or {}
    return (auth.get("tenant_id"), auth.get("district_id"), auth.get("role"))


class ServiceDetailsCache:
    """``(viewer, service_id) -> service dict``, each kept ``ttl`` seconds, at most
    ``max_entries`` of them (least recently used dropped first): a ``cachetools.TTLCache``."""

    def __init__(self, ttl: float, max_entries: int = MAX_ENTRIES, clock=time.monotonic):
        self.ttl = ttl
        self.entries = TTLCache(maxsize=max_entries, ttl=ttl, timer=clock) if ttl > 0 else None

    def get(self, auth: dict | None, service_id: str) -> dict | None:
        return None if self.entries is None else self.entries.get((viewer_key(auth), str(service_id)))

    def put(self, auth: dict | None, service_id: str, service: dict) -> None:
        if self.entries is not None:
            self.entries[(viewer_key(auth), str(service_id))] = service

    def clear(self) -> None:
        if self.entries is not None:
            self.entries.clear()


class ServiceLookups:
    """``get_many(directory_rpc, auth, ids)``: cached ``get_service`` answers, else calls in flight."""

    def __init__(self, cache: ServiceDetailsCache):
        self.cache = cache

    def get_many(self, directory, auth: dict, service_ids: list[str]) -> list:
        """Services in ``service_ids`` order; each either a dict or an in-flight RPC (read with :func:`resolve`)."""
        return [self.cache.get(auth, sid) or _Pending(self.cache, directory, auth, sid) for sid in service_ids]


class DirectoryServices(DependencyProvider):
    """One cache per running service instance, shared by its workers."""

    def setup(self):
        self.lookups = ServiceLookups(ServiceDetailsCache(ttl=TTL_SECONDS))

    def get_dependency(self, worker_ctx):
        return self.lookups


class _Pending:
    """A ``get_service`` call in flight; its answer enters the cache when read."""

    def __init__(self, cache: ServiceDetailsCache, directory, auth: dict, service_id: str):
        self.cache, self.auth, self.service_id = cache, auth, service_id
        self.call = directory.get_service.call_async(auth, service_id)

    def result(self) -> dict:
        service = self.call.result()  # a refusal (NotFound) propagates and is not cached
        self.cache.put(self.auth, self.service_id, service)
        return service


def resolve(item) -> dict:
    return item if isinstance(item, dict) else item.result()
