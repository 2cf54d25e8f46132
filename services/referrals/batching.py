"""Natural batching of shares: the requests that arrived while one batch was being
written are written together next, in one identity round trip and one transaction.

Why: a share's cost is mostly per round trip, not per row. Each share asked identity
once (an RPC: two messages through the broker, a worker, a transaction in identity) and
committed once (a WAL flush). Under load, shares queue for those round trips anyway;
``NaturalBatcher`` lets the ones that queued share them. Nothing waits on a timer: a
share that arrives while nothing is being written is written at once, alone, exactly as
before, so a lone teacher's share is not delayed. Batches only form when shares would
have waited anyway (group commit, as databases do for their WAL).

How: the first worker to arrive leads. It takes everything queued (itself included, at
most ``max_size``), runs ``process`` on the batch, then hands the lead to the first
share that queued meanwhile and returns its own outcome. Followers wait for theirs.
``process`` gives each item its own outcome (a result or an exception): one share's
refusal never fails another's.

Under eventlet only one greenthread runs at a time and switches only at I/O, so the
queue and the lead flag need no lock.

Example::

    >>> batches = NaturalBatcher(max_size=32)
    >>> batches.submit(request, process=lambda items: [item.resolve(answer(item.request)) for item in items])
    {"items": [...]}
"""
from __future__ import annotations

import logging
from collections import deque

from eventlet.event import Event
from nameko.extensions import DependencyProvider
from prometheus_client import Histogram

log = logging.getLogger(__name__)

BATCH_SIZE = Histogram(
    "weintervene_share_batch_size", "Shares written together in one identity round trip and one transaction.",
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32))

_LEAD = "lead"
_DONE = "done"


class Pending:
    """One request in a batch; ``process`` calls ``resolve`` or ``fail`` on it exactly once."""

    __slots__ = ("request", "result", "error", "settled", "_turn")

    def __init__(self, request):
        self.request = request
        self.result = None
        self.error: BaseException | None = None
        self.settled = False
        self._turn = Event()

    def resolve(self, result) -> None:
        self.result, self.settled = result, True

    def fail(self, error: BaseException) -> None:
        self.error, self.settled = error, True

    def outcome(self):
        if self.error is not None:
            raise self.error
        return self.result


class NaturalBatcher:
    """Leader/follower batching of calls that arrive while a batch is in progress."""

    def __init__(self, max_size: int = 32):
        self.max_size = max_size
        self._queue: deque[Pending] = deque()
        self._leading = False

    def submit(self, request, process):
        """Run ``process(batch)`` on a batch holding ``request``; return this request's result.

        ``process`` receives a list of :class:`Pending` and settles each one.
        """
        mine = Pending(request)
        self._queue.append(mine)
        if self._leading:
            try:
                turn = mine._turn.wait()
            except BaseException:  # this worker was killed while waiting: leave no hole in the queue
                self._abandon(mine)
                raise
            if turn == _DONE:
                return mine.outcome()
            # handed the lead: the queue's first item is this one
        self._leading = True
        batch = [self._queue.popleft() for _ in range(min(self.max_size, len(self._queue)))]
        try:
            BATCH_SIZE.observe(len(batch))
            process(batch)
        except BaseException as exc:  # a fault in process itself: no follower may wait for ever
            for item in batch:
                if not item.settled:
                    item.fail(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            for item in batch:
                if item is not mine:
                    if not item.settled:
                        item.fail(RuntimeError("the batch ended without an outcome for this request"))
                    item._turn.send(_DONE)
            if self._queue:
                self._queue[0]._turn.send(_LEAD)
            else:
                self._leading = False
        return mine.outcome()


    def _abandon(self, mine: Pending) -> None:
        """Take a waiter that is going away out of the queue; pass the lead on if it had it."""
        if mine in self._queue:
            self._queue.remove(mine)
        if mine._turn.ready() and mine._turn.wait() == _LEAD:
            if self._queue:
                self._queue[0]._turn.send(_LEAD)
            else:
                self._leading = False


class ShareBatches(DependencyProvider):
    """One batcher per running referrals instance, shared by its workers."""

    def setup(self):
        self.batcher = NaturalBatcher()

    def get_dependency(self, worker_ctx):
        return self.batcher
