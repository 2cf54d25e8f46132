"""Root of the test suite.

eventlet must patch the standard library before nameko, kombu or requests are
imported (nameko's pytest plugin no longer does it).
"""
import eventlet

eventlet.monkey_patch()

import dataclasses  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from nameko import config as nameko_config  # noqa: E402

from tests.support.infra import (  # noqa: E402
    PostgresDatabases, RunningSystem, SmsEndpoint, SmtpSink, Vhost, free_port, postgres_available,
)
from weintervene.config import SERVICES, Settings  # noqa: E402


def _test_settings(tmp_path: Path, amqp_uri: str, smtp_port: int, sms_url: str, template: str) -> Settings:
    port = free_port()
    return Settings(
        amqp_uri=amqp_uri,
        data_dir=tmp_path,
        database_url_template=template,
        gateway_address=f"127.0.0.1:{port}",
        public_base_url=f"http://127.0.0.1:{port}",
        secret_key="test-secret",
        sms_token="test-sms-token",
        dev_mode=True,
        smtp_port=smtp_port,
        sms_base_url=sms_url,
        rpc_timeout_seconds=20,
    )


@pytest.fixture(scope="session")
def vhost():
    v = Vhost()
    yield v
    v.delete()


@pytest.fixture(scope="session")
def smtp_sink():
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def sms_endpoint():
    endpoint = SmsEndpoint()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="session")
def test_database_kind():
    """PostgreSQL where one is reachable (CI always has one); SQLite otherwise."""
    wanted = os.environ.get("WEINTERVENE_TEST_DB", "postgres")
    if wanted == "postgres" and not postgres_available():
        if os.environ.get("CI"):
            raise RuntimeError("CI must run the suite against PostgreSQL, and none is reachable")
        return "sqlite"
    return wanted


@pytest.fixture(scope="session")
def system(tmp_path_factory, vhost, smtp_sink, sms_endpoint, test_database_kind):
    """Every service and the gateway, running against real RabbitMQ and database."""
    from weintervene.runner import build_runner

    databases = None
    template = ""
    if test_database_kind == "postgres":
        databases = PostgresDatabases(SERVICES)
        template = databases.template
    settings = _test_settings(
        tmp_path_factory.mktemp("system"), vhost.uri, smtp_sink.port, sms_endpoint.base_url, template
    )
    nameko_config.setup(settings.nameko_config())
    runner = build_runner(list(SERVICES) + ["gateway"])
    runner.start()
    running = RunningSystem(
        base_url=settings.public_base_url, settings=settings, vhost=vhost, smtp=smtp_sink,
        sms=sms_endpoint, runner=runner, databases=databases,
    )
    yield running
    runner.stop()
    runner.kill()
    if databases is not None:
        databases.drop()


@pytest.fixture
def patch_settings():
    """Change settings for one test: ``patch_settings(session_idle_seconds=1)``."""
    original = nameko_config.get("WEINTERVENE") or Settings()
    patches = []

    def apply(**changes):
        nameko_config["WEINTERVENE"] = dataclasses.replace(nameko_config.get("WEINTERVENE") or original, **changes)
        patches.append(changes)

    yield apply
    nameko_config["WEINTERVENE"] = original


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item, settings):
    """Time tests out with SIGALRM, failing only the hung test.

    Under eventlet's patched threading, pytest-timeout believes it is off the main
    thread and falls back to its thread method, which ends the whole run.
    """
    import signal

    from pytest_timeout import timeout_sigalrm

    def handler(signum, frame):
        __tracebackhide__ = True
        timeout_sigalrm(item, settings)

    def cancel():
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    item.cancel_timeout = cancel
    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, settings.timeout)
    return True
