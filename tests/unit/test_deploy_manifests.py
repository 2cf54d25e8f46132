"""deploy/ stays in step with the code: every component has a Deployment, and the
autoscaler watches the queue analytics really consumes."""
from pathlib import Path

import yaml
from nameko.events import EventHandler

from services.analytics.service import AnalyticsService
from weintervene.config import SERVICES, Settings
from weintervene.contracts import SHARE_RECORDED, queue_name
from weintervene.runner import ALL_COMPONENTS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _documents():
    for path in sorted((DEPLOY / "k8s" / "base").glob("*.yaml")):
        yield from (d for d in yaml.safe_load_all(path.read_text()) if d)


def test_every_component_has_a_deployment_running_it():
    deployments = {d["metadata"]["name"]: d for d in _documents() if d["kind"] == "Deployment"}
    assert set(deployments) == set(ALL_COMPONENTS)
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["run", "--service", name]
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def _consumed_queue(service_class, event_type):
    """The queue nameko declares for the service's handler of ``event_type``."""
    for attr, member in vars(service_class).items():
        for entrypoint in getattr(member, "nameko_entrypoints", ()):
            if isinstance(entrypoint, EventHandler) and entrypoint.event_type == event_type:
                return queue_name(entrypoint.source_service, event_type, service_class.name, attr)
    raise AssertionError(f"{service_class.__name__} handles no {event_type}")


def test_analytics_autoscaler_watches_the_share_recorded_queue():
    scaled = [d for d in _documents() if d["kind"] == "ScaledObject"]
    assert len(scaled) == 1
    trigger = scaled[0]["spec"]["triggers"][0]["metadata"]
    assert trigger["queueName"] == _consumed_queue(AnalyticsService, SHARE_RECORDED)
    assert scaled[0]["spec"]["scaleTargetRef"]["name"] == "analytics"

    # A busy replica's prefetched (unacknowledged) messages count in the queue
    # length: they alone must not look like a backlog worth another replica.
    deployment = next(d for d in _documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == "analytics")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    settings = Settings.from_env({k: v for k, v in env.items() if v is not None})
    assert settings.analytics_prefetch >= settings.analytics_batch_size
    assert int(trigger["value"]) > settings.analytics_prefetch


def _secret_variables(container) -> set[str]:
    return {e["name"] for e in container.get("env", []) if "secretKeyRef" in (e.get("valueFrom") or {})}


def test_every_process_gets_the_secrets_it_refuses_to_start_without():
    """Outside development mode a process refuses to start with a default secret
    (weintervene.config.SECRET_SETTINGS): each Deployment, and the migrate Job, must get
    every one its component uses from the Secret, or it would never start."""
    from weintervene.config import SECRET_SETTINGS

    documents = list(_documents())
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    containers = [(name, d["spec"]["template"]["spec"]["containers"][0]) for name, d in deployments.items()]
    # Each service's init container migrates its database (the migrations compute keyed hashes).
    migrations = [c for d in deployments.values() for c in d["spec"]["template"]["spec"].get("initContainers", [])
                  if c["args"][0] == "migrate"]
    assert len(migrations) == len(SERVICES)
    containers += [("migrate", c) for c in migrations]
    for component, container in containers:
        wanted = {s.variable for s in SECRET_SETTINGS if component in s.used_by}
        assert wanted, component
        assert wanted <= _secret_variables(container), (component, wanted - _secret_variables(container))
