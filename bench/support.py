"""Helpers shared by benchmarks: statistics, free ports, a RabbitMQ vhost of their own,
and subprocess servers that say when they are ready."""
from __future__ import annotations

import os
import random
import socket
import statistics
import string
import subprocess
import sys
import time
from pathlib import Path

import requests

RABBIT_API = os.environ.get("WEINTERVENE_BENCH_RABBIT_API", "http://guest:guest@127.0.0.1:15672")
RABBIT_AMQP = os.environ.get("WEINTERVENE_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672")
ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(values_ms: list[float]) -> dict:
    return {
        "n": len(values_ms),
        "median": statistics.median(values_ms),
        "p95": percentile(values_ms, 95),
        "p99": percentile(values_ms, 99),
    }


def print_table(rows: dict[str, dict], unit: str = "ms") -> None:
    print(f"{'':<28}{'n':>7}{'median':>10}{'p95':>10}{'p99':>10}   ({unit})")
    for name, s in rows.items():
        print(f"{name:<28}{s['n']:>7}{s['median']:>10.3f}{s['p95']:>10.3f}{s['p99']:>10.3f}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Vhost:
    """A RabbitMQ vhost for one benchmark run (so nothing meets a running system)."""

    def __init__(self):
        self.name = "wi_bench_" + "".join(random.choice(string.ascii_lowercase) for _ in range(8))
        api = RABBIT_API.rstrip("/")
        requests.put(f"{api}/api/vhosts/{self.name}", timeout=10).raise_for_status()
        requests.put(f"{api}/api/permissions/{self.name}/guest",
                     json={"configure": ".*", "write": ".*", "read": ".*"}, timeout=10).raise_for_status()
        self.uri = f"{RABBIT_AMQP.rstrip('/')}/{self.name}"
        self.api = api

    def delete(self) -> None:
        requests.delete(f"{self.api}/api/vhosts/{self.name}", timeout=10)


class ServerProcess:
    """``python -m bench.servers <kind> ...`` in its own process, ready when it prints READY."""

    def __init__(self, kind: str, env: dict, *args: str, timeout: float = 60):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.servers", kind, *args],
            cwd=ROOT, env={**os.environ, **env, "PYTHONWARNINGS": "ignore"},
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        deadline = time.monotonic() + timeout
        self.info = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"bench server {kind} exited with {self.proc.returncode}")
            if line.startswith("READY"):
                self.info = line.split(" ", 1)[1].strip() if " " in line else ""
                return
        self.stop()
        raise RuntimeError(f"bench server {kind} did not start in {timeout}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), for CPU cost per request."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
