"""The outbox's wake-on-commit: a commit that staged an event wakes that outbox's relay;
a rollback, or a commit of something else, does not."""
from __future__ import annotations

import socket

import eventlet
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase, Session

from weintervene import messaging
from weintervene.messaging import make_outbox_model, outbox_add


class Base(DeclarativeBase):
    pass


OutboxMessage = make_outbox_model(Base)


class OtherBase(DeclarativeBase):
    pass


OtherOutbox = make_outbox_model(OtherBase)


class CountingRelay:
    def __init__(self):
        self.wakes = 0

    def wake(self):
        self.wakes += 1


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


@pytest.fixture
def relays():
    mine, other = CountingRelay(), CountingRelay()
    messaging._WAKERS.setdefault(OutboxMessage, set()).add(mine)
    messaging._WAKERS.setdefault(OtherOutbox, set()).add(other)
    yield mine, other
    messaging._WAKERS[OutboxMessage].discard(mine)
    messaging._WAKERS[OtherOutbox].discard(other)


def test_a_commit_with_an_event_wakes_its_outboxs_relay_once(session, relays):
    mine, other = relays
    outbox_add(session, OutboxMessage, "share_recorded", {"n": 1})
    outbox_add(session, OutboxMessage, "share_recorded", {"n": 2})
    assert mine.wakes == 0  # nothing is visible to the relay before the commit
    session.commit()
    assert (mine.wakes, other.wakes) == (1, 0)
    session.commit()  # a later commit with nothing staged
    assert mine.wakes == 1


def test_a_rolled_back_event_wakes_nothing(session, relays):
    mine, _ = relays
    outbox_add(session, OutboxMessage, "share_recorded", {"n": 1})
    session.rollback()
    session.commit()
    assert mine.wakes == 0


class RefusingPublisher:
    """Answers every batch as the broker does when no queue is bound: unroutable."""

    def __init__(self):
        import threading

        self.relay_lock = threading.Lock()

    def publish_many(self, messages):
        outcome = messaging.PublishOutcome()
        for _event_type, _payload, message_id in messages:
            outcome.refused[message_id] = "unroutable: Basic.return: (312) NO_ROUTE"
        return outcome


def test_a_broadcast_nobody_hears_is_done_but_an_unroutable_event_is_retried(session):
    """sessions_ended with no gateway running has nobody to tell; share_recorded with no
    queue bound is a fault (a consumer's queue is missing) and stays for the next try."""
    from sqlalchemy import select

    from weintervene.contracts import SESSIONS_ENDED

    outbox_add(session, OutboxMessage, SESSIONS_ENDED, {"user_ids": [], "reason": "logout"})
    outbox_add(session, OutboxMessage, "share_recorded", {"n": 1})
    session.commit()
    result = messaging.relay_batch(session, OutboxMessage, RefusingPublisher(), "identity")
    assert (result.sent, result.failed) == (1, 1)
    rows = {r.event_type: r for r in session.scalars(select(OutboxMessage))}
    assert rows[SESSIONS_ENDED].published_at is not None and rows[SESSIONS_ENDED].last_error is None
    assert rows["share_recorded"].published_at is None and "unroutable" in rows["share_recorded"].last_error


class RelayRuns:
    """A container for one RelayTrigger: each relay run is counted, and answers at once."""

    def __init__(self):
        self.service_cls = type("Service", (), {"outbox_model": OutboxMessage})
        self.runs = 0
        self.threads = []

    def spawn_managed_thread(self, fn, identifier=None):
        thread = eventlet.spawn(fn)
        self.threads.append(thread)
        return thread

    def spawn_worker(self, entrypoint, args, kwargs, handle_result=None, context_data=None):
        self.runs += 1
        eventlet.spawn(handle_result, None, messaging.RelayResult(sent=1), None)


def test_commits_during_the_relays_linger_go_out_in_one_run(patch_settings):
    patch_settings(outbox_relay_linger_seconds=0.2)
    container = RelayRuns()
    trigger = messaging.RelayTrigger(idle_seconds=60).bind(container, "relay_outbox")
    trigger.setup()
    assert trigger.linger_seconds == 0.2  # from the settings
    trigger.start()
    try:
        eventlet.sleep(0.05)
        assert container.runs == 1  # at start: rows left from before
        for _ in range(5):  # five commits, 10 ms apart
            trigger.wake()
            eventlet.sleep(0.01)
        assert container.runs == 1  # still lingering
        eventlet.sleep(0.3)
        assert container.runs == 2  # one run for the five
    finally:
        trigger.kill()


@pytest.mark.skipif(not hasattr(socket, "TCP_CORK"), reason="TCP_CORK is Linux's")
def test_a_batch_is_published_corked_and_everything_is_sent_when_it_ends():
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    try:
        with messaging.corked(client):
            assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 1
            client.sendall(b"one")
            client.sendall(b"two")
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 0
        peer.settimeout(5)
        received = b""
        while len(received) < 6:
            received += peer.recv(16)
        assert received == b"onetwo"
    finally:
        for s in (client, peer, server):
            s.close()
