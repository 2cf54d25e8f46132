"""Shares written together: the batcher's leader/follower hand-over, and ``write_batch``
(one identity round trip, one transaction, every share answered or refused on its own).
Identity and directory are fakes (other bounded contexts); the database is a real SQLite session."""
from __future__ import annotations

import eventlet
import pytest
from sqlalchemy import event, func, select

from services.referrals import sharing
from services.referrals.batching import NaturalBatcher, Pending
from services.referrals.models import Delivery, IdempotencyKey, OutboxMessage, Referral, Share
from tests.unit.referrals_fixtures import (  # noqa: F401  (fixtures)
    MOTHER, SERVICE, SERVICE_2, STUDENT, TEACHER_AUTH, UNSERVED_STUDENT, db, directory, identity, make_session,
    svc,
)
from services.referrals.directory_cache import ServiceDetailsCache, ServiceLookups
from weintervene.errors import Forbidden, NotFound, Unavailable

CATALOGUE = ServiceLookups(ServiceDetailsCache(ttl=30))


def count(db, model):
    return db.scalar(select(func.count()).select_from(model))


def body(student=STUDENT, service=SERVICE, **extra):
    return {"student_id": student, "contact_ids": [MOTHER], "service_ids": [service], "channel": "email",
            "note": "Pregunte por Ana", **extra}


def pending(db, directory, data, key=None, auth=TEACHER_AUTH) -> Pending:
    return Pending(sharing.read_request(db, directory, CATALOGUE, auth, data, key))


# -- the batcher --------------------------------------------------------------------------

def test_a_lone_request_is_processed_at_once_in_a_batch_of_its_own():
    batches = []
    batcher = NaturalBatcher()

    def process(batch):
        batches.append([item.request for item in batch])
        for item in batch:
            item.resolve(item.request * 10)

    assert batcher.submit(1, process) == 10
    assert batcher.submit(2, process) == 20
    assert batches == [[1], [2]]


def test_requests_arriving_while_a_batch_runs_go_together_in_the_next_and_each_gets_its_own_outcome():
    batches = []
    batcher = NaturalBatcher()

    def process(batch):
        batches.append([item.request for item in batch])
        eventlet.sleep(0.05)  # a round trip: the others arrive meanwhile
        for item in batch:
            if item.request == "refused":
                item.fail(Forbidden("not this one"))
            else:
                item.resolve(item.request.upper())

    first = eventlet.spawn(batcher.submit, "a", process)
    eventlet.sleep(0.01)
    others = [eventlet.spawn(batcher.submit, r, process) for r in ("b", "refused", "c")]
    assert first.wait() == "A"
    assert others[0].wait() == "B" and others[2].wait() == "C"
    with pytest.raises(Forbidden):
        others[1].wait()
    assert batches == [["a"], ["b", "refused", "c"]]


def test_a_fault_in_processing_fails_its_batch_only_and_the_next_batch_still_runs():
    batcher = NaturalBatcher()
    calls = []

    def process(batch):
        calls.append(len(batch))
        eventlet.sleep(0.02)
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        for item in batch:
            item.resolve("ok")

    first = eventlet.spawn(batcher.submit, 1, process)
    eventlet.sleep(0.005)
    second = eventlet.spawn(batcher.submit, 2, process)
    with pytest.raises(RuntimeError):
        first.wait()
    assert second.wait() == "ok"  # the lead passed on; nobody waits for ever
    assert calls == [1, 1]


def test_an_item_the_process_forgot_fails_instead_of_waiting_for_ever():
    batcher = NaturalBatcher()

    def process(batch):
        eventlet.sleep(0.02)
        batch[0].resolve("only the first")

    first = eventlet.spawn(batcher.submit, 1, process)
    eventlet.sleep(0.005)
    second, third = eventlet.spawn(batcher.submit, 2, process), eventlet.spawn(batcher.submit, 3, process)
    assert first.wait() == "only the first"
    assert second.wait() == "only the first"
    with pytest.raises(RuntimeError, match="without an outcome"):
        third.wait()


