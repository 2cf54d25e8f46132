"""A process whose nameko container died must end (and be restarted by its orchestrator), not go
on serving its metrics port and passing a liveness probe while it consumes nothing."""
from __future__ import annotations

import eventlet
from nameko.extensions import DependencyProvider
from nameko.runners import ServiceRunner

from weintervene.runner import ServiceDied, stop_when_a_service_dies


class FailsAfterStart(DependencyProvider):
    """An extension whose managed thread raises, as a relay or consumer thread does on a fatal
    error: nameko kills the container."""

    def start(self):
        self.container.spawn_managed_thread(self._fail)

    def _fail(self):
        eventlet.sleep(0.05)
        raise RuntimeError("the relay's thread failed")


class Dies:
    name = "test_only_dies"
    failing = FailsAfterStart()


class KeepsRunning:
    name = "test_only_keeps_running"


def _runner(*classes) -> ServiceRunner:
    runner = ServiceRunner()
    for cls in classes:
        runner.add_service(cls)
    return runner


def test_a_dead_service_stops_the_process_with_service_died():
    runner = _runner(Dies, KeepsRunning)
    stopping = eventlet.event.Event()
    stop_when_a_service_dies(runner, stopping)
    runner.start()
    with eventlet.Timeout(10):
        reason = stopping.wait()
    assert isinstance(reason, ServiceDied) and reason.code != 0
    runner.kill()


def test_a_requested_stop_is_not_a_death():
    runner = _runner(KeepsRunning)
    stopping = eventlet.event.Event()
    watcher = stop_when_a_service_dies(runner, stopping)
    runner.start()
    runner.stop()
    with eventlet.Timeout(10):
        watcher.wait()
    assert not stopping.ready()
