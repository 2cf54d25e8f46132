"""The defects a district's IT team found in deploy/k8s (issue 17), each checked on the manifests
as built (``kubectl kustomize``), so none comes back."""
from __future__ import annotations

import re

import pytest

from gateway.routes.directory import MAX_IMPORT_BODY
from gateway.routes.retention import EXPORT_TIMEOUT_SECONDS
from tests.deploy.manifests import OVERLAYS, built, of_kind, pod_specs
from weintervene.config import SECRET_SETTINGS, SERVICES, Settings

VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


def _config_maps(documents):
    return {name: d.get("data", {}) for name, d in of_kind(documents, "ConfigMap").items()}


def _environment(container, config_maps) -> list[tuple[str, str | None, bool]]:
    """(name, value, from a Secret) in the order Kubernetes defines them: envFrom, then env."""
    variables = []
    for source in container.get("envFrom", []):
        for name, value in config_maps[source["configMapRef"]["name"]].items():
            variables.append((name, value, False))
    for entry in container.get("env", []):
        variables.append((entry["name"], entry.get("value"), "secretKeyRef" in (entry.get("valueFrom") or {})))
    return variables


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_config_map_value_waits_for_variable_expansion(overlay):
    """Kubernetes expands $(VAR) in env[].value, command and args only: a ConfigMap value read
    through envFrom keeps "$(DB_PASSWORD)" as it is, and no service could log in."""
    for name, data in _config_maps(built(overlay)).items():
        for key, value in data.items():
            assert not VARIABLE.search(value), f"ConfigMap {name} {key}: {value}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_reference_names_a_variable_defined_before_it(overlay):
    documents = built(overlay)
    config_maps = _config_maps(documents)
    for where, spec in pod_specs(documents):
        for container in _containers(spec):
            defined = set()
            for name, value, _secret in _environment(container, config_maps):
                for used in VARIABLE.findall(value or ""):
                    assert used in defined, f"{where} {container['name']}: {name} uses $({used}) before it is defined"
                defined.add(name)


def _resolved(container, config_maps) -> dict[str, str]:
    """The environment as the container sees it, a Secret's value shown as <secret:NAME>."""
    values = {}
    for name, value, secret in _environment(container, config_maps):
        values[name] = f"<secret:{name}>" if secret else VARIABLE.sub(lambda m: values.get(m[1], m[0]), value or "")
    return values


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_and_its_migration_reach_its_own_database_with_its_own_password(overlay):
    documents = built(overlay)
    config_maps = _config_maps(documents)
    deployments = of_kind(documents, "Deployment")
    for service in SERVICES:
        spec = deployments[service]["spec"]["template"]["spec"]
        for container in _containers(spec):
            env = _resolved(container, config_maps)
            settings = Settings.from_env({k: v for k, v in env.items()})
            url = settings.database_url(service)
            assert url.startswith("postgresql"), (service, container["name"], url)
            assert f"wi_{service}:<secret:DATABASE_PASSWORD>@" in url and url.rsplit("/", 1)[-1] == f"wi_{service}"
    gateway = deployments["gateway"]["spec"]["template"]["spec"]["containers"][0]
    assert not any("DATABASE" in e["name"] for e in gateway["env"]), "the gateway owns no database"


def test_the_database_driver_is_named_in_one_place():
    """Changing the driver (pg8000 -> psycopg2) is one line: the ConfigMap's DATABASE_DRIVER."""
    for overlay in OVERLAYS:
        text = repr(built(overlay))
        assert len(re.findall(r"postgresql\+\w+", text)) == 1, overlay


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_migration_runs_before_its_service_with_the_secret_key(overlay):
    """The keyed-hash migrations need WEINTERVENE_SECRET_KEY (SECRET_SETTINGS' "migrate")."""
    wanted = {s.variable for s in SECRET_SETTINGS if "migrate" in s.used_by}
    assert "WEINTERVENE_SECRET_KEY" in wanted
    deployments = of_kind(built(overlay), "Deployment")
    for service in SERVICES:
        spec = deployments[service]["spec"]["template"]["spec"]
        [migrate] = [c for c in spec.get("initContainers", []) if c["args"][:1] == ["migrate"]]
        assert migrate["args"] == ["migrate", "--service", service]
        secrets = {e["name"] for e in migrate["env"] if "secretKeyRef" in e.get("valueFrom", {})}
        assert wanted <= secrets, (service, wanted - secrets)
        assert migrate["image"] == spec["containers"][0]["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_read_only_root_filesystem_comes_with_a_writable_tmp(overlay):
    for where, spec in pod_specs(built(overlay)):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in _containers(spec):
            if not container.get("securityContext", {}).get("readOnlyRootFilesystem"):
                continue
            mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where} {container['name']}: no writable /tmp"
            assert not mounts["/tmp"].get("readOnly")
            assert "emptyDir" in volumes[mounts["/tmp"]["name"]], where