def test_at_most_max_size_go_in_one_batch():
    batcher, sizes = NaturalBatcher(max_size=2), []

    def process(batch):
        sizes.append(len(batch))
        eventlet.sleep(0.01)
        for item in batch:
            item.resolve(True)

    threads = [eventlet.spawn(batcher.submit, n, process) for n in range(5)]
    assert all(t.wait() for t in threads)
    assert sizes == [1, 2, 2]


# -- write_batch: several shares, one identity call, one transaction ------------------------

def test_shares_written_together_ask_identity_once_and_commit_once(db, identity, directory):
    batch = [pending(db, directory, body(service=s)) for s in (SERVICE, SERVICE_2, SERVICE)]
    commits = []
    event.listen(db, "after_commit", lambda session: commits.append(session))
    sharing.write_batch(db, identity, batch)
    assert len(commits) == 1
    assert identity.share_contexts.call_count == 1 and identity.share_context.call_count == 3  # 3 checks, 1 call
    answers = [item.outcome() for item in batch]
    assert [a["items"][0]["service"]["id"] for a in answers] == [SERVICE, SERVICE_2, SERVICE]
    assert len({a["items"][0]["share_id"] for a in answers}) == 3
    assert (count(db, Share), count(db, Referral), count(db, Delivery), count(db, OutboxMessage)) == (3, 3, 3, 3)


def test_one_refused_share_in_a_batch_is_refused_alone(db, identity, directory):
    batch = [pending(db, directory, body()), pending(db, directory, body(student=UNSERVED_STUDENT)),
             pending(db, directory, body(service=SERVICE_2))]
    sharing.write_batch(db, identity, batch)
    with pytest.raises(NotFound) as refused:
        batch[1].outcome()
    assert refused.value.code == "student_not_found"  # identity's own refusal, as with one share
    assert batch[0].outcome()["items"] and batch[2].outcome()["items"]
    assert count(db, Share) == 2


def test_a_batch_whose_transaction_fails_writes_each_share_alone_and_only_the_faulty_one_fails(
        db, identity, directory, monkeypatch):
    batch = [pending(db, directory, body()), pending(db, directory, body(service=SERVICE_2))]
    build = sharing.build_share

    def a_broken_second_share(db_, identity_, request, context):
        rows = build(db_, identity_, request, context)
        if request is batch[1].request:
            rows.rows[0][1][0]["channel"] = None  # NOT NULL: the database refuses this share
        return rows

    monkeypatch.setattr(sharing, "build_share", a_broken_second_share)
    sharing.write_batch(db, identity, batch)
    assert batch[0].outcome()["items"][0]["service"]["id"] == SERVICE
    with pytest.raises(Exception, match="(?i)not null"):
        batch[1].outcome()
    assert (count(db, Share), count(db, Referral), count(db, OutboxMessage)) == (1, 1, 1)  # nothing half-written


def test_a_repeated_idempotency_key_in_a_batch_answers_with_the_first_share(db, identity, directory):
    [first] = [pending(db, directory, body(), key="k-1")]
    sharing.write_batch(db, identity, [first])
    batch = [pending(db, directory, body(), key="k-1"), pending(db, directory, body(service=SERVICE_2), key="k-2"),
             pending(db, directory, body(), key="k-1")]
    sharing.write_batch(db, identity, batch)
    first_ids = [i["id"] for i in first.outcome()["items"]]
    assert [i["id"] for i in batch[0].outcome()["items"]] == first_ids and batch[0].outcome()["idempotent_replayed"]
    assert [i["id"] for i in batch[2].outcome()["items"]] == first_ids
    assert "idempotent_replayed" not in batch[1].outcome()
    assert count(db, Share) == 2 and count(db, IdempotencyKey) == 2 and count(db, Delivery) == 2


