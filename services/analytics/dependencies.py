"""analytics's dependency providers: its database, and the batcher that commits
concurrently arriving events together."""
from __future__ import annotations

import logging

import eventlet
from eventlet.event import Event
from eventlet.queue import Empty, LightQueue
from nameko.extensions import DependencyProvider

from services.analytics.counting import count_shares
from services.analytics.models import Base
from weintervene.db import Database

log = logging.getLogger(__name__)


def analytics_database() -> Database:
    return Database("analytics", Base)


class ShareBatcher(DependencyProvider):
    """Applies the events of concurrently running workers in one transaction.

    Each worker hands its loaded event to ``apply`` and waits; one green thread
    takes whatever has arrived (up to ``max_batch``), applies it with
    ``counting.count_shares`` in one transaction, and wakes every waiting worker
    with its outcome, or with the error so that nameko requeues its message. A
    message is therefore acknowledged only after its effect is committed, and a
    crash before that redelivers it. The buffer holds only messages not yet
    acknowledged: no totals live in memory, so any number of instances may run.

    Why: one commit (one disk flush) per event capped an instance at a few
    hundred events a second; one per batch does not.

    Example::

        class AnalyticsService:
            db = analytics_database()
            batcher = ShareBatcher(database_attr="db")

            @event_handler(...)
            def on_share_recorded(self, payload):
                self.batcher.apply(load_share(payload))   # -> "counted"
    """

    def __init__(self, database_attr: str = "db", max_batch: int = 200):
        self.database_attr = database_attr
        self.max_batch = max_batch

    def setup(self):
        self.queue = LightQueue()
        self.thread = None

    def start(self):
        self.database = next(d for d in self.container.dependencies if d.attr_name == self.database_attr)
        self.thread = self.container.spawn_managed_thread(self._run, identifier="analytics.batcher")

    def stop(self):
        if self.thread is not None:
            self.thread.kill()

    kill = stop

    def get_dependency(self, worker_ctx):
        return self

    def apply(self, event: dict) -> str:
        """Count ``event`` with whatever else is arriving; returns its outcome once committed."""
        done = Event()
        self.queue.put((event, done))
        return done.wait()

    def _take_batch(self) -> list:
        batch = [self.queue.get()]
        eventlet.sleep(0)  # let the workers already running hand theirs over
        while len(batch) < self.max_batch:
            try:
                batch.append(self.queue.get_nowait())
            except Empty:
                break
        return batch

    def _run(self):
        while True:
            batch = self._take_batch()
            try:
                with self.database.session() as session:
                    outcomes = count_shares(session, [event for event, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every waiting worker gets it, and requeues
                log.warning("could not apply %d share events: %s", len(batch), type(exc).__name__)
                for _, done in batch:
                    done.send_exception(exc)
                continue
            for (_, done), outcome in zip(batch, outcomes):
                done.send(outcome)
