"""A leaked broker credential opens only its own service's queues and calls (issue 16).

Against the real broker, in a vhost of this module's own, with the users
:mod:`weintervene.broker` creates (a prefix of their own, removed at the end; ``guest``
is never touched): one service's user cannot consume another's queue, cannot bind a
queue of its own to copy another's requests, and cannot publish RPCs or events it has
no business with (``ACCESS_REFUSED``); and identity and referrals, each started as
``weintervene run --service <name>`` in a process of its own with its own user, still
serve a user's request end to end (referrals asks identity with the signed context it
received).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from urllib.parse import unquote, urlsplit

import amqp
import pytest
from amqp.exceptions import AccessRefused
from kombu import Connection
from nameko.standalone.rpc import ClusterRpcClient

from tests.support.infra import RABBIT_API, Vhost, random_suffix
from tests.support.signing import signed
from weintervene.broker import COMPONENTS, ensure_credentials, provision, remove_users, uri_for
from weintervene.contracts import SHARE_RECORDED, SUBSCRIPTIONS, queue_name
from weintervene.messaging import declare_topology

PASSWORD = "broker permissions passphrase 3"
RUNNING = ("identity", "referrals")
ANALYTICS_QUEUE = queue_name("referrals", SHARE_RECORDED, *SUBSCRIPTIONS[("referrals", SHARE_RECORDED)][0])


class Broker:
    def __init__(self, vhost: Vhost, credentials: dict):
        self.vhost, self.credentials = vhost, credentials
        self._connections: list = []
        self.children: dict = {}

    def uri(self, component: str) -> str:
        own = self.credentials[component]
        return uri_for(self.vhost.uri, own["user"], own["password"])

    def channel(self, component: str):
        """A raw AMQP channel as ``component``'s user (what a leaked credential gives)."""
        parts = urlsplit(self.uri(component))
        connection = amqp.Connection(host=f"{parts.hostname}:{parts.port or 5672}", userid=unquote(parts.username),
                                     password=unquote(parts.password), virtual_host=self.vhost.name)
        connection.connect()
        self._connections.append(connection)
        return connection.channel()

    def close(self):
        for connection in self._connections:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - refused channels may have closed it already
                pass


def _wait_until_healthy(uri: str, service: str, children, seconds: float = 40.0) -> None:
    deadline = time.monotonic() + seconds
    last = None
    while True:
        for name, child in children.items():
            assert child.poll() is None, f"{name} exited: {child.log.read_text()[-3000:]}"
        try:
            with ClusterRpcClient(uri=uri, timeout=5) as rpc:
                if getattr(rpc, service).health()["status"] == "ok":
                    return
        except Exception as exc:  # noqa: BLE001 - not up yet (UnknownService, timeout)
            last = exc
        assert time.monotonic() < deadline, f"{service} did not come up: {last!r}"
        time.sleep(1)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    vhost = Vhost()
    prefix = f"wi-t{random_suffix(6)}-"
    data_dir = tmp_path_factory.mktemp("broker")
    credentials = ensure_credentials(data_dir / "broker-credentials.json", prefix)
    children: dict[str, subprocess.Popen] = {}
    made = Broker(vhost, credentials)
    try:
        provision(RABBIT_API, vhost.name, credentials)
        with Connection(vhost.uri) as admin:  # as `weintervene run` does before starting the services
            declare_topology(connection=admin)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEINTERVENE_") and k != "AMQP_URI"}
        for name in RUNNING:
            log = data_dir / f"{name}.log"
            with open(log, "wb") as out:
                children[name] = subprocess.Popen(
                    [sys.executable, "-m", "weintervene.cli", "run", "--service", name],
                    # Development mode: the built-in context keys (tests/support/signing.py signs with them).
                    env={**env, "AMQP_URI": made.uri(name), "WEINTERVENE_DATA_DIR": str(data_dir),
                         "WEINTERVENE_DEV_MODE": "1"},
                    stdout=out, stderr=subprocess.STDOUT,
                )
            children[name].log = log
        for name in RUNNING:
            _wait_until_healthy(made.uri("operator"), name, children)
        made.children = children
        yield made
    finally:
        made.close()
        for child in children.values():
            child.terminate()
        for child in children.values():
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        remove_users(RABBIT_API, [credentials[c]["user"] for c in COMPONENTS])
        vhost.delete()


def _refused(action) -> str:
    with pytest.raises(AccessRefused) as refused:
        action()
    return str(refused.value)


def test_a_service_cannot_consume_another_services_queue(broker):
    assert "rpc-identity" in _refused(lambda: broker.channel("referrals").basic_consume("rpc-identity"))
    assert "rpc-referrals" in _refused(lambda: broker.channel("gateway").basic_consume("rpc-referrals"))
    assert "rpc-referrals" in _refused(lambda: broker.channel("identity").basic_consume("rpc-referrals"))
    # Referrals declares the durable queue of its own share events, but may not read it.
    assert ANALYTICS_QUEUE in _refused(lambda: broker.channel("referrals").basic_consume(ANALYTICS_QUEUE))
    # The control: the queue's consumer may (nothing is published meanwhile; cancelled at once).
    channel = broker.channel("analytics")
    channel.basic_cancel(channel.basic_consume(ANALYTICS_QUEUE))


