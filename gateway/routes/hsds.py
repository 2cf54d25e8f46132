"""The HSDS 3.1 API (Open Referral) under ``/hsds/``.

Every list endpoint also answers ``POST`` with its parameters as a JSON body (HSDS 3.1's
POST search): a search for "counseling for pregnant teens" stays out of URLs, browser
history and access logs. A POST search takes no query string (400 when one is sent), so
the search cannot leak there by mistake. Cross-origin reads: :mod:`gateway.cors`.

Readable without signing in when the ``hsds_public`` setting is on (global
services only); signed-in users also see their tenant's own services.
``format=ndjson`` streams every result, one JSON document per line.
"""
from __future__ import annotations

import json

from werkzeug.wrappers import Response

from gateway.http import json_response, route, session_token
from services.directory.schemas import (
    HsdsOrganizationQuerySchema, HsdsOrganizationsQuerySchema, HsdsPageSchema, HsdsServicesQuerySchema,
    HsdsTaxonomyTermsQuerySchema,
)

# Readable without a session; a request that sends one is read as that user, so an ended one is a 401.
HSDS_ERRORS = {401: "A session was sent (bearer or cookie) and it has ended: send a valid one, or none"}


class HsdsRoutes:
    def _hsds(self, request, resource, query=None, item_id=None):
        token, _ = session_token(request)
        auth = self.authenticate_request(request).to_dict() if token else None
        result = self.directory_rpc.hsds(auth, resource, query or {}, item_id)
        if query and query.get("format") == "ndjson" and "contents" in result:
            body = "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in result["contents"])
            return Response(body, mimetype="application/x-ndjson")
        return json_response(result)

    @route("GET", "/hsds/", summary="HSDS API root", tags=["hsds"], auth=False, raw=True, errors=HSDS_ERRORS)
    def hsds_root(self, request, **_):
        return self._hsds(request, "root")

    @route("GET", "/hsds/services", summary="HSDS services (Page)", tags=["hsds"], auth=False, raw=True, errors=HSDS_ERRORS,
           query=HsdsServicesQuerySchema)
    def hsds_services(self, request, query, **_):
        return self._hsds(request, "services", query)

    @route("GET", "/hsds/services/<service_id>", summary="HSDS service, fully nested", tags=["hsds"], auth=False, raw=True, errors=HSDS_ERRORS)
    def hsds_service(self, request, service_id, **_):
        return self._hsds(request, "services", item_id=service_id)

    @route("GET", "/hsds/organizations", summary="HSDS organizations (Page)", tags=["hsds"], auth=False, raw=True, errors=HSDS_ERRORS,
           query=HsdsOrganizationsQuerySchema)
    def hsds_organizations(self, request, query, **_):
        return self._hsds(request, "organizations", query)

    @route("GET", "/hsds/organizations/<organization_id>", summary="HSDS organization, fully nested", tags=["hsds"],
           auth=False, raw=True, errors=HSDS_ERRORS, query=HsdsOrganizationQuerySchema)
    def hsds_organization(self, request, organization_id, **_):
        return self._hsds(request, "organizations", item_id=organization_id)

    @route("GET", "/hsds/taxonomies", summary="HSDS taxonomies (Page)", tags=["hsds"], auth=False, raw=True, errors=HSDS_ERRORS,
           query=HsdsPageSchema)
    def hsds_taxonomies(self, request, query, **_):
        return self._hsds(request, "taxonomies", query)

    @route("GET", "/hsds/taxonomies/<taxonomy_id>", summary="HSDS taxonomy", tags=["hsds"], auth=False, raw=True, errors=HSDS_ERRORS)
    def hsds_taxonomy(self, request, taxonomy_id, **_):
        return self._hsds(request, "taxonomies", item_id=taxonomy_id)

    @route("GET", "/hsds/taxonomy_terms", summary="HSDS taxonomy terms (Page)", tags=["hsds"], auth=False, raw=True, errors=HSDS_ERRORS,
           query=HsdsTaxonomyTermsQuerySchema)
    def hsds_taxonomy_terms(self, request, query, **_):
        return self._hsds(request, "taxonomy_terms", query)

    @route("GET", "/hsds/taxonomy_terms/<taxonomy_term_id>", summary="HSDS taxonomy term", tags=["hsds"], auth=False, raw=True, errors=HSDS_ERRORS)
    def hsds_taxonomy_term(self, request, taxonomy_term_id, **_):
        return self._hsds(request, "taxonomy_terms", item_id=taxonomy_term_id)

    @route("GET", "/hsds/service_at_locations", summary="HSDS services at locations (Page)", tags=["hsds"], auth=False,
           raw=True, errors=HSDS_ERRORS, query=HsdsServicesQuerySchema)
    def hsds_service_at_locations(self, request, query, **_):
        return self._hsds(request, "service_at_locations", query)

    @route("GET", "/hsds/service_at_locations/<service_at_location_id>", summary="HSDS service at location, fully nested",
           tags=["hsds"], auth=False, raw=True, errors=HSDS_ERRORS)
    def hsds_service_at_location(self, request, service_at_location_id, **_):
        return self._hsds(request, "service_at_locations", item_id=service_at_location_id)

    @route("POST", "/hsds/services", summary="HSDS services (Page), searched with a JSON body", tags=["hsds"],
           auth=False, raw=True, errors=HSDS_ERRORS, body=HsdsServicesQuerySchema)
    def hsds_services_search(self, request, body, **_):
        """The same answer as ``GET /hsds/services`` with these parameters, which stay out of the URL."""
        return self._hsds(request, "services", body)

    @route("POST", "/hsds/organizations", summary="HSDS organizations (Page), searched with a JSON body", tags=["hsds"],
           auth=False, raw=True, errors=HSDS_ERRORS, body=HsdsOrganizationsQuerySchema)
    def hsds_organizations_search(self, request, body, **_):
        """The same answer as ``GET /hsds/organizations`` with these parameters, which stay out of the URL."""
        return self._hsds(request, "organizations", body)

    @route("POST", "/hsds/taxonomies", summary="HSDS taxonomies (Page), searched with a JSON body", tags=["hsds"],
           auth=False, raw=True, errors=HSDS_ERRORS, body=HsdsPageSchema)
    def hsds_taxonomies_search(self, request, body, **_):
        """The same answer as ``GET /hsds/taxonomies`` with these parameters, which stay out of the URL."""
        return self._hsds(request, "taxonomies", body)

    @route("POST", "/hsds/taxonomy_terms", summary="HSDS taxonomy terms (Page), searched with a JSON body", tags=["hsds"],
           auth=False, raw=True, errors=HSDS_ERRORS, body=HsdsTaxonomyTermsQuerySchema)
    def hsds_taxonomy_terms_search(self, request, body, **_):
        """The same answer as ``GET /hsds/taxonomy_terms`` with these parameters, which stay out of the URL."""
        return self._hsds(request, "taxonomy_terms", body)

    @route("POST", "/hsds/service_at_locations", summary="HSDS service at locations (Page), searched with a JSON body", tags=["hsds"],
           auth=False, raw=True, errors=HSDS_ERRORS, body=HsdsServicesQuerySchema)
    def hsds_service_at_locations_search(self, request, body, **_):
        """The same answer as ``GET /hsds/service_at_locations`` with these parameters, which stay out of the URL."""
        return self._hsds(request, "service_at_locations", body)
