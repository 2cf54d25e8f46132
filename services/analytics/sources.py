"""What analytics asks other services: tenant facts (identity), taxonomy and
provider counts (directory). One small adapter, so reports read as plain
functions and unit tests replace the RPC proxies only.

Taxonomy terms (public, global, renamed a few times a year at most) are kept for
``TERM_CACHE_SECONDS`` in a cache shared by the service's workers (``TermCache``):
a dashboard and its CSV downloads name the same categories again and again. A term
directory does not know is never kept, so a newly imported one is named at once.
Tenant facts are not cached: consent and the suppression threshold decide what
leaves a school, so a change to them holds from the next report on.

Example::

    sources = Sources(session, self.identity_rpc, self.directory_rpc, auth, terms=self.term_cache)
    sources.tenant_info(tenant_id)   # -> {"id", "timezone", "analytics_consent", ...}
    sources.tenants_info([a, b])     # -> {a: {...}, b: {...}} in one call
    sources.get_terms([t1, t2])      # -> {t1: {...}, t2: {...}}; within 5 minutes again: no call
"""
from __future__ import annotations

import logging
import time

from cachetools import TTLCache
from nameko.extensions import DependencyProvider

from services.analytics.reports import tenants_with_counts


log = logging.getLogger(__name__)

TENANTS_PER_CALL = 1000  # identity.tenants_info takes at most this many ids
TERM_CACHE_SECONDS = 300.0
TERM_CACHE_ENTRIES = 20_000


def term_cache(ttl: float = TERM_CACHE_SECONDS, max_entries: int = TERM_CACHE_ENTRIES, clock=time.monotonic) -> TTLCache:
    """{term_id: directory's get_terms answer for it}, each kept ``ttl`` seconds."""
    return TTLCache(maxsize=max_entries, ttl=ttl, timer=clock)


class TermCache(DependencyProvider):
    """One term cache per running service instance, shared by its workers."""

    def setup(self):
        self.cache = term_cache()

    def get_dependency(self, worker_ctx):
        return self.cache


class Sources:
    def __init__(self, session, identity, directory, auth: dict | None = None, terms: TTLCache | None = None):
        self.session = session
        self.identity = identity
        self.directory = directory
        self.auth = auth
        # Without a shared cache, terms are still asked once per Sources (one RPC call).
        self.terms = terms if terms is not None else {}
        self.remembered: dict = {}

    def remember(self, key, compute):
        """``compute()``, once per Sources (one RPC call): what two reports of one dashboard
        read alike (the category tables of top-categories and unmet-need)."""
        if key not in self.remembered:
            self.remembered[key] = compute()
        return self.remembered[key]

    def tenant_info(self, tenant_id: str) -> dict:
        return self.identity.tenant_info(tenant_id)

    def tenants_info(self, tenant_ids) -> dict:
        """{id: tenant_info} for many tenants, in one identity call per 1,000 ids
        (unknown ids are left out): an operator view names every tenant with counts."""
        ids = sorted({str(t) for t in tenant_ids})
        found: dict = {}
        for start in range(0, len(ids), TENANTS_PER_CALL):
            found.update(self.identity.tenants_info(ids[start:start + TENANTS_PER_CALL]))
        return found

    def list_tenants_in(self, tenant_id: str) -> list[dict]:
        return self.identity.list_tenants_in(tenant_id)

    def tenants_with_counts(self) -> list[str]:
        return tenants_with_counts(self.session)

    def get_terms(self, term_ids: list[str]) -> dict:
        """{term_id: {id, name, top_level_id, top_level_name, ...}}: kept ones from the
        cache, the others in one directory call (unknown ids are left out)."""
        found, missing = {}, []
        for term_id in dict.fromkeys(str(t) for t in term_ids or ()):
            known = self.terms.get(term_id)
            if known is None:
                missing.append(term_id)
            else:
                found[term_id] = known
        if missing:
            answer = self.directory.get_terms(missing)
            for term_id, info in answer.items():
                self.terms[term_id] = info
            found.update(answer)
        return found

    def count_services(self, term_ids, latitude, longitude, radius_miles, tenant: dict, groups=None) -> dict:
        """Directory services near the tenant that the tenant's staff can find: the global
        directory, its own, its district's published ones and programs' published to schools.
        With ``groups`` ({category: [term ids]}), one count per category: services with any of its terms."""
        if not term_ids:
            return {}
        if groups:
            counts = self.directory.count_services([], latitude, longitude, radius_miles, tenant["id"],
                                                   tenant.get("kind"), tenant.get("district_id"), groups)
            return {key: counts.get(key) for key in groups}
        return self.directory.count_services(term_ids, latitude, longitude, radius_miles, tenant["id"],
                                             tenant.get("kind"), tenant.get("district_id"))

    def service_names(self, service_ids: list[str]) -> dict:
        """{service_id: name} in one directory call; a service the caller may not see stays unnamed."""
        if not service_ids:
            return {}
        try:
            found = self.directory.service_names(self.auth, list(service_ids))
        except Exception as exc:  # names are a courtesy: the figures stand without them
            log.warning("could not ask directory for service names: %s", type(exc).__name__)
            found = {}
        return {sid: found.get(sid) for sid in service_ids}
