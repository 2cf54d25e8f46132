"""What analytics asks other services: tenant facts (identity), taxonomy and
provider counts (directory). One small adapter, so reports read as plain
functions and unit tests replace the RPC proxies only.

Example::

    sources = Sources(session, self.identity_rpc, self.directory_rpc, auth)
    sources.tenant_info(tenant_id)   # -> {"id", "timezone", "analytics_consent", ...}
    sources.tenants_info([a, b])     # -> {a: {...}, b: {...}} in one call
"""
from __future__ import annotations

import logging

from services.analytics.reports import tenants_with_counts


log = logging.getLogger(__name__)

TENANTS_PER_CALL = 1000  # identity.tenants_info takes at most this many ids


class Sources:
    def __init__(self, session, identity, directory, auth: dict | None = None):
        self.session = session
        self.identity = identity
        self.directory = directory
        self.auth = auth

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
        return self.directory.get_terms(term_ids) if term_ids else {}

    def count_services(self, term_ids, latitude, longitude, radius_miles, tenant: dict) -> dict:
        """Directory services near the tenant that the tenant's staff can find: the global
        directory, its own, its district's published ones and programs' published to schools."""
        if not term_ids:
            return {}
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
