"""The batcher commits concurrently arriving events together, and hands a failure
to every waiting worker (so nameko requeues each message instead of acking it)."""
import contextlib
import uuid

import eventlet
import pytest
from sqlalchemy import func, select

from services.analytics import counting, dependencies
from services.analytics.dependencies import ShareBatcher
from services.analytics.models import DailyShareCount
from tests.support.analytics import migrated_session, share_event


class OneDatabase:
    def __init__(self, session):
        self._session = session

    @contextlib.contextmanager
    def session(self):
        yield self._session


@pytest.fixture
def batcher(tmp_path):
    session = migrated_session(f"sqlite:///{tmp_path}/analytics.db")
    b = ShareBatcher(max_batch=50)
    b.setup()
    b.database = OneDatabase(session)
    thread = eventlet.spawn(b._run)
    yield b, session
    thread.kill()
    session.close()
    session.get_bind().dispose()


def test_concurrent_events_share_one_transaction(batcher, monkeypatch):
    b, session = batcher
    sizes = []
    real = dependencies.count_shares
    monkeypatch.setattr(dependencies, "count_shares", lambda s, events: sizes.append(len(events)) or real(s, events))
    tenant = str(uuid.uuid4())
    events = [counting.load_share(share_event(tenant)) for _ in range(30)]
    pool = eventlet.GreenPool()
    outcomes = list(pool.imap(b.apply, events + events[:5]))
    assert sorted(outcomes) == ["counted"] * 30 + ["duplicate"] * 5
    assert max(sizes) > 1 and sum(sizes) == 35
    assert session.scalar(select(func.sum(DailyShareCount.count))) == 30


def test_a_failed_batch_raises_in_every_waiting_worker(batcher, monkeypatch):
    b, session = batcher

    def down(*args):
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(dependencies, "count_shares", down)
    events = [counting.load_share(share_event(uuid.uuid4())) for _ in range(8)]

    def attempt(event):
        try:
            b.apply(event)
        except ConnectionError:
            return "raised"
        return "acked"

    assert list(eventlet.GreenPool().imap(attempt, events)) == ["raised"] * 8
    monkeypatch.undo()
    assert list(eventlet.GreenPool().imap(b.apply, events)) == ["counted"] * 8  # redelivered
