"""``python -m bench <name> [options]``: run one benchmark; without a name, list them."""
from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

HELPERS = {"support", "servers"}


def available() -> dict[str, str]:
    found = {}
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name.startswith("_") or module.name in HELPERS:
            continue
        doc = (importlib.import_module(f"bench.{module.name}").__doc__ or "").strip().splitlines()
        found[module.name] = doc[0] if doc else ""
    return found


def main(argv: list[str]) -> int:
    benches = available()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in benches:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"unknown benchmark: {argv[0]}\n", file=sys.stderr)
        print("usage: python -m bench <name> [options]\n\nbenchmarks:")
        for name, line in sorted(benches.items()):
            print(f"  {name:<12} {line}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"bench.{argv[0]}")
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
