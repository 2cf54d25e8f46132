"""The directory for educators and operators: search, services, categories, imports."""
from __future__ import annotations

import base64

from werkzeug.exceptions import RequestEntityTooLarge

from gateway.http import json_response, route
from services.directory.schemas import ImportStartSchema, SearchQuerySchema, SearchResultSchema, ServiceInputSchema
from weintervene.auth import Role
from weintervene.errors import BadRequest

MAX_IMPORT_BODY = 50 * 1024 * 1024
EDITOR_ROLES = (Role.OPERATOR, Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.PROGRAM_ADMIN)


class DirectoryRoutes:
    @route("GET", "/api/v1/directory/services", summary="Search the directory", tags=["directory"],
           query=SearchQuerySchema, response=SearchResultSchema)
    def search_services(self, request, auth, query, **_):
        """``?q=tutoring&postcode=20001&radius_miles=5&language=es&cost=free&open_day=TU&open_time=16:00
        &sort=distance`` -> ``{"items": [...], "total": 12, "total_is_estimate": false, "pages": 1, "page": 1,
        "per_page": 20, "facets": {"categories": [...], "languages": [...], "cost": [...]}, "corrected_query": null,
        "relaxed": false}``.

        Keyword searches read the query as people type it (stop words dropped, synonyms, Spanish,
        category names, age words), rank services filed under a category the query names first, then
        those with every word in their name; with fewer than 10 full matches, partial matches follow
        and ``relaxed`` is true. A broad keyword search
        (more matches than the server ranks exactly, 500 by default) ranks the best of the matches it
        reads, and says ``total_is_estimate``: its total and facet counts are then estimates, and
        ``pages`` tells how many pages of its best matches can be requested."""
        return self.directory_rpc.search(auth.to_dict(), query)

    @route("GET", "/api/v1/directory/services/<service_id>", summary="One service", tags=["directory"])
    def get_service(self, request, auth, service_id, **_):
        """The service with organization, locations, phones, hours, ages, languages, cost, categories."""
        return self.directory_rpc.get_service(auth.to_dict(), service_id)

    @route("GET", "/api/v1/directory/services/<service_id>/history", summary="Edit history of a service",
           tags=["directory"], roles=EDITOR_ROLES)
    def service_history(self, request, auth, service_id, **_):
        return {"items": self.directory_rpc.service_history(auth.to_dict(), service_id)}

    @route("GET", "/api/v1/directory/categories", summary="Categories (Open Eligibility)", tags=["directory"])
    def categories(self, request, auth, **_):
        """``{"items": [{"id": "…", "name": "Education", "code": "109", "children": [...]}]}``"""
        return {"items": self.directory_rpc.categories()}

    @route("POST", "/api/v1/directory/services", summary="Add a service", tags=["directory"],
           roles=EDITOR_ROLES, body=ServiceInputSchema, status=201)
    def create_service(self, request, auth, body, **_):
        """Operators add global services; school, district and program admins add their own."""
        return self.directory_rpc.create_service(auth.to_dict(), body)

    @route("PATCH", "/api/v1/directory/services/<service_id>", summary="Edit a service", tags=["directory"],
           roles=EDITOR_ROLES, raw=True)
    def update_service(self, request, auth, service_id, **_):
        from gateway.http import parse_json_body, refuse_nul_characters

        data = parse_json_body(request, 1024 * 1024)
        if not isinstance(data, dict):
            raise BadRequest("The body must be a JSON object.", code="invalid_input")
        refuse_nul_characters(data, "body")
        return json_response(self.directory_rpc.update_service(auth.to_dict(), service_id, data))

    @route("DELETE", "/api/v1/directory/services/<service_id>", summary="Retire a service", tags=["directory"],
           roles=EDITOR_ROLES)
    def retire_service(self, request, auth, service_id, **_):
        """Sets the status to inactive: search stops showing it; history keeps the change."""
        return self.directory_rpc.retire_service(auth.to_dict(), service_id)

    @route("POST", "/api/v1/directory/imports", summary="Import directory files", tags=["directory"],
           roles=(Role.OPERATOR,), query=ImportStartSchema, status=202, raw=True, max_body=MAX_IMPORT_BODY,
           errors={413: "The body, or what its zip would unpack to (`archive_too_large`), is over a cap"})
    def start_import(self, request, auth, query, **_):
        """Body: a ``.zip`` of HSDS CSV files (``application/zip``) or HSDS JSON (``application/json``);
        ``?filename=region.zip``; ``&source=miami-211`` when the package has no ``datapackage.json``
        naming it (400 ``source_required`` otherwise; the file name is never the source). Returns the job at once; poll ``GET /api/v1/directory/imports/{id}``."""
        if request.content_length and request.content_length > MAX_IMPORT_BODY:
            raise RequestEntityTooLarge()
        raw = request.get_data(cache=False)
        if len(raw) > MAX_IMPORT_BODY:
            raise RequestEntityTooLarge()
        if not raw:
            raise BadRequest("Send the file as the request body.", code="invalid_input")
        if request.mimetype not in ("application/zip", "application/json", "application/octet-stream"):
            raise BadRequest("Send application/zip or application/json.", code="unsupported_media_type")
        job = self.directory_rpc.start_import(auth.to_dict(), query["filename"], base64.b64encode(raw).decode("ascii"),
                                              query.get("source"))
        return json_response(job, 202)

    @route("GET", "/api/v1/directory/imports/<import_id>/skipped.csv", summary="Every row an import skipped, as CSV",
           tags=["directory"], roles=(Role.OPERATOR,), raw=True, content_type="text/csv",
           errors={409: "The import is still running (`import_running`)"})
    def import_skipped_csv(self, request, auth, import_id, **_):
        """``file,row,table,id,reason``, one line per skipped row (the header is row 1 of its file);
        no cell starts a spreadsheet formula."""
        from werkzeug.wrappers import Response

        response = Response(self.directory_rpc.import_skipped_csv(auth.to_dict(), import_id), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="import-skipped-rows.csv"'
        response.headers["Cache-Control"] = "no-store"
        return response

    @route("GET", "/api/v1/directory/imports/<import_id>", summary="Progress and report of an import",
           tags=["directory"], roles=(Role.OPERATOR,))
    def get_import(self, request, auth, import_id, **_):
        """``{"id": "…", "status": "running|completed|failed", "rows_done": 1200, "rows_total": 7602,
        "report": {"created": ..., "skipped_rows": [{"file", "row", "reason"}], "columns_dropped": {...}}}``"""
        return self.directory_rpc.get_import(auth.to_dict(), import_id)
