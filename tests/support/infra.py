"""Real infrastructure for tests: a RabbitMQ vhost, PostgreSQL databases, the
SMTP sink and SMS endpoint subprocesses, and the whole system in one runner."""
from __future__ import annotations

import dataclasses
import json
import os
import random
import socket
import string
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from email import message_from_bytes, policy
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
RABBIT_API = os.environ.get("WEINTERVENE_TEST_RABBIT_API", "http://guest:guest@127.0.0.1:15672")
RABBIT_AMQP = os.environ.get("WEINTERVENE_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")
PG_URL = os.environ.get("WEINTERVENE_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def random_suffix(n: int = 8) -> str:
    return "".join(random.choice(string.ascii_lowercase) for _ in range(n))


class Vhost:
    """A RabbitMQ vhost of its own, through the management API."""

    def __init__(self):
        self.name = "wi_test_" + random_suffix()
        self.api = RABBIT_API.rstrip("/")
        session = requests.Session()
        r = session.put(f"{self.api}/api/vhosts/{self.name}", timeout=10)
        r.raise_for_status()
        r = session.put(
            f"{self.api}/api/permissions/{self.name}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"}, timeout=10,
        )
        r.raise_for_status()
        self.uri = f"{RABBIT_AMQP.rstrip('/')}/{self.name}"

    def queues(self) -> list[dict]:
        r = requests.get(f"{self.api}/api/queues/{self.name}", timeout=10)
        r.raise_for_status()
        return r.json()

    def close_connections(self) -> int:
        """Have the broker close every client connection of this vhost (as a broker restart
        or a network cut would); returns how many it closed."""
        r = requests.get(f"{self.api}/api/vhosts/{self.name}/connections", timeout=10)
        r.raise_for_status()
        for connection in r.json():
            name = requests.utils.quote(connection["name"], safe="")
            requests.delete(f"{self.api}/api/connections/{name}", timeout=10)
        return len(r.json())

    def delete(self) -> None:
        requests.delete(f"{self.api}/api/vhosts/{self.name}", timeout=10)


