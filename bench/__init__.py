"""Benchmarks, run as ``python -m bench NAME`` (each is ``bench/NAME.py`` with a ``main(argv)``).

Each measures a baseline in the same run (raw SQL on the same database, or a
bare RPC round trip) and prints medians, p95/p99 and ratios; none asserts on
time (that is for people reading the figures, not for the test suite).
"""
import statistics


def percentiles(samples_ms: list[float]) -> dict:
    """{"median", "p95", "p99"} of samples in milliseconds."""
    ordered = sorted(samples_ms)
    pick = lambda q: ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]  # noqa: E731
    return {"median": statistics.median(ordered), "p95": pick(0.95), "p99": pick(0.99)}


def fmt(stats: dict) -> str:
    return f"median {stats['median']:.2f} ms  p95 {stats['p95']:.2f} ms  p99 {stats['p99']:.2f} ms"
