"""Benchmarks, run as ``python -m bench <name>`` (never timed assertions in tests).

Each benchmark measures a baseline in the same run and prints medians, p95/p99
and ratios. Add one by creating ``bench/<name>.py`` with ``main(argv) -> int``
and a module docstring (its first line is the one-line description).
"""