class PostgresDatabases:
    """One PostgreSQL database per service, dropped at the end."""

    def __init__(self, services):
        self.prefix = "wit_" + random_suffix()
        self.services = list(services)
        self.template = f"{PG_URL}/{self.prefix}_{{service}}"

    def url(self, service: str) -> str:
        return self.template.format(service=service)

    def drop(self) -> None:
        admin = create_engine(f"{PG_URL}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for service in self.services:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.prefix}_{service}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def scratch_postgres_database(prefix: str):
    """A new, empty PostgreSQL database for one test (its URL), dropped afterwards;
    the test fails when PostgreSQL is not there.

    Example: ``with scratch_postgres_database("wit_partial") as url: engine = make_engine(url)``
    """
    import pytest

    if not postgres_available():
        pytest.fail("PostgreSQL is needed for this test")
    name = f"{prefix}_{random_suffix()}"
    admin = create_engine(f"{PG_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_URL}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_available() -> bool:
    try:
        engine = create_engine(f"{PG_URL}/postgres")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


class SubprocessServer:
    """A helper server in its own process, writing what it receives to a folder."""

    def __init__(self, module: str, *extra: str, niceness: int = 0):
        """``niceness``: the benchmarks run the stand-ins for outside providers at the lowest
        priority (19), so that on a shared machine they take only what the system under test
        leaves; tests run them as any process."""
        self.port = free_port()
        self.out = Path(tempfile.mkdtemp(prefix=module.rsplit(".", 1)[-1] + "-"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--port", str(self.port), "--out", str(self.out), *extra],
            cwd=ROOT, preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
        )
        deadline = time.monotonic() + 20
        while not (self.out / "READY").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{module} did not start")
            time.sleep(0.05)

    def files(self, suffix: str) -> list[Path]:
        return sorted(p for p in self.out.iterdir() if p.name.endswith(suffix))

    def clear(self) -> None:
        for p in self.out.iterdir():
            if p.name != "READY":
                p.unlink()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class SmtpSink(SubprocessServer):
    def __init__(self, niceness: int = 0):
        super().__init__("tests.support.smtp_sink", niceness=niceness)

    def messages(self):
        return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in self.files(".eml")]

    def wait_for(self, predicate, timeout: float = 10.0):
        """The first message for which ``predicate(msg)`` holds, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.messages():
                if predicate(msg):
                    return msg
            time.sleep(0.05)
        raise AssertionError("no matching email arrived")


class SmsEndpoint(SubprocessServer):
    def __init__(self, fail_first: int = 0, niceness: int = 0):
        super().__init__("tests.support.sms_endpoint", "--fail-first", str(fail_first), niceness=niceness)
        self.base_url = f"http://127.0.0.1:{self.port}"

    def messages(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in self.files(".json")]


@dataclasses.dataclass
class RunningSystem:
    """Everything started for integration tests, and how to reach it."""

    base_url: str
    settings: object
    vhost: Vhost
    smtp: SmtpSink
    sms: SmsEndpoint
    runner: object
    databases: PostgresDatabases | None

    def url(self, path: str) -> str:
        return self.base_url + path

    def client(self, token: str | None = None) -> requests.Session:
        session = requests.Session()
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        return session

    def login(self, email: str, password: str) -> requests.Session:
        r = requests.post(self.url("/api/v1/sessions"), json={"email": email, "password": password}, timeout=30)
        assert r.status_code == 201, r.text
        return self.client(r.json()["token"])


class PrivateRabbit:
    """A RabbitMQ node of this test's own, to restart at will (never the shared broker).

    Runs under :mod:`tests.support.rabbit_node`, which removes the node and its folder
    when this process closes its pipe, even if the test process is killed. The node
    has no management plugin: queues are inspected over AMQP (:meth:`queue_depth`).

    Example::

        rabbit = PrivateRabbit()           # started; rabbit.amqp_uri on the default vhost "/"
        rabbit.restart()                   # stop (graceful) and start on the same port and data
        rabbit.close()
    """

    def __init__(self):
        suffix = random_suffix()
        self.name = f"wi_test_{suffix}@localhost"
        self.port, self.dist_port = free_port(), free_port()
        self.folder = Path(tempfile.gettempdir()) / f"wi_test_rabbit_{suffix}"
        self.amqp_uri = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.timings: list[tuple[str, float]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.rabbit_node", "--folder", str(self.folder),
             "--name", self.name, "--port", str(self.port), "--dist-port", str(self.dist_port)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        try:
            self.start()
        except BaseException:
            self.close()
            raise

    def _command(self, command: str, expected: str) -> float:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        word, _, rest = answer.partition(" ")
        if word != expected:
            raise RuntimeError(f"private RabbitMQ {command!r}: {answer or 'no answer (supervisor exited)'}")
        self.timings.append((command, float(rest)))
        return float(rest)

    def start(self) -> float:
        """Start the node; returns the seconds until it answered AMQP."""
        return self._command("start", "ready")

    def stop(self) -> float:
        """A graceful stop, as an operator's restart does it."""
        return self._command("stop", "stopped")

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def queue_depth(self, name: str) -> int:
        """Messages ready in queue ``name`` (a passive declare: the queue must exist)."""
        from kombu import Connection

        with Connection(self.amqp_uri) as conn:
            channel = conn.channel()
            return channel.queue_declare(queue=name, passive=True).message_count

    def purge(self, name: str) -> int:
        from kombu import Connection

        with Connection(self.amqp_uri) as conn:
            return conn.channel().queue_purge(name) or 0

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _end_with_parent() -> None:
    """In a child before exec: SIGTERM it when the test process dies, however it dies (Linux)."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ServiceProcess:
    """Some of WeIntervene's services in a process of their own (``weintervene run --service ...``).

    Example: ServiceProcess(["referrals"], env).start(); ….stop(); ….start()
    """

    def __init__(self, names, env: dict, log_folder: Path):
        self.names, self.env, self.log_folder = list(names), dict(env), Path(log_folder)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.log_folder / f"{'+'.join(self.names)}-{self.starts}.log"

    def start(self, **env_changes) -> None:
        self.env.update({k: str(v) for k, v in env_changes.items()})
        self.starts += 1
        args = [sys.executable, "-c", "from weintervene.cli import main; raise SystemExit(main())", "run"]
        for name in self.names:
            args += ["--service", name]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, preexec_fn=_end_with_parent)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
