"""Run WeIntervene's services: one per process, each with its own broker user (``weintervene run``),
or several in one process with one broker user (``--service a --service b``; the test suite).

nameko's configuration is process-global: one ``AMQP_URI``, so one broker user, per
process. ``weintervene run`` therefore creates every component's broker user on the
local broker (:mod:`weintervene.broker`) and starts each service and the gateway as
``weintervene run --service <name>`` in a process of its own with its own user, as in
production (one container per service), and loads the demo data as the operator's user.
Where the broker's management API is not reachable, it says so and runs everything in
one process with ``AMQP_URI``'s user, as before.

Example::

    run_services(["identity", "gateway"])   # blocks until SIGINT/SIGTERM
    run_each_in_its_own_process(settings, ALL_COMPONENTS, demo=True)  # likewise, one child each
"""
from __future__ import annotations

import dataclasses
import gc
import logging
import os
import signal
import subprocess
import sys
import time

import eventlet
from kombu.exceptions import OperationalError
from nameko import config as nameko_config
from nameko.runners import ServiceRunner

from weintervene import plugins
from weintervene.config import SERVICES, Settings, require_secrets

log = logging.getLogger("weintervene")

ALL_COMPONENTS = SERVICES + ("gateway",)



def service_class(name: str):
    """The nameko service class of component ``name``.

    Each service declares its class as a ``weintervene.services`` entry point in
    ``pyproject.toml`` (:mod:`weintervene.plugins`): the shared library imports no service.
    """
    return plugins.service_class(name)


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

    # The events of the services run here (with one broker user per service, a process may
    # declare only its own events' queues; the others declare theirs).
    declare_topology(nameko_config["AMQP_URI"], sources=[n for n in names if n in SERVICES])
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


class ServiceDied(SystemExit):
    """A service's nameko container stopped on its own (an extension's thread raised): the
    process exits with status 1, so the orchestrator restarts it (a process that went on
    serving its metrics port would pass a liveness probe while doing nothing)."""


def stop_when_a_service_dies(runner: ServiceRunner, stopping: "eventlet.event.Event"):
    """Watch ``runner``'s containers: when one dies, send ``ServiceDied`` to ``stopping``.

    Example: ``stop_when_a_service_dies(runner, stopping)``; a container killed by its
    outbox relay's exception -> ``stopping.wait()`` returns a ``ServiceDied``.
    """

    def watch():
        try:
            runner.wait()  # returns when every container stopped; raises when one died
        except Exception as exc:  # noqa: BLE001 - whatever killed it, the process must end
            if not stopping.ready():
                log.error("a service stopped on its own: %s", type(exc).__name__)
                stopping.send(ServiceDied(f"a service stopped on its own: {type(exc).__name__}"))

    return eventlet.spawn(watch)


def run_services(names, on_started=None) -> None:
    """Start ``names`` and block; SIGINT/SIGTERM stop them cleanly.

    Outside development mode a default or empty secret that one of them uses stops this
    before anything starts (:func:`weintervene.config.require_secrets`). When one of them
    dies on its own the others are stopped and :class:`ServiceDied` is raised (exit status 1)."""
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
    stop_when_a_service_dies(runner, stopping)
    reason = stopping.wait()
    log.info("stopping…")
    with eventlet.Timeout(20, False):
        runner.stop()
    runner.kill()
    if isinstance(reason, ServiceDied):
        raise reason


# -- one process per component, each with its own broker user -------------------------

def component_uri(settings: Settings, component: str) -> str:
    """The AMQP URI ``component`` runs with: its own broker user when ``weintervene run`` made
    one (``<data_dir>/broker-credentials.json``), else ``AMQP_URI`` as given (production:
    each deployment's own Secret).

    Example: component_uri(settings, "gateway") -> "amqp://wi-gateway:…@localhost:5672/"
    """
    from weintervene.broker import load_credentials, uri_for

    own = load_credentials(settings.broker_credentials_file).get(component)
    return uri_for(settings.amqp_uri, own["user"], own["password"]) if own else settings.amqp_uri


def provision_local_broker(settings: Settings, wait_seconds: float = 30.0) -> dict | None:
    """Create or update every component's broker user on ``AMQP_URI``'s vhost (idempotent);
    None, with a warning, when the management API cannot be reached.

    The management URL's user (``broker_management_url``; guest on a local broker) is used
    for this only: the services never run with it.
    """
    import requests

    from weintervene.broker import ensure_credentials, provision, vhost_of

    credentials = ensure_credentials(settings.broker_credentials_file, settings.broker_user_prefix)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            provision(settings.broker_management_url, vhost_of(settings.amqp_uri), credentials)
            return credentials
        except requests.RequestException as exc:
            if time.monotonic() > deadline:
                log.warning("RabbitMQ's management API is not reachable (%s): running every service in one "
                            "process with AMQP_URI's user. Enable it (rabbitmq-plugins enable "
                            "rabbitmq_management) for one broker user per service.", type(exc).__name__)
                return None
            time.sleep(1)


def run_each_in_its_own_process(settings: Settings, names, demo: bool = False) -> int:
    """Start ``weintervene run --service <name>`` for each name, each with its own broker user;
    load the demo data once the gateway answers; Ctrl-C (or SIGTERM) stops them all.

    Returns the exit status: 0 after a requested stop, 1 when a component died on its own.
    """
    from weintervene.messaging import declare_topology

    # Every events queue, declared once with the administrator's user before any publisher
    # starts (each publisher may declare only its own events' queues).
    nameko_config.setup({**settings.nameko_config(), "AMQP_URI": settings.amqp_uri})
    declare_topology(settings.amqp_uri)
    children: dict[str, subprocess.Popen] = {}
    for number, name in enumerate(names):
        env = {**os.environ, "AMQP_URI": component_uri(settings, name),
               "WEINTERVENE_DATA_DIR": str(settings.data_dir)}
        if settings.metrics_port:  # one metrics listener per process: consecutive ports
            env["WEINTERVENE_METRICS_PORT"] = str(settings.metrics_port + number)
        children[name] = subprocess.Popen([sys.executable, "-m", "weintervene.cli", "run", "--service", name],
                                          env=env)
    stopping = []

    def _stop(signum, _frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    status = 0
    announced = "gateway" not in names
    try:
        while not stopping:
            dead = [name for name, child in children.items() if child.poll() is not None]
            if dead:
                log.error("stopped on its own: %s", ", ".join(dead))
                status = 1
                break
            if not announced and _gateway_answers(settings):
                announced = True
                if demo:
                    from weintervene.demo import ensure_demo, print_demo_logins

                    operator = dataclasses.replace(settings, amqp_uri=component_uri(settings, "operator"))
                    nameko_config.setup(operator.nameko_config())
                    ensure_demo(operator)
                print(f"\nWeIntervene is running at {settings.public_base_url}/  (one process per service; "
                      f"Ctrl-C stops it)", flush=True)
                if demo:
                    print_demo_logins()
            time.sleep(0.5)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 25
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
    return status


def _gateway_answers(settings: Settings) -> bool:
    import requests

    try:
        return requests.get(f"http://{settings.gateway_address}/healthz", timeout=3).status_code == 200
    except requests.RequestException:
        return False