def test_directory_tmp_holds_an_import():
    spec = of_kind(built("production"), "Deployment")["directory"]["spec"]["template"]["spec"]
    [tmp] = [v for v in spec["volumes"] if v["name"] == "tmp"]
    size = tmp["emptyDir"]["sizeLimit"]
    assert size.endswith("Gi") and int(size[:-2]) * 1024 ** 3 >= (
        Settings().directory_import_max_unpacked_bytes + MAX_IMPORT_BODY)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_readiness_asks_the_gateway_alone(overlay):
    """/healthz asks every service: as the readiness probe, one slow service took every gateway
    out of its Service. /readyz answers from the gateway (tests/unit/test_gateway_operator_endpoints)."""
    gateway = of_kind(built(overlay), "Deployment")["gateway"]["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert gateway[probe]["httpGet"]["path"] == "/readyz", probe


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_is_probed_where_a_dead_service_stops_answering(overlay):
    """The process exits when its nameko container dies (weintervene.runner.ServiceDied;
    tests/unit/test_runner_service_died.py), so its metrics listener is the liveness signal."""
    for name, deployment in of_kind(built(overlay), "Deployment").items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        probe = container["livenessProbe"]
        port = (probe.get("tcpSocket") or probe.get("httpGet"))["port"]
        assert port in {p["name"] for p in container["ports"]}, name


def _gateway_answer(overlay, route, path, headers):
    """What the gateway, configured as the overlay configures it, answers ``path`` with."""
    from nameko import config as nameko_config
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    documents = built(overlay)
    gateway = of_kind(documents, "Deployment")["gateway"]["spec"]["template"]["spec"]["containers"][0]
    env = {k: v for k, v in _resolved(gateway, _config_maps(documents)).items()}
    with nameko_config.patch({"WEINTERVENE": Settings.from_env(env)}):
        return route(object(), Request(EnvironBuilder(path=path, headers=headers).get_environ()))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_as_deployed_serves_no_metrics_or_health_to_the_public(overlay):
    """The Ingress routes / to the gateway's http port: there, as the overlay configures the
    gateway, /metrics is not served at all and /healthz not to a request through the ingress."""
    from gateway.routes.system import SystemRoutes

    through_ingress = {"X-Forwarded-For": "198.51.100.7"}
    assert _gateway_answer(overlay, SystemRoutes.metrics, "/metrics", {}).status_code == 404
    assert _gateway_answer(overlay, SystemRoutes.healthz, "/healthz", through_ingress).status_code == 404


def _ingress_backends(documents):
    for ingress in of_kind(documents, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                yield ingress, path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_are_on_their_own_port_which_the_ingress_does_not_reach(overlay):
    documents = built(overlay)
    config = _config_maps(documents)["weintervene-config"]
    metrics_port = int(config["WEINTERVENE_METRICS_PORT"])
    for name, deployment in of_kind(documents, "Deployment").items():
        ports = {p["name"]: p["containerPort"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert ports["metrics"] == metrics_port, name
    services = of_kind(documents, "Service")
    for ingress, path in _ingress_backends(documents):
        backend = path["backend"]["service"]
        service = services[backend["name"]]
        [port] = [p for p in service["spec"]["ports"] if backend["port"].get("name") in (None, p["name"])]
        assert port["targetPort"] == "http", ingress["metadata"]["name"]
    for service in services.values():
        if service["spec"].get("selector", {}).get("app.kubernetes.io/component") == "gateway":
            assert all(p["targetPort"] != "metrics" and p.get("targetPort") != metrics_port
                       for p in service["spec"]["ports"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_operator_endpoints_are_not_exposed_by_the_ingress_rules(overlay):
    """No Ingress rule names /healthz or /metrics; what the catch-all / reaches answers 404 from
    them through the ingress (the gateway trusts one proxy: WEINTERVENE_TRUSTED_PROXY_HOPS)."""
    documents = built(overlay)
    for ingress, path in _ingress_backends(documents):
        assert not path["path"].startswith(("/healthz", "/metrics", "/readyz")), ingress["metadata"]["name"]
    gateway = of_kind(documents, "Deployment")["gateway"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in gateway["env"]}
    assert int(env["WEINTERVENE_TRUSTED_PROXY_HOPS"]) >= 1
