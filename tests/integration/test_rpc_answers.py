"""weintervene's ``rpc`` entrypoint answers as nameko's does, on a real RabbitMQ, after the
cuts in its cost (a reply encoded once by a publisher made at setup, the signature checked
on a signature made once, the method found in a dict): the same reply bytes and properties,
the same errors (an unserialisable result, wrong arguments, an unknown method), and every
caller its own answer under concurrency.

Each check runs against a twin service on nameko's own ``rpc`` where the two must agree."""
from __future__ import annotations

import uuid

import eventlet
import kombu.serialization
import psycopg2.errors
import pytest
from kombu import Connection, Exchange, Queue
from nameko import config as nameko_config
from nameko import rpc as nameko_rpc
from nameko.exceptions import IncorrectSignature, MethodNotFound, RemoteError, UnknownService
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import ClusterRpcClient
from sqlalchemy.exc import ProgrammingError

from tests.support.infra import Vhost
from weintervene.entrypoints import rpc
from weintervene.errors import Unavailable
from weintervene.rpc import ServiceRpc

pytestmark = pytest.mark.integration


class Unserialisable:
    def __repr__(self):
        return "<Unserialisable>"


def answering(name, decorator):
    class Answering:
        @decorator
        def echo(self, value, suffix="", *, shout=False):
            return f"{value}{suffix}".upper() if shout else f"{value}{suffix}"

        @decorator
        def same(self, value):
            return value

        @decorator
        def unserialisable(self):
            return {"fine": 1, "not": Unserialisable()}

        @decorator
        def fails(self):
            raise ValueError("it failed")

        @decorator
        def refused_by_the_database(self):
            raise ProgrammingError("SELECT 1", {}, psycopg2.errors.TooManyConnections(
                "sorry, too many clients already"))

    Answering.name = name
    return Answering


class FanOutService:
    """Many concurrent calls through weintervene's ServiceRpc, each checking its own answer;
    requests sent through ours and nameko's client to a queue the test reads; a call to a
    service that does not exist."""

    name = "rpc_answers_fan_out"
    ours = ServiceRpc("rpc_answers_ours")
    spy_ours = ServiceRpc("rpc_answers_spy")
    spy_nameko = nameko_rpc.ServiceRpc("rpc_answers_spy")
    ghost = ServiceRpc("rpc_answers_ghost")

    @rpc
    def send_to_spy(self, client, *args, **kwargs):
        getattr(self, client).look.call_async(*args, **kwargs)  # nobody answers: do not wait

    @rpc
    def call_ghost(self):
        try:
            self.ghost.anything()
        except UnknownService as exc:
            return f"UnknownService: {exc}"

    @rpc
    def fan_out(self, calls):
        pool = eventlet.GreenPool(32)
        answers = list(pool.imap(lambda n: (n, self.ours.echo(n, suffix=f"-{n}")), range(calls)))
        return [n for n, answer in answers if answer != f"{n}-{n}"]


SERVICES = {"ours": "rpc_answers_ours", "nameko": "rpc_answers_nameko"}


@pytest.fixture(scope="module")
def running():
    vhost = Vhost()
    previous = dict(nameko_config)
    nameko_config.setup({"AMQP_URI": vhost.uri, "serializer": "json"})
    runner = ServiceRunner()
    runner.add_service(answering(SERVICES["ours"], rpc))
    runner.add_service(answering(SERVICES["nameko"], nameko_rpc.rpc))
    runner.add_service(FanOutService)
    runner.start()
    try:
        with ClusterRpcClient(uri=vhost.uri, timeout=30) as client:
            yield vhost, client
    finally:
        runner.stop()
        runner.kill()
        vhost.delete()
        nameko_config.setup(previous)


def raw_call(uri, service, method, args, kwargs=None):
    """Publish one request by hand and return the reply message as the broker delivers it."""
    reply_key = str(uuid.uuid4())
    exchange = Exchange("nameko-rpc", type="topic", durable=True)
    correlation_id = str(uuid.uuid4())
    with Connection(uri) as conn:
        queue = Queue(f"rpc-answers-raw-{reply_key}", exchange=exchange, routing_key=reply_key,
                      auto_delete=True)(conn.default_channel)
        queue.declare()
        conn.Producer().publish({"args": args, "kwargs": kwargs or {}}, exchange=exchange,
                                routing_key=f"{service}.{method}", serializer="json",
                                reply_to=reply_key, correlation_id=correlation_id)
        deadline = eventlet.Timeout(20)
        try:
            while True:
                message = queue.get(no_ack=True)
                if message is not None:
                    break
                eventlet.sleep(0.02)
        finally:
            deadline.cancel()
    assert message.properties["correlation_id"] == correlation_id
    return message


@pytest.mark.parametrize("method, args, kwargs", [
    ("echo", ["a"], {}), ("echo", ["a", "b"], {"shout": True}),
    ("same", [{"nested": [1, 2.5, None, "é"], "n": 10**20}], {}),
])
def test_a_reply_is_the_same_bytes_and_properties_as_nameko_sends(running, method, args, kwargs):
    vhost, _client = running
    ours = raw_call(vhost.uri, SERVICES["ours"], method, args, kwargs)
    theirs = raw_call(vhost.uri, SERVICES["nameko"], method, args, kwargs)
    assert ours.body == theirs.body
    assert ours.body == kombu.serialization.dumps({"result": theirs.decode()["result"], "error": None}, "json")[2]
    for name in ("content_type", "content_encoding"):
        assert ours.properties[name] == theirs.properties[name]
    assert ours.headers == theirs.headers == {}


