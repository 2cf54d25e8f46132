"""CPU per nameko RPC call, caller and callee together, on weintervene's ``rpc`` and ``ServiceRpc``.

``python -m bench rpc [--calls 3000] [--concurrency 8] [--rounds 5]``

What runs: one process with two services on a fresh RabbitMQ vhost: ``bench_rpc_callee``
(an ``@rpc`` method with ``EntrypointMetrics``, as every service has) and
``bench_rpc_caller`` (a ``ServiceRpc`` to it). The caller's own RPC method makes
``--calls`` calls to the callee from ``--concurrency`` green threads, with arguments
and an answer shaped like ``identity.share_context``'s. Each round prints this
process's CPU (user + system) per call: the requests' publish and confirm, the
callee's consume, signature check, worker and reply, and the caller's reply
consume. The broker's CPU is not counted; wall time is printed for the record.

Example output::

    round 1: 3000 calls in 2.41 s, 0.662 ms CPU per call (both sides; 0.210 of it in the kernel)
    ...
    median of 5 rounds: 0.655 ms CPU per call (best 0.641)
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

from nameko import config as nameko_config  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402
from nameko.standalone.rpc import ClusterRpcClient  # noqa: E402

from bench.support import Vhost  # noqa: E402
from weintervene.context_signing import sign_context  # noqa: E402
from weintervene.entrypoints import rpc  # noqa: E402
from weintervene.observability import EntrypointMetrics  # noqa: E402
from weintervene.rpc import ServiceRpc  # noqa: E402

AUTH = {"user_id": "0f8e4c52-8a43-4b6e-9a55-5d3f1f0a1b2c", "tenant_id": "6c1d2f7e-3b9a-4e8d-a1c2-7f6e5d4c3b2a",
        "role": "teacher", "session_id": "b7a6c5d4-e3f2-4a1b-9c8d-7e6f5a4b3c2d"}
ANSWER = {"student": {"id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "tenant_id": AUTH["tenant_id"],
                      "first_name": "Sam", "last_name": "Example", "year_group": "9"},
          "contacts": [{"id": f"c{n}", "name": f"Contact {n}", "email": f"contact{n}@example.org",
                        "phone": None, "language": "en", "relationship": "parent"} for n in range(2)],
          "school": {"id": "s1", "name": "Example Academy"}}


class CalleeService:
    name = "bench_rpc_callee"
    metrics = EntrypointMetrics()

    @rpc
    def share_context(self, auth, student_id, contact_ids, service_ids):
        return ANSWER


class CallerService:
    name = "bench_rpc_caller"
    callee = ServiceRpc("bench_rpc_callee")

    @rpc
    def call_many(self, calls, concurrency):
        # Signed as the gateway signs a request's context (the callee refuses an unsigned one);
        # verified once, then found in the verifier's cache, as for a request's later calls.
        auth = sign_context(AUTH, lifetime=600)
        pool = eventlet.GreenPool(concurrency)
        for _ in pool.imap(lambda _n: self.callee.share_context(auth, ANSWER["student"]["id"], [], []),
                           range(calls)):
            pass
        return calls


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench rpc")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    vhost = Vhost()
    nameko_config.setup({"AMQP_URI": vhost.uri, "serializer": "json", "max_workers": 32})
    runner = ServiceRunner()
    runner.add_service(CalleeService)
    runner.add_service(CallerService)
    runner.start()
    per_call = []
    try:
        with ClusterRpcClient(uri=vhost.uri, timeout=300) as client:
            client.bench_rpc_caller.call_many(200, args.concurrency)  # warm up: connections, pools
            for round_number in range(1, args.rounds + 1):
                before, wall = os.times(), time.perf_counter()
                client.bench_rpc_caller.call_many(args.calls, args.concurrency)
                after, wall = os.times(), time.perf_counter() - wall
                user, system = after.user - before.user, after.system - before.system
                per_call.append((user + system) / args.calls * 1000)
                print(f"round {round_number}: {args.calls} calls in {wall:.2f} s, {per_call[-1]:.3f} ms CPU per call "
                      f"(both sides; {system / args.calls * 1000:.3f} of it in the kernel)", flush=True)
    finally:
        runner.stop()
        vhost.delete()
    print(f"median of {args.rounds} rounds: {statistics.median(per_call):.3f} ms CPU per call "
          f"(best {min(per_call):.3f})")
    return 0
