"""What weintervene's RPC layer keeps from one call to the next instead of rebuilding it, and
that it decides as nameko would: the signature an ``rpc`` method's arguments are checked
against, the reply queue's channel-bound copy, the prometheus series, the producer pools
of a service that answers RPCs but makes none. No broker needed."""
from __future__ import annotations

import functools
import gc
import inspect
import weakref

import pytest
from kombu import Exchange, Queue
from nameko.amqp import publish
from nameko.exceptions import IncorrectSignature
from prometheus_client import REGISTRY

import weintervene.entrypoints  # noqa: F401  (must apply the producer-pool patch by itself)
from weintervene.entrypoints import Rpc, signature_to_check
from weintervene.observability import EntrypointMetrics
from weintervene.rpc import ReplyQueueOncePerConnection


def wrapping(fn):
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        return fn(self, *args, **kwargs)
    return wrapper


class Methods:
    def none(self): ...
    def one(self, a): ...
    def defaults(self, a, b=2, c=None): ...
    def star(self, a, *rest): ...
    def keywords(self, a, **extra): ...
    def keyword_only(self, a, *, flag=False, must): ...
    def everything(self, a, b=1, *rest, flag=False, **extra): ...
    @wrapping
    def wrapped(self, a): ...  # nameko checks the wrapper's (*args, **kwargs), not ``a``
    def positional_only(self, a, /, **extra): ...
    @staticmethod
    def static(a): ...


CALLS = [
    ((), {}), ((1,), {}), ((1, 2), {}), ((1, 2, 3, 4), {}), ((), {"a": 1}), ((1,), {"a": 1}),
    ((1,), {"b": 2}), ((1,), {"must": 1}), ((1,), {"flag": True, "must": 2}), ((1,), {"zzz": 1}),
    ((1, 2), {"must": 3}), ((), {"self": 1}), ((1,), {"self": 1}), ((), {"a": 1, "must": 1}),
]


def nameko_accepts(fn, args, kwargs) -> bool:
    try:
        inspect.getcallargs(fn, None, *args, **kwargs)
        return True
    except TypeError:
        return False


class FakeContainer:
    service_cls = Methods
    service_name = "methods"


def entrypoint(method_name):
    rpc = Rpc()
    rpc.method_name = method_name
    rpc.container = FakeContainer()
    rpc.signature = signature_to_check(getattr(Methods, method_name))
    return rpc


@pytest.mark.parametrize("method_name", [n for n in vars(Methods) if not n.startswith("_")])
def test_the_signature_check_accepts_and_refuses_exactly_what_nameko_s_does(method_name):
    check = entrypoint(method_name).check_signature
    fn = getattr(Methods, method_name)
    for args, kwargs in CALLS:
        if nameko_accepts(fn, args, kwargs):
            check(args, kwargs)
        else:
            with pytest.raises(IncorrectSignature) as raised:
                check(args, kwargs)
            try:
                inspect.getcallargs(fn, None, *args, **kwargs)
            except TypeError as exc:
                assert str(raised.value) == str(exc)  # nameko's very message


def test_the_signature_is_the_unwrapped_function_s_own_and_none_where_bind_would_differ():
    assert list(signature_to_check(Methods.wrapped).parameters) == ["self", "args", "kwargs"]
    assert signature_to_check(Methods.positional_only) is None
    # The case that makes positional-only parameters nameko's alone: bind lets ``a`` into **extra.
    assert not nameko_accepts(Methods.positional_only, (1,), {"a": 2})
    with pytest.raises(IncorrectSignature):
        entrypoint("positional_only").check_signature((1,), {"a": 2})


def test_before_setup_the_check_is_nameko_s():
    rpc = Rpc()
    rpc.method_name = "one"
    rpc.container = FakeContainer()
    assert rpc.signature is None
    rpc.check_signature((1,), {})
    with pytest.raises(IncorrectSignature):
        rpc.check_signature((), {})


class Channel:
    """Enough of a channel for kombu to bind an entity to it."""

    connection = None


def test_the_reply_queue_is_bound_once_per_channel():
    queue = ReplyQueueOncePerConnection("rpc.reply-x", exchange=Exchange("nameko-rpc", type="topic"),
                                        routing_key="x", queue_arguments={"x-expires": 300000})
    first, second = Channel(), Channel()
    bound = queue.bind(first)
    assert bound is not queue and bound.channel is first and bound.exchange.channel is first
    assert not queue.is_bound  # the original stays unbound, as kombu leaves it
    assert queue.bind(first) is bound
    other = queue.bind(second)
    assert other is not bound and other.channel is second
    assert (bound.name, bound.routing_key, bound.queue_arguments) == (queue.name, queue.routing_key,
                                                                      queue.queue_arguments)
    assert hash(bound) == hash(queue)  # the key kombu remembers a declaration by


