"""Servers the benchmarks start in their own processes (not a benchmark itself).

``python -m bench.servers system``: identity and the gateway (the real code) on
WEINTERVENE_GATEWAY_ADDRESS, with a bench user; prints ``READY <token>``.
``python -m bench.servers directory``: identity, directory and the gateway; ``READY <token>``.
``python -m bench.servers demo``: every service and the gateway with ``make run``'s demo data
(SQLite under WEINTERVENE_DATA_DIR); prints ``READY``.
``python -m bench.servers echo --port N``: the baseline, a bare nameko HTTP
entrypoint that makes one RPC to an echo service and returns its JSON.
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from nameko.rpc import ServiceRpc, rpc  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402
from nameko.web.handlers import http  # noqa: E402

BENCH_EMAIL = "bench@bench.example"
BENCH_PASSWORD = "bench passphrase 2026"


class EchoService:
    name = "bench_echo"

    @rpc
    def echo(self, value):
        return value


class EchoHttpService:
    name = "bench_echo_http"

    echo_rpc = ServiceRpc("bench_echo")

    @http("GET", "/echo")
    def echo(self, request):
        return 200, {"Content-Type": "application/json"}, json.dumps(self.echo_rpc.echo({"hello": "bench"}))


def _wait_forever(runner) -> None:
    stopping = eventlet.event.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.ready() or stopping.send(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.ready() or stopping.send(True))
    stopping.wait()
    runner.stop()


def run_echo(port: int) -> None:
    from nameko import config

    from weintervene.config import Settings

    settings = Settings.from_env()
    config.setup({"AMQP_URI": settings.amqp_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}", "serializer": "json"})
    runner = ServiceRunner()
    runner.add_service(EchoService)
    runner.add_service(EchoHttpService)
    runner.start()
    print("READY", flush=True)
    _wait_forever(runner)


def run_directory() -> None:
    """identity, directory and the gateway on the configured databases; prints READY <token>."""
    from nameko.standalone.rpc import ClusterRpcClient

    from weintervene.config import Settings
    from weintervene.runner import build_runner, configure

    settings = Settings.from_env()
    configure(settings)
    runner = build_runner(["identity", "directory", "gateway"])
    runner.start()
    with ClusterRpcClient(uri=settings.amqp_uri) as client:
        try:
            client.identity.bootstrap_user(
                {"email": BENCH_EMAIL, "display_name": "Bench", "role": "operator", "tenant_id": None}, BENCH_PASSWORD
            )
        except Exception:  # noqa: BLE001 - kept from an earlier run on the same database
            pass
        token = client.identity.login({"email": BENCH_EMAIL, "password": BENCH_PASSWORD}, client_ip="bench")["token"]
    print("READY", token, flush=True)
    _wait_forever(runner)


def run_system() -> None:
    from nameko.standalone.rpc import ClusterRpcClient

    from weintervene.config import Settings
    from weintervene.runner import build_runner, configure

    settings = Settings.from_env()
    configure(settings)
    runner = build_runner(["identity", "gateway"])
    runner.start()
    with ClusterRpcClient(uri=settings.amqp_uri) as client:
        client.identity.bootstrap_user(
            {"email": BENCH_EMAIL, "display_name": "Bench", "role": "operator", "tenant_id": None}, BENCH_PASSWORD
        )
        token = client.identity.login({"email": BENCH_EMAIL, "password": BENCH_PASSWORD}, client_ip="bench")["token"]
    print("READY", token, flush=True)
    _wait_forever(runner)


def run_demo() -> None:
    from weintervene.config import Settings
    from weintervene.demo import ensure_demo
    from weintervene.runner import ALL_COMPONENTS, build_runner, configure

    settings = Settings.from_env()
    configure(settings)
    runner = build_runner(list(ALL_COMPONENTS))
    runner.start()
    ensure_demo(settings)
    print("READY", flush=True)
    _wait_forever(runner)


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "echo":
        run_echo(int(sys.argv[sys.argv.index("--port") + 1]))
    elif kind == "system":
        run_system()
    elif kind == "directory":
        run_directory()
    elif kind == "demo":
        run_demo()
    else:
        sys.exit(f"unknown server kind {kind}")
