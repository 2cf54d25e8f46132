"""Operational endpoints: /healthz, /metrics and the OpenAPI document."""
from __future__ import annotations

import eventlet
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from gateway.http import json_response, route
from gateway.openapi import openapi_document
from weintervene.config import SERVICES

HEALTH_TIMEOUT_SECONDS = 2.0


class SystemRoutes:
    @route("GET", "/healthz", summary="Is every service reachable", tags=["system"], auth=False, raw=True)
    def healthz(self, request, **_):
        """200 when every service answers its health RPC, 503 otherwise; each service listed."""
        calls = {}
        for name in SERVICES:
            try:
                calls[name] = getattr(self.cluster_rpc, name).health.call_async()
            except Exception as exc:  # UnknownService: nobody consumes its queue
                calls[name] = exc
        report = {}
        for name, call in calls.items():
            if isinstance(call, Exception):
                report[name] = {"status": "unreachable", "reason": type(call).__name__}
                continue
            try:
                with eventlet.Timeout(HEALTH_TIMEOUT_SECONDS):
                    report[name] = call.result()
            except (Exception, eventlet.Timeout) as exc:
                report[name] = {"status": "unreachable", "reason": type(exc).__name__}
        healthy = all(r.get("status") == "ok" for r in report.values())
        return json_response(
            {"status": "ok" if healthy else "degraded", "gateway": "ok", "services": report},
            200 if healthy else 503,
        )

    @route("GET", "/metrics", summary="Prometheus metrics", tags=["system"], auth=False, raw=True,
           content_type=CONTENT_TYPE_LATEST)
    def metrics(self, request, **_):
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    @route("GET", "/api/v1/openapi.json", summary="This API's OpenAPI document", tags=["system"], auth=False, raw=True)
    def openapi(self, request, **_):
        return json_response(openapi_document())
