"""weintervene.nameko_extensions without a broker: what our RPC entrypoint refuses before any
worker starts, the reply queue kombu may remember, the replies' own transport options, and
the prometheus series every entrypoint counts in."""
from __future__ import annotations

import pytest
from kombu import Exchange, Queue
from nameko.amqp.publish import Publisher
from nameko.exceptions import IncorrectSignature, MalformedRequest
from prometheus_client import REGISTRY

from weintervene.context_signing import sign_context
from weintervene.errors import Unauthorized
from weintervene.nameko_extensions import ReplyPublisher, ReplyQueueOncePerConnection, RequestPublisher, Rpc
from weintervene.observability import EntrypointMetrics


class Methods:
    def with_auth(self, auth, student_id): ...
    def internal(self, request): ...


class RecordingContainer:
    """Records how a request's worker was started."""

    service_cls = Methods
    service_name = "methods"

    def __init__(self):
        self.started = []

    def spawn_managed_thread(self, fn, identifier=None):
        self.started.append(identifier)


class Message:
    headers = {"nameko.call_id_stack": ["caller.method.1"]}


def entrypoint(method_name, **kwargs):
    rpc = Rpc(**kwargs)
    rpc.method_name = method_name
    rpc.container = RecordingContainer()
    rpc.rpc_consumer = type("Consumer", (), {"register_provider": lambda self, provider: None})()
    rpc.setup()
    return rpc


AUTH = {"user_id": "u1", "tenant_id": "t1", "role": "teacher"}


def test_a_request_is_refused_before_any_worker_starts():
    rpc = entrypoint("with_auth")
    with pytest.raises(MalformedRequest):
        rpc.handle_message({"args": [None]}, Message())
    with pytest.raises(IncorrectSignature):
        rpc.handle_message({"args": [], "kwargs": {}}, Message())
    with pytest.raises(Unauthorized):
        rpc.handle_message({"args": [AUTH, "s1"], "kwargs": {}}, Message())  # not signed
    with pytest.raises(Unauthorized):
        rpc.handle_message({"args": [], "kwargs": {"auth": {**sign_context(AUTH, 30), "role": "operator"},
                                                   "student_id": "s1"}}, Message())  # altered
    assert rpc.container.started == []


def test_a_signed_context_or_none_goes_to_nameko_s_worker_thread():
    rpc = entrypoint("with_auth")
    rpc.handle_message({"args": [sign_context(AUTH, 30), "s1"], "kwargs": {}}, Message())
    rpc.handle_message({"args": [None, "s1"], "kwargs": {}}, Message())  # anonymous
    assert rpc.container.started == ["Rpc.wait_for_worker_pool[methods.with_auth]"] * 2


def test_contexts_named_inside_the_arguments_are_verified_too():
    rpc = entrypoint("internal", signed_contexts=lambda args, kwargs: [c["auth"] for c in args[0]])
    rpc.handle_message({"args": [[{"auth": sign_context(AUTH, 30)}]], "kwargs": {}}, Message())
    with pytest.raises(Unauthorized):
        rpc.handle_message({"args": [[{"auth": AUTH}]], "kwargs": {}}, Message())
    assert len(rpc.container.started) == 1


def test_the_reply_queue_s_declaration_may_be_remembered_and_nameko_s_may_not():
    arguments = {"x-expires": 300000}
    ours = ReplyQueueOncePerConnection("rpc.reply-x", exchange=Exchange("nameko-rpc", type="topic"),
                                       routing_key="x", queue_arguments=arguments)
    nameko_s = Queue("rpc.reply-x", exchange=Exchange("nameko-rpc", type="topic"), routing_key="x",
                     queue_arguments=arguments)
    assert ours.can_cache_declaration and not nameko_s.can_cache_declaration
    assert hash(ours) == hash(nameko_s)  # the same queue to kombu and the broker


def test_requests_are_transient_with_confirms_and_replies_transient_without():
    assert (RequestPublisher.delivery_mode, RequestPublisher.use_confirms) == (1, True)
    assert (ReplyPublisher.delivery_mode, ReplyPublisher.use_confirms) == (1, False)
    # Replies (no confirm) and requests (confirm) do not share the transport options nameko
    # writes into on every publish (kombu keys its pools by them).
    assert ReplyPublisher.transport_options is not Publisher.transport_options
    assert ReplyPublisher.transport_options["confirm_publish"] is False


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
