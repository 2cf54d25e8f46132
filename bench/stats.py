"""Percentiles and a one-line summary for benchmark timings (seconds in, milliseconds out)."""
from __future__ import annotations

import statistics


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "median_ms": statistics.median(values) * 1000 if values else float("nan"),
        "p95_ms": percentile(values, 95) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
    }


def line(label: str, values: list[float]) -> str:
    s = summary(values)
    return f"{label:<38} n={s['n']:<6} median={s['median_ms']:8.2f} ms  p95={s['p95_ms']:8.2f} ms  p99={s['p99_ms']:8.2f} ms"