def test_a_database_refusing_work_for_now_answers_unavailable_where_nameko_answers_a_remote_error(running):
    _vhost, client = running
    with pytest.raises(Unavailable) as ours:
        client[SERVICES["ours"]].refused_by_the_database()
    assert ours.value.code == "database_unavailable"  # 503 at the gateway: try again
    with pytest.raises(RemoteError) as theirs:
        client[SERVICES["nameko"]].refused_by_the_database()
    assert theirs.value.exc_type == "ProgrammingError"  # what the gateway answered 500 for


def remote_errors(client, method: str) -> dict:
    """{"ours": RemoteError, "nameko": RemoteError}: what calling ``method`` of each twin raised."""
    errors = {}
    for kind, service in SERVICES.items():
        with pytest.raises(RemoteError) as raised:
            getattr(client[service], method)()
        errors[kind] = raised.value
    return errors


def test_an_unserialisable_result_answers_unserializable_value_error_and_the_service_lives_on(running):
    _vhost, client = running
    errors = remote_errors(client, "unserialisable")
    assert errors["ours"].exc_type == errors["nameko"].exc_type == "UnserializableValueError"
    assert str(errors["ours"]) == str(errors["nameko"])
    assert "<Unserialisable>" in str(errors["ours"])
    assert client[SERVICES["ours"]].echo("still here") == "still here"


def test_an_error_in_the_method_answers_the_same_remote_error(running):
    _vhost, client = running
    errors = remote_errors(client, "fails")
    assert errors["ours"].exc_type == errors["nameko"].exc_type == "ValueError"
    assert errors["ours"].value == errors["nameko"].value


@pytest.mark.parametrize("args, kwargs", [
    ([], {}),  # missing the required argument
    (["a", "b", "c"], {}),  # one too many
    (["a"], {"nope": 1}),  # an unknown keyword
    (["a"], {"value": "again"}),  # the same argument twice
    (["a", "b", True], {}),  # a keyword-only argument given by position
])
def test_wrong_arguments_raise_incorrect_signature_with_nameko_s_message(running, args, kwargs):
    _vhost, client = running
    messages = {}
    for kind, service in SERVICES.items():
        with pytest.raises(IncorrectSignature) as raised:
            client[service].echo(*args, **kwargs)
        messages[kind] = str(raised.value)
    assert messages["ours"] == messages["nameko"]


def test_right_arguments_in_every_form_are_accepted(running):
    _vhost, client = running
    ours = client[SERVICES["ours"]]
    assert ours.echo("a") == "a"
    assert ours.echo("a", "b") == "ab"
    assert ours.echo(value="a", suffix="b", shout=True) == "AB"
    assert ours.echo("a", suffix="b") == "ab"


def test_an_unknown_method_raises_method_not_found(running):
    _vhost, client = running
    for service in SERVICES.values():
        with pytest.raises(MethodNotFound) as raised:
            client[service].no_such_method()
        assert str(raised.value) == "no_such_method"


def test_every_concurrent_caller_gets_its_own_answer(running):
    _vhost, client = running
    assert client.rpc_answers_fan_out.fan_out(400) == []


def test_a_call_to_a_service_that_does_not_exist_fails_at_once_with_unknown_service(running):
    _vhost, client = running
    assert client.rpc_answers_fan_out.call_ghost() == "UnknownService: Unknown service `rpc_answers_ghost`"


def test_a_request_is_the_same_message_as_nameko_s_client_sends_but_transient(running):
    vhost, client = running
    exchange = Exchange("nameko-rpc", type="topic", durable=True)
    requests = {}
    with Connection(vhost.uri) as conn:
        spy = Queue("rpc-answers-spy", exchange=exchange, routing_key="rpc_answers_spy.*",
                    auto_delete=True)(conn.default_channel)
        spy.declare()
        for kind in ("ours", "nameko"):
            client.rpc_answers_fan_out.send_to_spy(f"spy_{kind}", {"nested": ["é", 1.5]}, 7, flag=True)
            deadline = eventlet.Timeout(20)
            try:
                while (message := spy.get(no_ack=True)) is None:
                    eventlet.sleep(0.02)
            finally:
                deadline.cancel()
            requests[kind] = message
    ours, theirs = requests["ours"], requests["nameko"]
    assert ours.body == theirs.body
    assert ours.decode() == {"args": [{"nested": ["é", 1.5]}, 7], "kwargs": {"flag": True}}
    assert ours.delivery_info["routing_key"] == theirs.delivery_info["routing_key"] == "rpc_answers_spy.look"
    for name in ("content_type", "content_encoding", "priority"):
        assert ours.properties.get(name) == theirs.properties.get(name), name
    assert ours.properties["delivery_mode"] == 1 and theirs.properties["delivery_mode"] == 2  # ours transient by design
    assert ours.properties["reply_to"] and ours.properties["correlation_id"]
    assert ours.properties["correlation_id"] != theirs.properties["correlation_id"]
    assert ours.headers.keys() == theirs.headers.keys() and "nameko.call_id_stack" in ours.headers
    assert ours.headers["nameko.call_id_stack"][0].startswith("standalone_rpc_client")
    assert ours.headers["nameko.call_id_stack"][-1].startswith("rpc_answers_fan_out.send_to_spy.")
