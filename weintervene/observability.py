"""Prometheus metrics for every entrypoint, the backlog gauges, and the health RPC every service answers.

Example::

    class DirectoryService(HealthCheck):
        name = "directory"
        db = Database("directory", Base)
        metrics = EntrypointMetrics()

    # rpc: directory.health() -> {"service": "directory", "status": "ok", "database": "ok"}
"""
from __future__ import annotations

import re
import time
import weakref

from nameko.extensions import DependencyProvider
from nameko.timer import timer
from weintervene.entrypoints import rpc
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select, text

from weintervene.db import utcnow

ENTRYPOINT_CALLS = Counter(
    "weintervene_entrypoint_calls_total",
    "Entrypoint executions by service, entrypoint and outcome",
    ["service", "entrypoint", "outcome"],
)
ENTRYPOINT_SECONDS = Histogram(
    "weintervene_entrypoint_seconds",
    "Entrypoint execution time",
    ["service", "entrypoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)

FEATURE_USES = Counter(
    "weintervene_feature_uses_total",
    "Uses of product features, in aggregate for the product team (never per user or tenant)",
    ["feature"],
)
FEATURE_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


def record_feature_use(feature: str) -> None:
    """Count one use of a product feature; the only label is the feature's name.

    Call it with a name fixed in code (never a value from a request, which would
    grow the label set without bound), after the request succeeded.

    Example::

        record_feature_use("analytics.top-services.csv")
        # /metrics: weintervene_feature_uses_total{feature="analytics.top-services.csv"} 1.0
    """
    if not FEATURE_NAME.match(feature):
        raise ValueError(f"feature names are short lowercase words, not {feature!r}")
    FEATURE_USES.labels(feature).inc()


class EntrypointMetrics(DependencyProvider):
    """Counts and times every worker of the service it is declared on.

    The labelled series are looked up once per entrypoint and outcome and kept:
    prometheus' ``labels()`` converts and validates the label values and takes a lock
    on every call, ~1-2% of a service's CPU. It hands out the same child every time,
    so keeping it counts exactly the same (nothing here removes series).
    """

    def setup(self):
        self.started = weakref.WeakKeyDictionary()
        self.calls = {}  # (entrypoint, outcome) -> ENTRYPOINT_CALLS child
        self.seconds = {}  # entrypoint -> ENTRYPOINT_SECONDS child

    def worker_setup(self, worker_ctx):
        self.started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        start = self.started.pop(worker_ctx, None)
        name = worker_ctx.entrypoint.method_name
        if exc_info is None:
            outcome = "ok"
        else:
            outcome = getattr(exc_info[1], "code", None) or type(exc_info[1]).__name__
        calls = self.calls.get((name, outcome))
        if calls is None:
            calls = self.calls[name, outcome] = ENTRYPOINT_CALLS.labels(self.container.service_name, name, outcome)
        calls.inc()
        if start is not None:
            seconds = self.seconds.get(name)
            if seconds is None:
                seconds = self.seconds[name] = ENTRYPOINT_SECONDS.labels(self.container.service_name, name)
            seconds.observe(time.perf_counter() - start)

    def get_dependency(self, worker_ctx):
        return None


# -- backlog gauges: what waits in a service's own database ------------------------------
# Measured by a timer every BACKLOG_SECONDS in each replica (each replica reports the same
# database-wide figure: the alert rules take the max over replicas, deploy/k8s/base/13-monitoring.yaml).

BACKLOG_SECONDS = 15.0

OUTBOX_PENDING = Gauge(
    "weintervene_outbox_pending", "Events committed to the service's outbox and not yet published", ["service"])
OUTBOX_OLDEST_PENDING_SECONDS = Gauge(
    "weintervene_outbox_oldest_pending_seconds", "Age of the oldest event not yet published (0: none waits)",
    ["service"])


def outbox_backlog(session, model, now=None) -> tuple[int, float]:
    """(rows not yet published, seconds the oldest of them has waited) in ``model``'s outbox.

    Example: outbox_backlog(db, OutboxMessage) -> (3, 12.5)
    """
    count, oldest = session.execute(
        select(func.count(), func.min(model.created_at)).where(model.published_at.is_(None))).one()
    return count, max(0.0, ((now or utcnow()) - oldest).total_seconds()) if oldest else 0.0


class OutboxBacklogGauges:
    """Mixin for a service with an outbox (``db``, ``outbox_model``, as OutboxRelay needs):
    sets ``weintervene_outbox_pending`` and ``weintervene_outbox_oldest_pending_seconds``.

    A backlog that grows while the broker is up means the relay is stuck; one whose oldest
    row ages means events (deletions, shares) are not reaching their consumers.
    """

    @timer(interval=BACKLOG_SECONDS)
    def measure_outbox_backlog(self):
        pending, oldest = outbox_backlog(self.db, self.outbox_model)
        OUTBOX_PENDING.labels(self.name).set(pending)
        OUTBOX_OLDEST_PENDING_SECONDS.labels(self.name).set(oldest)


class HealthCheck:
    """Mixin: ``health`` RPC reporting the service and its database."""

    @rpc
    def health(self):
        database = "ok"
        try:
            self.db.execute(text("SELECT 1"))
        except Exception as exc:  # report, do not raise: health must answer
            database = f"error: {type(exc).__name__}"
        return {
            "service": self.name,
            "status": "ok" if database == "ok" else "degraded",
            "database": database,
        }
