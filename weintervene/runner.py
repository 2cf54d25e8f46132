"""Run WeIntervene's services: all in one process (embedded default) or one per process.

Example::

    run_services(["identity", "gateway"])   # blocks until SIGINT/SIGTERM
"""
from __future__ import annotations

import gc
import importlib
import logging
import signal
import time

import eventlet
from kombu.exceptions import OperationalError
from nameko import config as nameko_config
from nameko.runners import ServiceRunner

from weintervene.config import SERVICES, Settings, require_secrets

log = logging.getLogger("weintervene")

ALL_COMPONENTS = SERVICES + ("gateway",)

SERVICE_CLASSES = {
    "identity": "services.identity.service:IdentityService",
    "directory": "services.directory.service:DirectoryService",
    "referrals": "services.referrals.service:ReferralsService",
    "analytics": "services.analytics.service:AnalyticsService",
    "retention": "services.retention.service:RetentionService",
    "gateway": "gateway.service:GatewayService",
}


def service_class(name: str):
    module, _, attr = SERVICE_CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def configure(settings: Settings) -> None:
    nameko_config.setup(settings.nameko_config())


def wait_for_broker(amqp_uri: str, seconds: float = 30.0) -> None:
    from nameko.amqp.publish import get_connection

    deadline = time.monotonic() + seconds
    while True:
        try:
            with get_connection(amqp_uri) as conn:
                conn.ensure_connection(max_retries=1)
            return
        except (OperationalError, OSError, IOError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"RabbitMQ is not reachable at {amqp_uri}: {exc}") from None
            time.sleep(1)


def build_runner(names) -> ServiceRunner:
    from weintervene.messaging import declare_topology

    declare_topology(nameko_config["AMQP_URI"])
    runner = ServiceRunner()
    for name in names:
        runner.add_service(service_class(name))
    return runner


def freeze_startup_objects() -> None:
    """Keep what start-up made (modules, services, schemas, mappers: 100,000 to
    300,000 objects) out of the garbage collector's full passes.

    Each full pass walked all of them: 40 to 200 ms with the process stalled (measured
    under the referrals benchmark), which every request in flight waited out. They live
    as long as the process, so scanning them finds nothing. The youngest generation is
    also collected every 10,000 net allocations rather than 700: a request's objects
    die by reference counting, and the collector was walking those in flight for
    nothing (~0.1 ms CPU per share per process).

    Example: called once, right after the runner starts; ``gc.get_freeze_count()``
    then counts the objects left out.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def run_services(names, on_started=None) -> None:
    """Start ``names`` and block; SIGINT/SIGTERM stop them cleanly.

    Outside development mode a default or empty secret that one of them uses stops this
    before anything starts (:func:`weintervene.config.require_secrets`)."""
    require_secrets(nameko_config["WEINTERVENE"], names)
    runner = build_runner(names)
    stopping = eventlet.event.Event()

    def _stop(signum, _frame):
        if not stopping.ready():
            stopping.send(signum)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runner.start()
    metrics_port = nameko_config["WEINTERVENE"].metrics_port
    if metrics_port:
        # One service per process (containers): Prometheus scrapes this port.
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    freeze_startup_objects()
    log.info("started: %s", ", ".join(names))
    if on_started is not None:
        eventlet.spawn(on_started)
    stopping.wait()
    log.info("stopping…")
    with eventlet.Timeout(20, False):
        runner.stop()
    runner.kill()