def test_a_service_cannot_bind_a_queue_to_copy_anothers_requests(broker):
    """Its own reply queue is its to bind, with its own reply key; bound with ``identity.*`` it
    would receive a copy of every request to identity (with the signed contexts and arguments)."""
    channel = broker.channel("referrals")
    mine = f"rpc.reply-referrals-{uuid.uuid4()}"
    channel.queue_declare(mine, auto_delete=True)
    channel.queue_bind(mine, "nameko-rpc", f"reply-referrals-{uuid.uuid4()}")  # the control: its reply key
    assert "identity.*" in _refused(lambda: channel.queue_bind(mine, "nameko-rpc", "identity.*"))
    # Nor with a caller's reply key, learnt from the reply_to of the requests it serves: it
    # would copy every reply the gateway gets from the other services.
    gateway_key = f"reply-gateway-{uuid.uuid4()}"
    assert gateway_key in _refused(lambda: broker.channel("referrals").queue_bind(mine, "nameko-rpc", gateway_key))
    # Nor may it declare a queue under another service's name.
    assert "rpc.reply-gateway" in _refused(
        lambda: broker.channel("referrals").queue_declare(f"rpc.reply-gateway-{uuid.uuid4()}", auto_delete=True))


def _publish(channel, exchange: str, routing_key: str) -> None:
    channel.confirm_select()
    # Shaped as a request (a reply key no queue is bound to), so a service that gets it answers into the void.
    message = amqp.Message('{"args": [], "kwargs": {}}', content_type="application/json",
                           reply_to=str(uuid.uuid4()), correlation_id=str(uuid.uuid4()))
    channel.basic_publish(message, exchange=exchange, routing_key=routing_key)
    channel.basic_qos(0, 0, False)  # a round trip: a refused publish has closed the channel by its answer


@pytest.mark.parametrize("component, routing_key", [
    ("gateway", "identity.delivery_contacts"),   # a family's email and mobile, without a user's signature
    ("gateway", "referrals.export_tenant"),      # a whole tenant's referrals
    ("gateway", "identity.bootstrap_user"),      # the operator's CLI only
    ("referrals", "identity.fence_subject"),     # retention's
    ("referrals", "retention.request_deletion"),  # a service referrals never calls
    ("identity", "referrals.list_referrals"),    # identity calls nobody
    ("operator", "identity.export_tenant"),
])
def test_a_service_cannot_publish_rpcs_it_may_not_call(broker, component, routing_key):
    assert routing_key in _refused(lambda: _publish(broker.channel(component), "nameko-rpc", routing_key))


def test_a_service_cannot_publish_anothers_events(broker):
    assert "retention.events" in _refused(
        lambda: _publish(broker.channel("referrals"), "retention.events", "deletion_requested"))
    # Its own exchange, but not an event it publishes.
    assert "deletion_requested" in _refused(
        lambda: _publish(broker.channel("referrals"), "referrals.events", "deletion_requested"))


def test_the_calls_they_may_make_are_published(broker):
    """The control for the refusals above: the same users publish what is theirs to publish."""
    _publish(broker.channel("gateway"), "nameko-rpc", "identity.health")
    _publish(broker.channel("referrals"), "nameko-rpc", "identity.delivery_contacts")
    _publish(broker.channel("referrals"), "referrals.events", SHARE_RECORDED)


def test_services_work_end_to_end_with_their_own_users(broker):
    """identity and referrals in their own processes, each with its own user; the operator's
    CLI user bootstraps accounts; a school admin's signed request to referrals makes referrals
    ask identity (with the same signed context): identity's refusal comes back through it."""
    suffix = random_suffix(6)
    with ClusterRpcClient(uri=broker.uri("operator"), timeout=30) as rpc:
        ops = f"ops.{suffix}@broker.example"
        rpc.identity.bootstrap_user({"email": ops, "display_name": "Ops", "role": "operator", "tenant_id": None},
                                    PASSWORD)
        operator = rpc.identity.login({"email": ops, "password": PASSWORD}, client_ip="broker")["user"]
        school = rpc.identity.create_tenant(signed(operator), {"kind": "school", "name": f"Broker School {suffix}"})
        admin_email = f"admin.{suffix}@broker.example"
        rpc.identity.bootstrap_user({"email": admin_email, "display_name": "Admin", "role": "school_admin",
                                     "tenant_id": school["id"]}, PASSWORD)
        admin = rpc.identity.login({"email": admin_email, "password": PASSWORD}, client_ip="broker")["user"]
        with pytest.raises(Exception) as refused:  # identity's refusal, as referrals passes it on
            rpc.referrals.list_disclosures(signed(admin), str(uuid.uuid4()))
        assert "StudentNotFound" in f"{type(refused.value).__name__} {refused.value}"
        assert rpc.referrals.list_referrals(signed(admin), {})["items"] == []
    for name, child in broker.children.items():
        assert child.poll() is None, f"{name} stopped"
