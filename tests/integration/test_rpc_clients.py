"""weintervene's RPC on a real RabbitMQ: the clients declare their reply queue once per
connection (not before every request) and send transient requests; the entrypoints
reply without waiting for a confirm; calls still work after the broker cut every
connection."""
from __future__ import annotations

import time
from unittest import mock

import pytest
from kombu import Queue
from nameko import config as nameko_config
from nameko.amqp.publish import Publisher
from nameko.constants import NON_PERSISTENT
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import ClusterRpcClient

from tests.support.infra import Vhost
from weintervene.entrypoints import ReplyPublisher, RpcConsumer, rpc
from weintervene.rpc import RequestPublisher, ServiceRpc

pytestmark = pytest.mark.integration


class EchoService:
    name = "rpc_test_echo"

    @rpc
    def echo(self, value):
        return value


class CallerService:
    name = "rpc_test_caller"

    echo_rpc = ServiceRpc("rpc_test_echo")

    @rpc
    def call_echo(self, times):
        return [self.echo_rpc.echo(n) for n in range(times)]


@pytest.fixture
def running():
    vhost = Vhost()
    previous = dict(nameko_config)
    nameko_config.setup({"AMQP_URI": vhost.uri, "serializer": "json"})
    runner = ServiceRunner()
    runner.add_service(EchoService)
    runner.add_service(CallerService)
    runner.start()
    caller = next(c for c in runner.containers if c.service_name == "rpc_test_caller")
    try:
        yield vhost, caller
    finally:
        runner.stop()
        runner.kill()
        vhost.delete()
        nameko_config.setup(previous)


def call(caller, times):
    """CallerService.call_echo(times): ``times`` calls through weintervene's ServiceRpc."""
    with ClusterRpcClient(uri=nameko_config["AMQP_URI"], timeout=20) as client:
        return client.rpc_test_caller.call_echo(times)


def reply_queue_declarations(caller, times):
    client = next(d for d in caller.dependencies if isinstance(d, ServiceRpc))
    reply_queue = client.reply_listener.queue.name
    declared = []
    original = Queue.declare

    def spy(queue, *args, **kwargs):
        declared.append(queue.name)
        return original(queue, *args, **kwargs)

    with mock.patch.object(Queue, "declare", spy):
        assert call(caller, times) == list(range(times))
    return declared.count(reply_queue)


def test_the_reply_queue_is_declared_once_per_connection_not_per_request(running):
    _vhost, caller = running
    # Declared on each of the publisher's pooled connections (one or two here), not before
    # each of the 40 requests (nameko's own client declares it 40 times).
    assert reply_queue_declarations(caller, 20) + reply_queue_declarations(caller, 20) <= 3


def test_requests_are_published_transient_and_replies_without_confirms(running):
    _vhost, caller = running
    client = next(d for d in caller.dependencies if isinstance(d, ServiceRpc))
    assert client.publisher.delivery_mode == NON_PERSISTENT
    assert client.publisher.use_confirms  # UnknownService still detected at once
    [consumer] = [e for e in caller.extensions if isinstance(e, RpcConsumer)]
    assert (ReplyPublisher.use_confirms, ReplyPublisher.delivery_mode) == (False, NON_PERSISTENT)
    assert call(caller, 5) == [0, 1, 2, 3, 4] and consumer.consumer is not None
    # Replies (no confirm) and requests (confirm) in one process do not share the
    # transport options nameko writes into on every publish (kombu keys its pools by them).
    assert ReplyPublisher.transport_options is not Publisher.transport_options
    assert Publisher.transport_options["confirm_publish"] is True


def test_calls_work_again_after_the_broker_cut_every_connection(running):
    vhost, caller = running
    assert call(caller, 3) == [0, 1, 2]
    deadline = time.monotonic() + 30
    while not vhost.close_connections():  # the management API lists connections a few seconds late
        assert time.monotonic() < deadline, "the broker never listed the services' connections"
        time.sleep(0.5)
    while True:
        try:
            # A new connection declares the reply queue again before its first request.
            assert call(caller, 3) == [0, 1, 2]
            break
        except Exception:  # noqa: BLE001 - consumers still reconnecting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert reply_queue_declarations(caller, 20) <= 2


def published_requests(caller, times) -> list[tuple[bool, bool]]:
    """(mandatory, confirmed) of each request ``call(caller, times)`` publishes, as nameko's
    ``Publisher.publish`` receives it from ``RequestPublisher``'s decision."""
    seen = []
    original = Publisher.publish

    def spy(self, payload, **kwargs):
        if isinstance(self, RequestPublisher):
            seen.append((kwargs.get("mandatory", self.mandatory), kwargs.get("use_confirms", self.use_confirms)))
        return original(self, payload, **kwargs)

    with mock.patch.object(Publisher, "publish", spy):
        assert call(caller, times) == list(range(times))
    return seen


def test_requests_to_a_service_the_broker_confirmed_go_out_unconfirmed_for_a_while(running, monkeypatch):
    from weintervene import nameko_extensions

    monkeypatch.setattr(nameko_extensions, "KNOWN_ROUTES", nameko_extensions.KnownRoutes(ttl=1.0))
    # The first request is mandatory and confirmed (UnknownService at once if nobody
    # listens); the broker having confirmed the queue, the next ones are neither.
    assert published_requests(caller=running[1], times=5) == [(True, True)] + [(False, False)] * 4
    time.sleep(1.2)
    # The route is confirmed again once the knowledge is older than its lifetime.
    assert published_requests(caller=running[1], times=2) == [(True, True), (False, False)]
