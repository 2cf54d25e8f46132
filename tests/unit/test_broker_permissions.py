"""The broker permission table (weintervene.broker) says what issue 16 asks, and the
deployment carries the same table."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from weintervene.broker import COMPONENTS, INTERNAL_RPCS, RPC_EXCHANGE, k8s_manifests, k8s_secret_name, permissions_for
from weintervene.config import SERVICES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base"


def _rpc_topic(component):
    return next(t for t in permissions_for(component).topics if t.exchange == RPC_EXCHANGE)


def test_internal_rpcs_are_published_only_by_their_callers():
    for (service, method), callers in INTERNAL_RPCS.items():
        for component in COMPONENTS:
            allowed = re.fullmatch(_rpc_topic(component).write, f"{service}.{method}") is not None
            assert allowed == (component in callers), (component, service, method)


def test_nobody_reads_another_services_queues_or_binds_its_requests():
    for component in COMPONENTS:
        allowed = permissions_for(component)
        for other in SERVICES:
            if other != component:
                assert not re.fullmatch(allowed.read, f"rpc-{other}")
                assert not re.fullmatch(allowed.configure, f"rpc.reply-{other}-0b6f")
                assert not re.fullmatch(_rpc_topic(component).read, f"{other}.*")
        if component in SERVICES:
            assert re.fullmatch(allowed.read, f"rpc-{component}")
            assert re.fullmatch(_rpc_topic(component).read, f"{component}.*")


def test_the_deployment_carries_the_same_table_and_each_deployment_its_own_user():
    generated = k8s_manifests()
    assert (DEPLOY / "09-broker-users.yaml").read_text() == generated, \
        "regenerate: python -m weintervene.broker > deploy/k8s/base/09-broker-users.yaml"
    kinds = [d["kind"] for d in yaml.safe_load_all(generated) if d]
    assert kinds.count("User") == len(COMPONENTS)
    for path in sorted(DEPLOY.glob("0*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document["kind"] == "Deployment":
                name = document["metadata"]["name"]
                env = {e["name"]: e for e in document["spec"]["template"]["spec"]["containers"][0]["env"]}
                assert env["AMQP_URI"]["valueFrom"]["secretKeyRef"]["name"] == k8s_secret_name(name)
                assert ("WEINTERVENE_CONTEXT_SIGNING_KEY" in env) == (name == "gateway")
                assert "WEINTERVENE_CONTEXT_VERIFY_KEYS" in env


def test_every_subscribed_event_is_one_its_source_may_publish():
    """A new event in ``SUBSCRIPTIONS`` without its publisher's permission refused the
    publisher's start (`make run`: retention's ``platform_action``, ACCESS_REFUSED)."""
    from weintervene.broker import EVENTS_PUBLISHED
    from weintervene.contracts import SUBSCRIPTIONS

    for source, event in SUBSCRIPTIONS:
        assert event in EVENTS_PUBLISHED[source], (source, event)
