"""deploy/ stays in step with the code: every component has a Deployment, and the
autoscaler watches the queue analytics really consumes."""
from pathlib import Path

import yaml

from weintervene.contracts import SHARE_RECORDED, queue_name
from weintervene.runner import ALL_COMPONENTS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _documents():
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        yield from (d for d in yaml.safe_load_all(path.read_text()) if d)


def test_every_component_has_a_deployment_running_it():
    deployments = {d["metadata"]["name"]: d for d in _documents() if d["kind"] == "Deployment"}
    assert set(deployments) == set(ALL_COMPONENTS)
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["run", "--service", name]
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_analytics_autoscaler_watches_the_share_recorded_queue():
    scaled = [d for d in _documents() if d["kind"] == "ScaledObject"]
    assert len(scaled) == 1
    trigger = scaled[0]["spec"]["triggers"][0]["metadata"]
    assert trigger["queueName"] == queue_name("referrals", SHARE_RECORDED, "analytics", "on_share_recorded")
