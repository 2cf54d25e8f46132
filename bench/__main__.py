"""``python -m bench <name> [options]``: run one benchmark; without a name, list them."""
from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

HELPERS = {"support", "servers", "http_load"}


def names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                  if not m.name.startswith("_") and m.name not in HELPERS)


def available() -> dict[str, str]:
    found = {}
    for name in names():
        doc = (importlib.import_module(f"bench.{name}").__doc__ or "").strip().splitlines()
        found[name] = doc[0] if doc else ""
    return found


def main(argv: list[str]) -> int:
    if argv and argv[0] in names():
        # Import only the benchmark asked for: each one monkey-patches eventlet
        # before it imports the project, and an earlier import of another
        # benchmark would create real (not green) locks first (weintervene.db's
        # migration lock then deadlocks the services starting in this process).
        return importlib.import_module(f"bench.{argv[0]}").main(argv[1:]) or 0
    benches = available()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in benches:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"unknown benchmark: {argv[0]}\n", file=sys.stderr)
        print("usage: python -m bench <name> [options]\n\nbenchmarks:")
        for name, line in sorted(benches.items()):
            print(f"  {name:<12} {line}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