def test_twins_in_one_batch_make_one_share(db, identity, directory):
    batch = [pending(db, directory, body(), key="double-click"), pending(db, directory, body(), key="double-click")]
    sharing.write_batch(db, identity, batch)
    assert [i["id"] for i in batch[0].outcome()["items"]] == [i["id"] for i in batch[1].outcome()["items"]]
    assert count(db, Share) == 1 and count(db, OutboxMessage) == 1


def test_concurrent_shares_through_the_service_share_one_identity_call(svc, identity, db):
    share_context = identity.share_context.side_effect

    def slow_share_context(*args):
        eventlet.sleep(0.05)  # identity's round trip: the other shares queue meanwhile
        return share_context(*args)

    identity.share_context.side_effect = slow_share_context
    threads = [eventlet.spawn(svc.share, TEACHER_AUTH, body(service=s)) for s in (SERVICE, SERVICE_2, SERVICE)]
    answers = [t.wait() for t in threads]
    assert identity.share_contexts.call_count == 1  # the first alone, the two that queued together
    assert len({a["items"][0]["share_id"] for a in answers}) == 3 and count(db, Share) == 3


def test_a_waiter_killed_in_the_queue_leaves_no_hole_and_the_lead_still_passes_on():
    batcher, batches = NaturalBatcher(), []

    def process(batch):
        batches.append([item.request for item in batch])
        eventlet.sleep(0.03)
        for item in batch:
            item.resolve(item.request)

    first = eventlet.spawn(batcher.submit, "first", process)
    eventlet.sleep(0.005)
    doomed = eventlet.spawn(batcher.submit, "doomed", process)
    eventlet.sleep(0.005)
    last = eventlet.spawn(batcher.submit, "last", process)
    eventlet.sleep(0.005)
    doomed.kill()  # its worker is gone (a container killed, a timeout)
    with eventlet.Timeout(5):  # without the hand-over, "last" would wait for ever
        assert first.wait() == "first" and last.wait() == "last"
        assert batches == [["first"], ["last"]]
        assert batcher.submit("later", process) == "later"  # and the batcher is free again


def test_identity_not_answering_fails_the_batch_with_503_not_a_hang(db, identity, directory, patch_settings):
    patch_settings(rpc_timeout_seconds=0.1)
    identity.share_context.side_effect = lambda *args: eventlet.sleep(5)
    identity.share_contexts.side_effect = lambda *args: eventlet.sleep(5)
    batcher, alone = NaturalBatcher(), pending(db, directory, body())
    sharing.write_batch(db, identity, [alone])
    together = [eventlet.spawn(batcher.submit, sharing.read_request(db, directory, CATALOGUE, TEACHER_AUTH, body(), None),
                               lambda batch: sharing.write_batch(db, identity, batch)) for _ in range(3)]
    for outcome in [alone.outcome] + [t.wait for t in together]:
        with pytest.raises(Unavailable) as unanswered:
            outcome()
        assert unanswered.value.code == "service_timeout"
    assert count(db, Share) == 0


def test_with_two_batches_in_flight_a_second_starts_at_once_and_the_rest_queue_for_the_first_to_end():
    batcher, batches, running = NaturalBatcher(max_batches=2), [], []

    def process(batch):
        batches.append([item.request for item in batch])
        running.append(len(batches))
        eventlet.sleep(0.03 if batch[0].request == "a" else 0.06)
        for item in batch:
            item.resolve(item.request)

    threads = [eventlet.spawn(batcher.submit, "a", process)]
    eventlet.sleep(0.005)
    threads.append(eventlet.spawn(batcher.submit, "b", process))  # a second batch at once
    eventlet.sleep(0.005)
    threads += [eventlet.spawn(batcher.submit, r, process) for r in ("c", "d", "e")]  # both busy: queued
    with eventlet.Timeout(5):
        assert [t.wait() for t in threads] == ["a", "b", "c", "d", "e"]
    assert batches == [["a"], ["b"], ["c", "d", "e"]]  # "a" ended first: "c" led the rest
    assert batcher.submit("f", process) == "f" and batches[-1] == ["f"]
