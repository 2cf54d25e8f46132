"""weintervene.rpc: a service's RPC requests no longer re-declare its reply queue each time,
and calls still get their replies after the reply queue is lost (a broker restart loses it:
it is not durable)."""
from __future__ import annotations

import time
from unittest import mock

import eventlet
import kombu.pools
import pytest
import requests
from kombu import Queue
from nameko import rpc as nameko_rpc
from nameko.rpc import rpc
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import ClusterRpcClient

from tests.support.infra import RABBIT_API
from weintervene import rpc as weintervene_rpc

pytestmark = pytest.mark.integration

CALLS = 40


class ProbeEcho:
    name = "rpc_probe_echo"

    @rpc
    def echo(self, value):
        return value


def caller(rpc_class):
    class ProbeCaller:
        name = "rpc_probe_caller"
        echo_rpc = rpc_class("rpc_probe_echo")

        @rpc
        def relay(self, n):
            return [self.echo_rpc.echo(i) for i in range(n)]

    return ProbeCaller


@pytest.fixture
def start(system):
    runners = []

    def run(rpc_class):
        runner = ServiceRunner()
        runner.add_service(ProbeEcho)
        runner.add_service(caller(rpc_class))
        runner.start()
        runners.append(runner)
        return runner

    yield run
    for runner in runners:
        # kill, not stop: after a cut connection a relay may still wait for a reply that was
        # lost with it (nameko calls have no timeout), and stop() waits for every worker.
        runner.kill()


def reply_queue_declarations(client, n) -> list[str]:
    """The caller's reply-queue declarations while it makes ``n`` calls."""
    original = Queue.queue_declare
    declared = []

    def counting(self, *args, **kwargs):
        if self.name.startswith("rpc.reply-rpc_probe_caller"):
            declared.append(self.name)
        return original(self, *args, **kwargs)

    with mock.patch.object(Queue, "queue_declare", counting):
        assert client.rpc_probe_caller.relay(n) == list(range(n))
    return declared


def test_requests_declare_the_reply_queue_once_per_connection_not_per_call(system, start):
    start(weintervene_rpc.ServiceRpc)
    with ClusterRpcClient(uri=system.settings.amqp_uri) as client:
        # At most once on each pooled connection (kombu forgets it when one reconnects).
        first = reply_queue_declarations(client, CALLS)
        assert len(first) <= kombu.pools.get_limit() < CALLS
        assert len(reply_queue_declarations(client, CALLS)) <= len(first)


def test_nameko_alone_declares_it_before_every_request(system, start):
    """What weintervene.rpc saves: three broker round trips per call (declare exchange,
    queue, binding), of which this counts the queue's."""
    start(nameko_rpc.ServiceRpc)
    with ClusterRpcClient(uri=system.settings.amqp_uri) as client:
        client.rpc_probe_caller.relay(2)
        assert len(reply_queue_declarations(client, CALLS)) >= CALLS


def test_calls_get_their_replies_after_the_reply_queue_is_lost(system, start):
    runner = start(weintervene_rpc.ServiceRpc)
    [listener] = [e for e in runner.service_map["rpc_probe_caller"].subextensions
                  if isinstance(e, nameko_rpc.ReplyListener)]
    api = RABBIT_API.rstrip("/")
    vhost = system.settings.amqp_uri.rsplit("/", 1)[1]
    with ClusterRpcClient(uri=system.settings.amqp_uri) as client:
        assert client.rpc_probe_caller.relay(3) == [0, 1, 2]
        quoted = requests.utils.quote(listener.queue.name, safe="")
        requests.delete(f"{api}/api/queues/{vhost}/{quoted}", timeout=10).raise_for_status()
        # The reply consumer is cancelled with its queue, reconnects and declares it again.
        deadline = time.monotonic() + 30
        while requests.get(f"{api}/api/queues/{vhost}/{quoted}", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the reply queue was never declared again"
            time.sleep(0.1)
        with eventlet.Timeout(30):
            assert client.rpc_probe_caller.relay(3) == [0, 1, 2]


@pytest.mark.parametrize("rpc_class", [weintervene_rpc.ServiceRpc, nameko_rpc.ServiceRpc], ids=["ours", "nameko"])
def test_calls_get_their_replies_after_a_broker_restart(system, start, rpc_class):
    """What a restart does to a caller: every connection dropped and the (not durable) reply
    queue gone. The pooled connections reconnect, forget what they declared, and the first
    request on each declares the queue again; the reply consumer re-declares it too."""
    runner = start(rpc_class)
    [listener] = [e for e in runner.service_map["rpc_probe_caller"].subextensions
                  if isinstance(e, nameko_rpc.ReplyListener)]
    api = RABBIT_API.rstrip("/")
    vhost = system.settings.amqp_uri.rsplit("/", 1)[1]
    try:
        with ClusterRpcClient(uri=system.settings.amqp_uri) as client:
            assert client.rpc_probe_caller.relay(3) == [0, 1, 2]
        quoted = requests.utils.quote(listener.queue.name, safe="")
        requests.delete(f"{api}/api/queues/{vhost}/{quoted}", timeout=10).raise_for_status()
        deadline = time.monotonic() + 30
        while not (connections := requests.get(f"{api}/api/vhosts/{vhost}/connections", timeout=10).json()):
            assert time.monotonic() < deadline, "the broker lists no connection"  # its list lags a moment
            time.sleep(0.5)
        for connection in connections:
            requests.delete(f"{api}/api/connections/{requests.utils.quote(connection['name'], safe='')}", timeout=10)
        deadline = time.monotonic() + 60
        while True:
            kombu.pools.reset()  # this process's own pooled connections died with the cut: not under test
            try:
                with eventlet.Timeout(10), ClusterRpcClient(uri=system.settings.amqp_uri) as client:
                    assert client.rpc_probe_caller.relay(3) == [0, 1, 2]
                break
            except (Exception, eventlet.Timeout):
                assert time.monotonic() < deadline, "no reply after the restart"
                time.sleep(0.5)
    finally:
        kombu.pools.reset()  # this process's pooled connections died with the cut
