"""The OpenAPI 3 document, generated from the ``@route`` declarations and their
marshmallow schemas (never written by hand).

Example::

    GET /api/v1/openapi.json -> {"openapi": "3.0.3", "info": {...}, "paths": {"/api/v1/me": {...}}}
"""
from __future__ import annotations

from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from gateway.http import ROUTES, SESSION_COOKIE, ErrorPage

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Machine-readable reason"},
                "message": {"type": "string", "description": "What a person should read"},
                "details": {"type": "object", "description": "Field-level reasons"},
            },
        }
    },
}


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    spec = APISpec(
        title="WeIntervene API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Referral management for schools and youth programs."},
    )
    spec.components.schema("Error", ERROR_SCHEMA)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("cookie", {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE})
    error_ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

    paths: dict[str, dict] = {}
    for r in sorted(ROUTES, key=lambda r: (r.path, r.method)):
        operation: dict = {
            "summary": r.summary,
            "tags": r.tags,
            "responses": {
                "400": {"description": "Bad input", **error_ref},
                "500": {"description": "Server error", **error_ref},
            },
        }
        if r.description:
            operation["description"] = r.description
        if r.auth:
            operation["security"] = [{"bearer": []}, {"cookie": []}]
            operation["responses"]["401"] = {"description": "Not signed in", **error_ref}
            operation["responses"]["403"] = {"description": "Not allowed", **error_ref}
        if "{" in r.path:
            operation["responses"]["404"] = {"description": "Not found", **error_ref}
            operation["parameters"] = [
                # Only *_id path values are UUIDs (the route checks them); others are names.
                {"in": "path", "name": name, "required": True,
                 "schema": {"type": "string", "format": "uuid"} if name.endswith("_id") else {"type": "string"}}
                for name in _path_names(r.path)
            ]
        if r.query is not None:
            operation.setdefault("parameters", []).append({"in": "query", "schema": r.query})
        for header in r.headers:
            operation.setdefault("parameters", []).append({
                "in": "header", "name": header.name, "required": header.required, "description": header.description,
                "schema": {"type": "string", "minLength": 1, "maxLength": header.max_length},
            })
        for status, error in r.errors.items():
            if isinstance(error, ErrorPage) and error.content_type is None:
                operation["responses"][str(status)] = {"description": error.description}  # no body
            elif isinstance(error, ErrorPage):
                operation["responses"][str(status)] = {
                    "description": error.description, "content": {error.content_type: {"schema": {"type": "string"}}},
                }
            else:
                operation["responses"][str(status)] = {"description": error, **error_ref}
        if r.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": r.body}}}
        elif r.request_content_type is not None:
            operation["requestBody"] = {
                "required": True, "content": {r.request_content_type: {"schema": {"type": "string"}}},
            }
        ok: dict = {"description": "No content" if r.status == 204 else "OK"}
        if r.status == 204:
            pass
        elif r.response is not None:
            ok["content"] = {r.content_type: {"schema": r.response}}
        elif r.content_type != "application/json":
            ok["content"] = {r.content_type: {"schema": {"type": "string"}}}
        for other in r.also_content_types:
            ok.setdefault("content", {})[other] = {"schema": {"type": "string"}}
        operation["responses"][str(r.status)] = ok
        paths.setdefault(r.path, {})[r.method.lower()] = operation

    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _path_names(path: str) -> list[str]:
    import re

    return re.findall(r"{([a-z_]+)}", path)
