"""Operational endpoints: /healthz, /readyz, /metrics and the OpenAPI document.

/healthz, /readyz and /metrics are for operators and the cluster (kubelet probes, Prometheus),
not for the public: behind the ingress (``trusted_proxy_hops`` > 0) a request that came through
it (it carries X-Forwarded-For, which the ingress always sets) gets 404, and with a metrics
port of its own (``metrics_port``) /metrics is served there only.

Example: kubelet's ``GET /readyz`` -> 200 {"status": "ok"}; the same through the ingress -> 404.
"""
from __future__ import annotations

import eventlet
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from gateway.http import json_response, route
from gateway.openapi import openapi_document
from weintervene.config import SERVICES, settings

HEALTH_TIMEOUT_SECONDS = 2.0


NOT_FOUND = {"error": {"code": "not_found", "message": "Not found."}}


def through_the_ingress(request) -> bool:
    """The request came through the proxy in front (the public's way in), not from inside the cluster."""
    return settings().trusted_proxy_hops > 0 and "X-Forwarded-For" in request.headers


class SystemRoutes:
    @route("GET", "/healthz", summary="Is every service reachable", tags=["system"], auth=False, raw=True)
    def healthz(self, request, **_):
        """200 when every service answers its health RPC, 503 otherwise; each service listed. For
        operators: answers 404 through the ingress. Not a probe: one slow service would take every
        gateway out of its Service (probes use /readyz)."""
        if through_the_ingress(request):
            return json_response(NOT_FOUND, 404)
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

    @route("GET", "/readyz", summary="Is this gateway serving", tags=["system"], auth=False, raw=True)
    def readyz(self, request, **_):
        """200 once this gateway process serves HTTP; asks no service, so a slow service never takes
        the gateways out of rotation (its own routes answer 503/504 for what needs it). The
        readiness probe. 404 through the ingress."""
        if through_the_ingress(request):
            return json_response(NOT_FOUND, 404)
        return json_response({"status": "ok"})

    @route("GET", "/metrics", summary="Prometheus metrics", tags=["system"], auth=False, raw=True,
           content_type=CONTENT_TYPE_LATEST)
    def metrics(self, request, **_):
        """Served here when the process has no metrics port of its own (``make run``); else on that port only."""
        if settings().metrics_port or through_the_ingress(request):
            return json_response(NOT_FOUND, 404)
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    @route("GET", "/api/v1/openapi.json", summary="This API's OpenAPI document", tags=["system"], auth=False, raw=True)
    def openapi(self, request, **_):
        return json_response(openapi_document())
