"""A private RabbitMQ node for one test module, watched by this small supervisor process.

Tests that restart the broker must not touch the shared one (127.0.0.1:5672, used by
every other test and helper at once), so they get a node of their own: its own node
name, AMQP and distribution ports, Mnesia, log and config files, Erlang cookie and
HOME, all in one temporary folder, with no plugins (no management API).

The supervisor runs ``rabbitmq-server`` (as the calling user, in a session of its own
so a Ctrl-C at the terminal does not reach it) and takes one command per line on
stdin, answering one line on stdout:

* ``start``: start the node on the same port and data folder; answers ``ready <seconds>``
  once the AMQP listener completes a protocol handshake;
* ``stop``: a graceful stop (SIGTERM: RabbitMQ shuts down cleanly, durable queues and
  persistent messages stay on disk); answers ``stopped <seconds>``;
* ``quit`` or end of input: kill the node if it still runs, remove the folder, exit.

End of input is what makes it leak-proof: if the test process dies in any way (even
SIGKILL), the pipe closes and the node and its folder go with it.

Example (what :class:`tests.support.infra.PrivateRabbit` does)::

    python -m tests.support.rabbit_node --folder /tmp/wi_test_rabbit_x --name wi_test_x@localhost \\
        --port 41234 --dist-port 41235
    > start
    < ready 5.8
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

RABBITMQ_SERVER = os.environ.get("WEINTERVENE_TEST_RABBITMQ_SERVER", "/usr/lib/rabbitmq/bin/rabbitmq-server")
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 30.0
# AMQP 0-9-1's protocol header; the broker answers with a Connection.Start method frame.
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def node_environment(folder: Path, name: str, port: int, dist_port: int) -> dict:
    """Everything ``rabbitmq-server`` reads, pointed into ``folder``.

    ``RABBITMQ_CONF_ENV_FILE`` replaces /etc/rabbitmq/rabbitmq-env.conf (which names the
    shared node); HOME holds this node's own Erlang cookie, so the shared node's cookie is
    neither read nor written.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
    env.update({
        "HOME": str(folder),
        "RABBITMQ_CONF_ENV_FILE": str(folder / "rabbitmq-env.conf"),
        "RABBITMQ_NODENAME": name,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
        "RABBITMQ_LOG_BASE": str(folder / "log"),
        "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
        "RABBITMQ_PLUGINS_EXPAND_DIR": str(folder / "plugins-expand"),
        "RABBITMQ_PID_FILE": str(folder / "node.pid"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    })
    return env


def prepare_folder(folder: Path, port: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rabbitmq-env.conf").write_text("")
    (folder / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{port}\n"
        "loopback_users = none\n"
        # The machine's disk may be nearly full (seen: 287 MB free); a test node must still start.
        "disk_free_limit.absolute = 1MB\n"
    )
    (folder / "advanced.config").write_text("[].\n")
    (folder / "enabled_plugins").write_text("[].\n")
    cookie = folder / ".erlang.cookie"
    cookie.write_text("WITEST" + os.urandom(12).hex().upper())
    cookie.chmod(0o400)


def amqp_answers(port: int) -> bool:
    """Whether a broker on ``port`` completes the first step of the AMQP handshake."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(AMQP_HEADER)
            frame = sock.recv(7)
            return len(frame) == 7 and frame[0] == 1  # a method frame (Connection.Start)
    except OSError:
        return False


class Node:
    def __init__(self, folder: Path, name: str, port: int, dist_port: int):
        self.folder, self.name, self.port = folder, name, port
        self.env = node_environment(folder, name, port, dist_port)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> float:
        started = time.monotonic()
        self.starts += 1
        log = open(self.folder / f"server-{self.starts}.out", "wb")
        self.proc = subprocess.Popen(
            [RABBITMQ_SERVER], env=self.env, cwd=self.folder, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        while not amqp_answers(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self.proc.returncode}; see {log.name}")
            if time.monotonic() - started > START_TIMEOUT_SECONDS:
                raise RuntimeError(f"rabbitmq-server did not answer on {self.port} in {START_TIMEOUT_SECONDS} s")
            time.sleep(0.1)
        return time.monotonic() - started

    def _signal_group(self, sig) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self) -> float:
        """Graceful: the script's TERM trap stops the Erlang node cleanly; then the group is gone."""
        started = time.monotonic()
        if self.proc is None:
            return 0.0
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait()
        # The Erlang VM (a child of the script) may outlive the script by a moment.
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._signal_group(signal.SIGKILL)
        self.proc = None
        return time.monotonic() - started

    def kill(self) -> None:
        if self.proc is not None:
            self._signal_group(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
            return True
        except ProcessLookupError:
            return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dist-port", type=int, required=True)
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole foreground group: the test process cleans up through us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    prepare_folder(args.folder, args.port)
    node = Node(args.folder, args.name, args.port, args.dist_port)
    try:
        for line in sys.stdin:
            command = line.strip()
            try:
                if command == "start":
                    print(f"ready {node.start():.2f}", flush=True)
                elif command == "stop":
                    print(f"stopped {node.stop():.2f}", flush=True)
                elif command == "quit":
                    break
                else:
                    print(f"error unknown command {command!r}", flush=True)
            except Exception as exc:  # noqa: BLE001 - reported to the test, which fails
                print(f"error {exc}".replace("\n", " "), flush=True)
    finally:
        try:
            node.stop()
        finally:
            node.kill()
            shutil.rmtree(args.folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
