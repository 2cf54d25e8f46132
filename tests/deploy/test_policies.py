"""What the cluster enforces around the pods: Pod Security "restricted" for every pod (init
containers and Jobs included), no service-account token, default-deny NetworkPolicies with the
few allowances the services need, disruption budgets and spread for every Deployment of more
than one replica, and an Ingress over TLS whose limits match the gateway's."""
from __future__ import annotations

import ipaddress
import re

import pytest

from gateway.http import ROUTES
from gateway.routes.directory import MAX_IMPORT_BODY
from gateway.routes.retention import EXPORT_TIMEOUT_SECONDS
from tests.deploy.manifests import OVERLAYS, built, of_kind, pod_specs
from weintervene.config import SERVICES, Settings

ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}


def restricted_violations(spec) -> list[str]:
    """What Pod Security "restricted" (v1.30+) refuses in a pod spec; [] when it passes."""
    found = []
    pod = spec.get("securityContext", {})
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(field)
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume['name']}: {kinds}")
    if pod.get("runAsUser") == 0:
        found.append("pod runAsUser 0")
    for container in spec.get("initContainers", []) + spec["containers"]:
        own = container.get("securityContext", {})
        name = container["name"]
        if own.get("privileged"):
            found.append(f"{name}: privileged")
        if own.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        if "ALL" not in own.get("capabilities", {}).get("drop", []):
            found.append(f"{name}: capabilities not dropped")
        if set(own.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: capabilities added")
        if own.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
            found.append(f"{name}: runAsNonRoot")
        if own.get("runAsUser", pod.get("runAsUser")) == 0:
            found.append(f"{name}: runAsUser 0")
        seccomp = own.get("seccompProfile", pod.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile {seccomp}")
        if any("hostPort" in p for p in container.get("ports", [])):
            found.append(f"{name}: hostPort")
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_passes_pod_security_restricted(overlay):
    documents = built(overlay)
    specs = list(pod_specs(documents))
    assert len(specs) >= 6
    failures = {where: restricted_violations(spec) for where, spec in specs}
    assert not {k: v for k, v in failures.items() if v}
    [namespace] = of_kind(documents, "Namespace").values()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_restricted_check_can_fail():
    spec = dict(next(pod_specs(built("production")))[1])
    assert restricted_violations(spec) == []
    spec["initContainers"] = [{"name": "root", "securityContext": {"runAsUser": 0}}]
    assert len(restricted_violations(spec)) == 3


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_pod_gets_a_service_account_token(overlay):
    documents = built(overlay)
    for where, spec in pod_specs(documents):
        assert spec.get("automountServiceAccountToken") is False, where
    for name, account in of_kind(documents, "ServiceAccount").items():
        assert account.get("automountServiceAccountToken") is False, name


def _selects(selector, labels) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _policies_for(policies, labels, kind):
    return [p for p in policies if kind in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], labels)]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_allow_only_what_each_pod_needs(overlay):
    documents = built(overlay)
    policies = list(of_kind(documents, "NetworkPolicy").values())
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")
            and not p["spec"].get("egress")]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    deployments = of_kind(documents, "Deployment")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        ingress = [rule for p in _policies_for(policies, labels, "Ingress") for rule in p["spec"].get("ingress", [])]
        egress = [rule for p in _policies_for(policies, labels, "Egress") for rule in p["spec"].get("egress", [])]
        ports_in = {port["port"] for rule in ingress for port in rule["ports"]}
        # Only the gateway is reached by anyone but Prometheus, and only on http.
        assert ports_in == ({"http", "metrics"} if name == "gateway" else {"metrics"}), name
        for rule in ingress:
            assert all("namespaceSelector" in peer and "podSelector" in peer for peer in rule["from"]), name
        ports_out = {port["port"] for rule in egress for port in rule["ports"]}
        assert 53 in ports_out and {5671, 5672} <= ports_out, name
        assert (5432 in ports_out) == (name in SERVICES), name
        assert ({25, 465, 587} <= ports_out) == (name in ("identity", "referrals")), name
        assert (443 in ports_out) == (name == "referrals"), name
        for rule in egress:
            for peer in rule["to"]:
                if "ipBlock" in peer:  # the outside world, never the cluster's own ranges
                    excluded = [ipaddress.ip_network(c) for c in peer["ipBlock"]["except"]]
                    assert ipaddress.ip_network("10.0.0.0/8") in excluded, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_of_several_replicas_has_a_disruption_budget_and_spreads(overlay):
    documents = built(overlay)
    budgets = list(of_kind(documents, "PodDisruptionBudget").values())
    several = 0
    for name, deployment in of_kind(documents, "Deployment").items():
        if deployment["spec"].get("replicas", 1) <= 1:
            continue
        several += 1
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        mine = [b for b in budgets if _selects(b["spec"]["selector"], labels)]
        assert len(mine) == 1, name
        assert mine[0]["spec"].get("maxUnavailable", 0) < deployment["spec"]["replicas"], name
        spread = deployment["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
        assert any(c["topologyKey"] == "kubernetes.io/hostname" and _selects(c["labelSelector"], labels)
                   for c in spread), name
    assert several >= (4 if overlay == "production" else 0)


def _size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", value.lower()).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[unit]


def _ingress_for(documents, path):
    """The Ingress whose rule ingress-nginx picks for ``path`` (the longest matching prefix)."""
    matches = [(len(p["path"]), ingress) for ingress in of_kind(documents, "Ingress").values()
               for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"] if path.startswith(p["path"])]
    return max(matches, key=lambda m: m[0])[1]["metadata"]["annotations"]


def _route_exists(method, path):
    return any(r.method == method and r.path == path for r in ROUTES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_limits_match_the_gateways(overlay):
    documents = built(overlay)
    settings = Settings()
    assert _route_exists("POST", "/api/v1/directory/imports") and _route_exists("POST", "/api/v1/exports")
    imports = _ingress_for(documents, "/api/v1/directory/imports")
    exports = _ingress_for(documents, "/api/v1/exports/0b6f")
    everything = _ingress_for(documents, "/api/v1/rosters")
    assert _size(imports["nginx.ingress.kubernetes.io/proxy-body-size"]) == MAX_IMPORT_BODY
    assert _size(everything["nginx.ingress.kubernetes.io/proxy-body-size"]) == settings.roster_max_bytes
    for annotations in (imports, everything):
        assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > settings.gateway_request_timeout_seconds
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(exports[f"nginx.ingress.kubernetes.io/{key}"]) > EXPORT_TIMEOUT_SECONDS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_is_served_over_tls_from_a_cert_manager_issuer(overlay):
    documents = built(overlay)
    ingresses = of_kind(documents, "Ingress")
    issuers = of_kind(documents, "Issuer")
    asking = [i for i in ingresses.values() if "cert-manager.io/issuer" in i["metadata"].get("annotations", {})]
    # One Ingress asks for the certificate (one Certificate per Secret); every one serves it.
    assert len(asking) == 1 and asking[0]["metadata"]["annotations"]["cert-manager.io/issuer"] in issuers
    secret = asking[0]["spec"]["tls"][0]["secretName"]
    for name, ingress in ingresses.items():
        assert ingress["spec"]["tls"][0]["secretName"] == secret, name
        assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