def test_a_copy_moved_to_another_channel_is_not_handed_out_for_the_old_one():
    queue = ReplyQueueOncePerConnection("rpc.reply-y", exchange=Exchange("nameko-rpc", type="topic"), routing_key="y")
    old, new = Channel(), Channel()
    bound = queue.bind(old)
    bound.revive(new)  # what kombu does to an entity whose channel died
    again = queue.bind(old)
    assert again is not bound and again.channel is old


def test_bound_copies_go_with_their_channel():
    queue = ReplyQueueOncePerConnection("rpc.reply-z", exchange=Exchange("nameko-rpc", type="topic"), routing_key="z")
    channel = Channel()
    copy = weakref.ref(queue.bind(channel))
    assert queue.bind(channel) is copy()
    del channel
    gc.collect()  # the channel and its copy refer to each other
    assert copy() is None


def test_a_plain_queue_still_binds_a_new_copy_every_time():
    queue = Queue("plain", exchange=Exchange("nameko-rpc", type="topic"), routing_key="p")
    channel = Channel()
    assert queue.bind(channel) is not queue.bind(channel)


class Entrypoint:
    def __init__(self, method_name):
        self.method_name = method_name


class Worker:
    def __init__(self, method_name):
        self.entrypoint = Entrypoint(method_name)


class Coded(Exception):
    code = "not_found"


def samples(name, labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_entrypoint_metrics_count_every_call_in_its_series():
    metrics = EntrypointMetrics()
    metrics.container = type("Container", (), {"service_name": "unit_metrics"})()
    metrics.setup()
    ok = {"service": "unit_metrics", "entrypoint": "get", "outcome": "ok"}
    coded = {**ok, "outcome": "not_found"}
    typed = {**ok, "outcome": "ValueError"}
    before = [samples("weintervene_entrypoint_calls_total", labels) for labels in (ok, coded, typed)]
    timed = samples("weintervene_entrypoint_seconds_count", {"service": "unit_metrics", "entrypoint": "get"})
    for _ in range(3):
        worker = Worker("get")
        metrics.worker_setup(worker)
        metrics.worker_result(worker)
    for exc in (Coded(), Coded(), ValueError()):
        worker = Worker("get")
        metrics.worker_setup(worker)
        metrics.worker_result(worker, exc_info=(type(exc), exc, None))
    metrics.worker_result(Worker("get"))  # no start recorded: counted, not timed
    after = [samples("weintervene_entrypoint_calls_total", labels) for labels in (ok, coded, typed)]
    assert [a - b for a, b in zip(after, before)] == [4, 2, 1]
    assert samples("weintervene_entrypoint_seconds_count",
                   {"service": "unit_metrics", "entrypoint": "get"}) - timed == 6


def test_a_service_that_only_answers_rpcs_finds_its_producer_pools_once():
    # identity makes no RPC of its own, so it never imported weintervene.rpc's clients;
    # it built a kombu Connection for every reply until weintervene.entrypoints applied this.
    assert publish.get_producer.weintervene_pools_found_once


class Pool:
    def __init__(self, free):
        self.slots = free

    def free(self):
        return self.slots


class WorkerContainer(FakeContainer):
    """Records how a request's worker was started."""

    def __init__(self, free, being_killed=False):
        self._worker_pool = Pool(free)
        self.being_killed = being_killed
        self.started = []

    def spawn_worker(self, entrypoint, args, kwargs, context_data=None, handle_result=None):
        if self.being_killed:
            from nameko.exceptions import ContainerBeingKilled
            raise ContainerBeingKilled()
        self.started.append(("worker", args, kwargs, context_data))

    def spawn_managed_thread(self, fn, identifier=None):
        self.started.append(("waiting thread", identifier))


class Message:
    headers = {"nameko.call_id_stack": ["caller.method.1"], "nameko.language": "en"}


def rpc_on(container):
    rpc = entrypoint("defaults")
    rpc.container = container
    return rpc


def test_with_room_in_the_pool_the_worker_starts_at_once_with_the_call_s_context():
    container = WorkerContainer(free=3)
    rpc_on(container).handle_message({"args": [1], "kwargs": {"b": 5}}, Message())
    assert container.started == [("worker", [1], {"b": 5},
                                  {"call_id_stack": ["caller.method.1"], "language": "en"})]


def test_with_the_pool_full_nameko_s_waiting_thread_starts_it():
    container = WorkerContainer(free=0)
    rpc_on(container).handle_message({"args": [1], "kwargs": {}}, Message())
    assert container.started == [("waiting thread", "Rpc.wait_for_worker_pool[methods.defaults]")]


def test_a_request_is_refused_before_any_worker_starts():
    from nameko.exceptions import MalformedRequest

    container = WorkerContainer(free=3)
    with pytest.raises(MalformedRequest):
        rpc_on(container).handle_message({"args": [1]}, Message())
    with pytest.raises(IncorrectSignature):
        rpc_on(container).handle_message({"args": [], "kwargs": {}}, Message())
    assert container.started == []


def test_a_request_reaching_a_dying_container_is_requeued():
    container = WorkerContainer(free=3, being_killed=True)
    rpc = rpc_on(container)
    requeued = []
    rpc.rpc_consumer = type("Consumer", (), {})()
    rpc.rpc_consumer.consumer = type("Inner", (), {"requeue_message": staticmethod(requeued.append)})()
    message = Message()
    rpc.handle_message({"args": [1], "kwargs": {}}, message)
    assert requeued == [message]


@pytest.mark.parametrize("body, content_type, content_encoding, serializer", [
    ({"result": [1, "é"], "error": None}, None, None, "json"),
    ('{"a": 1}', "application/json", "utf-8", "json"),
    ("plain", "text/plain", None, None),
    (b"bytes", "application/data", None, None),
    (b"bytes", "a/b", "latin-1", None),
])
def test_a_body_is_encoded_exactly_as_kombu_prepares_it(body, content_type, content_encoding, serializer):
    from kombu import Producer

    from weintervene.rpc import encoded

    kombu_body, kombu_type, kombu_encoding = Producer(None)._prepare(body, serializer, content_type,
                                                                     content_encoding, None, {})
    assert encoded(body, content_type, content_encoding, serializer) == (kombu_type, kombu_encoding, kombu_body)


@pytest.mark.parametrize("options, kwargs", [
    ({}, {"headers": {"x": 1}}),  # headers other than the call's context
    ({}, {"delivery_mode": 2}),
    ({"compression": "zlib"}, {}),
    ({"expiration": 5}, {}),
    ({"retry": False}, {}),
    ({"priority_boost": 1}, {}),  # a publisher option kombu would pass on as a property
])
def test_any_other_shape_of_message_goes_through_nameko_s_publish(monkeypatch, options, kwargs):
    from nameko.amqp.publish import Publisher

    from weintervene.rpc import RpcPublisher

    through_nameko = []
    monkeypatch.setattr(Publisher, "publish", lambda self, payload, **kw: through_nameko.append((payload, kw)))
    publisher = RpcPublisher("amqp://guest:guest@127.0.0.1:5999/unit", exchange=Exchange("nameko-rpc"), **options)
    publisher.publish({"args": []}, routing_key="svc.method", **kwargs)
    assert through_nameko == [({"args": []}, {"routing_key": "svc.method", **kwargs})]


def test_the_gateway_s_http_entrypoints_check_on_a_signature_made_once_as_nameko_would():
    from gateway.http import HttpEntrypoint
    from gateway.service import GatewayService

    routes = {name for cls in GatewayService.__mro__ for name, fn in vars(cls).items()
              if any(isinstance(e, HttpEntrypoint) for e in getattr(fn, "nameko_entrypoints", ()))}
    assert len(routes) > 20
    for name in routes:
        entry = HttpEntrypoint("GET", "/x")
        entry.method_name = name
        entry.container = type("Container", (), {"service_cls": GatewayService})()
        entry.signature = signature_to_check(getattr(GatewayService, name))
        fn = getattr(GatewayService, name)
        for args, kwargs in [(("request",), {}), (("request",), {"student_id": "s"}), ((), {})]:
            if nameko_accepts(fn, args, kwargs):
                entry.check_signature(args, kwargs)
            else:
                with pytest.raises(IncorrectSignature):
                    entry.check_signature(args, kwargs)


def test_a_declaration_is_skipped_only_where_kombu_would_find_it_remembered():
    from types import SimpleNamespace

    from weintervene.rpc import already_declared

    reply_queue = ReplyQueueOncePerConnection("rpc.reply-d", exchange=Exchange("nameko-rpc", type="topic"),
                                              routing_key="d")
    plain = Queue("rpc.reply-d", exchange=Exchange("nameko-rpc", type="topic"), routing_key="d",
                  queue_arguments={"x-expires": 300000})  # nameko's own reply queue
    remembered = SimpleNamespace(connection=SimpleNamespace(client=SimpleNamespace(declared_entities={hash(reply_queue)})))
    forgotten = SimpleNamespace(connection=SimpleNamespace(client=SimpleNamespace(declared_entities=set())))
    closed = SimpleNamespace(connection=None)
    assert already_declared(reply_queue, remembered)
    assert not already_declared(reply_queue, forgotten)  # a new connection: kombu declares it
    assert not already_declared(reply_queue, closed)  # kombu raises its "channel disconnected"
    assert not already_declared(plain, remembered)  # x-expires: kombu declares it every time
